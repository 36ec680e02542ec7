// Package userdata is how modules hand over what they hold about a user:
// each declares, for every table with rows of a user, a Part — how those
// rows are exported (an Exporter, or why they are not) and how they are
// erased (an Eraser, or why they are kept). The parts reach the account
// module through the "exporters" and "erasers" value groups, so that a
// module added later is exported and erased without anyone remembering to;
// a test fails when a table with a user_id column is in no part.
package userdata

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/database"
)

// Row is one row as exported: its columns by name.
type Row map[string]any

// Query runs a read (with ? marks) in the export's snapshot: every table of
// one export is read as of the same moment.
type Query func(ctx context.Context, query string, args ...any) (*sql.Rows, error)

// Exporter writes a user's rows of some tables, or says why those tables
// are not exported.
type Exporter struct {
	// Name is the row list's name in the export (tasks, notes, …).
	Name string
	// Tables are the tables whose rows of the user it covers.
	Tables []string
	// Omit are the columns left out (secrets).
	Omit []string
	// Rows calls emit with each of the user's rows, in a stable order,
	// without holding them all in memory.
	Rows func(ctx context.Context, q Query, userID uuid.UUID, emit func(Row) error) error
	// Skip, instead of Rows, says why the tables are not exported (counts
	// derived from exported rows, secrets only).
	Skip string
}

// Phase orders erasure: every eraser of a phase runs before the next
// phase's.
type Phase int

// Phases.
const (
	// PhaseRows erases the rows the user made or that were made for them.
	PhaseRows Phase = iota
	// PhaseDerived erases what database triggers keep from those rows
	// (counts): erased before them, a trigger would write them again.
	PhaseDerived
	// PhaseAccount erases the user's row itself, last.
	PhaseAccount
)

// Eraser deletes a user's rows of some tables, or says why they are kept.
type Eraser struct {
	Name   string
	Tables []string
	Phase  Phase
	// Keep, when set, returns what must outlive the rows (ledger totals for
	// the accounts); the erasure stores it with the record of the deleted
	// account before Erase runs, once.
	Keep func(ctx context.Context, db *database.DB, userID uuid.UUID) (any, error)
	// Erase deletes the rows in short transactions and returns how many it
	// deleted; run again, it deletes what is left.
	Erase func(ctx context.Context, db *database.DB, userID uuid.UUID) (int64, error)
	// Skip, instead of Erase, says why the tables are kept.
	Skip string
}

// Part is how some tables of a module are exported and erased.
type Part struct {
	Exporter Exporter
	Eraser   Eraser
}

// Table exports every column of table but omit, for the rows whose column
// owner (user_id, or id for the users table) is the user, in the order of
// the table's first column; and erases those rows in batches.
func Table(name, table, owner string, omit ...string) Part {
	return Part{
		Exporter: Exporter{Name: name, Tables: []string{table}, Omit: omit,
			Rows: func(ctx context.Context, q Query, userID uuid.UUID, emit func(Row) error) error {
				return streamTable(ctx, q, table, owner, userID, omit, emit)
			}},
		Eraser: Rows(name, table, owner),
	}
}

// Secret is a table that is not exported (why: it holds only secrets, or
// bookkeeping of exported rows) and is erased.
func Secret(why, table, owner string) Part {
	return Part{Exporter: Exporter{Name: table, Tables: []string{table}, Skip: why}, Eraser: Rows(table, table, owner)}
}

// Derived is a table kept by triggers from other tables' rows: not exported
// (why), erased after the rows it is derived from.
func Derived(why, table, owner string) Part {
	p := Secret(why, table, owner)
	p.Eraser.Phase = PhaseDerived
	return p
}

// Kept is a table that is neither exported nor erased (why: it is the
// record that the account was deleted).
func Kept(why, table string) Part {
	return Part{Exporter: Exporter{Name: table, Tables: []string{table}, Skip: why},
		Eraser: Eraser{Name: table, Tables: []string{table}, Skip: why}}
}

// Then puts the part's erasure in a later phase.
func (p Part) Then(phase Phase) Part {
	p.Eraser.Phase = phase
	return p
}

// Keeping sets what the part's erasure keeps (see Eraser.Keep).
func (p Part) Keeping(keep func(ctx context.Context, db *database.DB, userID uuid.UUID) (any, error)) Part {
	p.Eraser.Keep = keep
	return p
}

// BatchSize is how many rows one erasing transaction deletes: short enough
// that no lock is held for long, large enough that a 20,000-task user is
// erased in a few dozen statements.
const BatchSize = 1000

// Rows erases table's rows whose column owner is the user, BatchSize rows
// per transaction.
func Rows(name, table, owner string) Eraser {
	return Eraser{Name: name, Tables: []string{table},
		Erase: func(ctx context.Context, db *database.DB, userID uuid.UUID) (int64, error) {
			return DeleteBatches(ctx, db, table, owner+" = ?", userID)
		}}
}

// DeleteBatches deletes table's rows matching where (with its args), at
// most BatchSize per transaction, until none is left; it returns how many
// it deleted. table and where come from the modules' code, never from a
// request.
func DeleteBatches(ctx context.Context, db *database.DB, table, where string, args ...any) (int64, error) {
	rowID := "rowid"
	if db.Dialect == database.Postgres {
		rowID = "ctid"
	}
	stmt := fmt.Sprintf("DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s LIMIT %d)",
		table, rowID, rowID, table, where, BatchSize)
	var total int64
	for {
		var n int64
		err := db.Tx(ctx, func(tx *gorm.DB) error {
			res := tx.Exec(stmt, args...)
			n = res.RowsAffected
			return res.Error
		})
		if err != nil {
			return total, fmt.Errorf("erase %s: %w", table, err)
		}
		total += n
		if n < BatchSize {
			return total, nil
		}
	}
}

func streamTable(ctx context.Context, q Query, table, owner string, userID uuid.UUID, omit []string,
	emit func(Row) error) error {
	// table and owner come from the modules' code, never from a request.
	rows, err := q(ctx, "SELECT * FROM "+table+" WHERE "+owner+" = ? ORDER BY 1", userID.String())
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
	row := Row{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("export %s: %w", table, err)
		}
		clear(row)
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

// Contribute adds parts' exporters to the "exporters" group and their
// erasers to the "erasers" group (a module lists its tables in its
// fx.Module).
func Contribute(parts ...Part) fx.Option {
	opts := make([]fx.Option, 0, 2*len(parts))
	for _, p := range parts {
		opts = append(opts,
			fx.Provide(fx.Annotate(func() Exporter { return p.Exporter }, fx.ResultTags(`group:"exporters"`))),
			fx.Provide(fx.Annotate(func() Eraser { return p.Eraser }, fx.ResultTags(`group:"erasers"`))))
	}
	return fx.Options(opts...)
}

// AsExporter annotates a constructor returning an Exporter so that it joins
// the "exporters" group (for an exporter that needs the module's services;
// tables declare theirs with Contribute).
func AsExporter(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"exporters"`)) }

// AsEraser is AsExporter for an Eraser ("erasers" group).
func AsEraser(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"erasers"`)) }
