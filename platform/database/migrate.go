package database

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrationLockID is the PostgreSQL advisory lock held while migrating, so
// that processes starting together (api and worker) migrate one at a time.
const migrationLockID = 74261143

// Migrate applies the pending migrations, in order, in one transaction, then
// each of then (steps that manage their own transactions, such as the job
// queue's schema).
func (db *DB) Migrate(ctx context.Context, migrations []*gormigrate.Migration, then ...func(context.Context, *DB) error) error {
	run := func(gdb *gorm.DB) error {
		m := gormigrate.New(gdb, &gormigrate.Options{
			TableName:                 "schema_migrations",
			IDColumnName:              "id",
			IDColumnSize:              255,
			UseTransaction:            true,
			ValidateUnknownMigrations: true,
		}, migrations)
		if err := m.Migrate(); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for _, step := range then {
			if err := step(ctx, db); err != nil {
				return err
			}
		}
		return nil
	}
	if db.Dialect != Postgres {
		return run(db.Gorm.WithContext(ctx))
	}
	sqlDB := db.SQL
	if db.Pooled {
		// The lock is a session's, and so is a migration's transaction
		// with its statements: both go straight to PostgreSQL.
		if db.Sessions == nil {
			return errors.New("migrate: database.url goes through PgBouncer (database.pooler): set database.direct_url " +
				"(PERPETUA_DATABASE_DIRECT_URL) to PostgreSQL itself, or run migrate with DATABASE_URL pointing at it")
		}
		sqlDB = stdlib.OpenDBFromPool(db.Sessions)
		defer sqlDB.Close()
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockID) //nolint:errcheck
	gdb := db.Gorm.Session(&gorm.Session{NewDB: true, Context: ctx})
	gdb.Statement.ConnPool = conn
	return run(gdb)
}
