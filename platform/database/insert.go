package database

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
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
	plan, err := insertPlanOf(tx, row, count)
	if err != nil {
		return false, err
	}
	rv := reflect.ValueOf(row).Elem()
	args := make([]any, 0, len(countArgs)+len(plan.fields)+1)
	args = append(args, countArgs...)
	for _, f := range plan.fields {
		v, _ := f.ValueOf(tx.Statement.Context, rv)
		args = append(args, v)
	}
	res := tx.Exec(plan.sql, append(args, limit)...)
	if res.Error != nil {
		return false, fmt.Errorf("insert %T: %w", row, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// insertPlan is InsertBelow's statement for one model and count, and the
// fields whose values it takes, in order.
type insertPlan struct {
	sql    string
	fields []*schema.Field
}

type insertPlanKey struct {
	model reflect.Type
	count string
}

// insertPlans keeps the plans made (a handful: one per model and count).
var insertPlans sync.Map

func insertPlanOf(tx *gorm.DB, row any, count string) (*insertPlan, error) {
	key := insertPlanKey{reflect.TypeOf(row), count}
	if p, ok := insertPlans.Load(key); ok {
		return p.(*insertPlan), nil
	}
	stmt := &gorm.Statement{DB: tx}
	if err := stmt.Parse(row); err != nil {
		return nil, fmt.Errorf("insert %T: %w", row, err)
	}
	p := &insertPlan{}
	cols := make([]string, 0, len(stmt.Schema.Fields))
	vals := make([]string, 0, len(stmt.Schema.Fields))
	for _, f := range stmt.Schema.Fields {
		if f.DBName == "" || !f.Creatable {
			continue
		}
		p.fields = append(p.fields, f)
		cols = append(cols, stmt.Quote(f.DBName))
		// Parameters in a SELECT list have no column to take their type
		// from: each is cast to its column's type.
		vals = append(vals, "CAST(? AS "+tx.Dialector.DataTypeOf(f)+")")
	}
	p.sql = "WITH kept AS (" + count + ") INSERT INTO " + stmt.Quote(stmt.Table) + " (" + strings.Join(cols, ", ") +
		") SELECT " + strings.Join(vals, ", ") + " FROM kept WHERE kept.n < ?"
	insertPlans.Store(key, p)
	return p, nil
}
