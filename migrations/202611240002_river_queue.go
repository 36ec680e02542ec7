package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"gorm.io/gorm"
)

// riverQueueVersion is the River schema version this migration installs
// (River v0.51). A River upgrade that needs a newer schema adds a migration
// with the new target.
const riverQueueVersion = 8

// riverQueue installs the job queue's tables with River's own migrations,
// inside the same transaction.
var riverQueue = &gormigrate.Migration{
	ID: "202611240002_river_queue",
	Migrate: func(tx *gorm.DB) error {
		return migrateRiver(tx, rivermigrate.DirectionUp, riverQueueVersion)
	},
	Rollback: func(tx *gorm.DB) error {
		return migrateRiver(tx, rivermigrate.DirectionDown, -1)
	},
}

func migrateRiver(tx *gorm.DB, direction rivermigrate.Direction, target int) error {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return errors.New("river migration must run inside a transaction")
	}
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	opts := &rivermigrate.MigrateOpts{TargetVersion: target}
	var err error
	if tx.Dialector.Name() == "postgres" {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riverdatabasesql.New(nil), nil); err == nil {
			_, err = m.MigrateTx(ctx, sqlTx, direction, opts)
		}
	} else {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riversqlite.New(nil), nil); err == nil {
			_, err = m.MigrateTx(ctx, sqlTx, direction, opts)
		}
	}
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}
