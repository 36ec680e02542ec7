package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/perpetuaflow/api/platform/database"
)

// RiverVersion is the job queue (River v0.51) schema version installed. A
// River upgrade that needs a newer schema raises it.
const RiverVersion = 8

// River installs the job queue's tables with River's own migrations. They
// run after the application's, each River version in its own transaction (on
// PostgreSQL some of them alter enum types, which cannot be used in the
// transaction that altered them).
func River(ctx context.Context, db *database.DB) error {
	opts := &rivermigrate.MigrateOpts{TargetVersion: RiverVersion}
	var (
		m   *rivermigrate.Migrator[*sql.Tx]
		err error
	)
	if db.Dialect == database.Postgres {
		m, err = rivermigrate.New(riverdatabasesql.New(db.SQL), nil)
	} else {
		m, err = rivermigrate.New(riversqlite.New(db.SQL), nil)
	}
	if err == nil {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, opts)
	}
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}
