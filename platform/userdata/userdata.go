// Package userdata is how modules hand over what they hold about a user:
// each contributes Exporters (its tables' rows of the user) through the
// "exporters" value group, so that a module added later is part of a
// user's export without anyone remembering to; a test fails when a table
// with a user_id column has no exporter.
package userdata

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/platform/database"
)

// Row is one row as exported: its columns by name.
type Row map[string]any

// Exporter writes a user's rows of some tables, or says why those tables
// are not exported.
type Exporter struct {
	// Name is the row list's name in the export (tasks, notes, …).
	Name string
	// Tables are the tables whose rows of the user it covers.
	Tables []string
	// Rows calls emit with each of the user's rows, in a stable order,
	// without holding them all in memory.
	Rows func(ctx context.Context, db *database.DB, userID uuid.UUID, emit func(Row) error) error
	// Skip, instead of Rows, says why the tables are not exported (counts
	// derived from exported rows, secrets only).
	Skip string
}

// AsExporter annotates a constructor returning an Exporter so that it joins
// the "exporters" group.
func AsExporter(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"exporters"`)) }

// Table exports every column of table but omit, for the rows whose column
// owner (user_id, or id for the users table) is the user, in the order of
// the table's first column.
func Table(name, table, owner string, omit ...string) Exporter {
	return Exporter{Name: name, Tables: []string{table},
		Rows: func(ctx context.Context, db *database.DB, userID uuid.UUID, emit func(Row) error) error {
			return streamTable(ctx, db, table, owner, userID, omit, emit)
		}}
}

// Skipped covers tables that are not exported, and says why.
func Skipped(reason string, tables ...string) Exporter {
	return Exporter{Name: tables[0], Tables: tables, Skip: reason}
}

func streamTable(ctx context.Context, db *database.DB, table, owner string, userID uuid.UUID, omit []string,
	emit func(Row) error) error {
	// table and owner come from the modules' code, never from a request.
	rows, err := db.Gorm.WithContext(ctx).Table(table).Where(owner+" = ?", userID).Order("1").Rows()
	if err != nil {
		return fmt.Errorf("export %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	values := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("export %s: %w", table, err)
		}
		row := Row{}
		for i, c := range cols {
			if slices.Contains(omit, c) {
				continue
			}
			if b, ok := values[i].([]byte); ok {
				row[c] = string(b)
			} else {
				row[c] = values[i]
			}
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Contribute adds exporters to the "exporters" group (a module lists its
// tables in its fx.Module).
func Contribute(list ...Exporter) fx.Option {
	opts := make([]fx.Option, len(list))
	for i, e := range list {
		opts[i] = fx.Provide(AsExporter(func() Exporter { return e }))
	}
	return fx.Options(opts...)
}
