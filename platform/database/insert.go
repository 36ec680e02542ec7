package database

import (
	"fmt"
	"reflect"
	"strings"

	"gorm.io/gorm"
)

// InsertBelow inserts row only while a kept count is below limit, in one
// statement on PostgreSQL: count is a statement (an upsert with RETURNING,
// whose update locks the count's row until the transaction ends) that
// returns the count as its one column, and the row is inserted when that
// count is below limit. It reports whether the row was inserted; false
// leaves the count locked, for the caller to look further (a limit raised
// by perks) or refuse.
//
// It saves the round trip of reading the count before the insert, on the
// paths that create most. On SQLite (one writer, no round trips) it
// reports false at once and inserts nothing: the caller's two-statement
// path runs instead.
func InsertBelow[T any](tx *gorm.DB, row *T, count string, countArgs []any, limit int64) (bool, error) {
	if tx.Dialector.Name() != string(Postgres) {
		return false, nil
	}
	stmt := &gorm.Statement{DB: tx}
	if err := stmt.Parse(row); err != nil {
		return false, fmt.Errorf("insert %T: %w", row, err)
	}
	rv := reflect.ValueOf(row).Elem()
	cols := make([]string, 0, len(stmt.Schema.Fields))
	vals := make([]string, 0, len(stmt.Schema.Fields))
	args := append([]any(nil), countArgs...)
	for _, f := range stmt.Schema.Fields {
		if f.DBName == "" || !f.Creatable {
			continue
		}
		v, _ := f.ValueOf(tx.Statement.Context, rv)
		cols = append(cols, `"`+f.DBName+`"`)
		// Parameters in a SELECT list have no column to take their type
		// from: each is cast to its column's type.
		vals = append(vals, "CAST(? AS "+tx.Dialector.DataTypeOf(f)+")")
		args = append(args, v)
	}
	q := "WITH kept AS (" + count + ") INSERT INTO " + stmt.Quote(stmt.Table) + " (" + strings.Join(cols, ", ") +
		") SELECT " + strings.Join(vals, ", ") + " FROM kept WHERE kept.n < ?"
	res := tx.Exec(q, append(args, limit)...)
	if res.Error != nil {
		return false, fmt.Errorf("insert %T: %w", row, res.Error)
	}
	return res.RowsAffected == 1, nil
}
