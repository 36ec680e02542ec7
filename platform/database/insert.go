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
// statement on PostgreSQL: count is a statement that locks the count's row
// until the transaction ends (SELECT … FOR UPDATE, or an upsert with
// RETURNING) and returns the count as its one column, and the row is
// inserted when that count is below limit. It reports whether the row was
// inserted; false (the count at the limit, or no count row yet) leaves the
// caller to look further (a limit raised by perks, a first row) or refuse.
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
	args := plan.args(tx, row, countArgs, 1)
	res := tx.Exec(plan.sql, append(args, limit)...)
	if res.Error != nil {
		return false, fmt.Errorf("insert %T: %w", row, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// InsertLater writes row, a new row nobody reads back in the statement
// that writes it, through Later: in a Unit's transaction on PostgreSQL it
// goes out with the Unit's next statement. The statement is made once per
// model, where GORM's Create builds it for every row; the row is written
// as it is (no hooks, no defaults or timestamps filled in).
func InsertLater[T any](tx *gorm.DB, row *T) error {
	plan, err := insertPlanOf(tx, row, "")
	if err != nil {
		return err
	}
	if err := Later(tx, plan.sql, plan.args(tx, row, nil, 0)...); err != nil {
		return fmt.Errorf("insert %T: %w", row, err)
	}
	return nil
}

// insertPlan is the statement of InsertBelow (for one model and count) or
// InsertLater (count empty), and the fields whose values it takes, in
// order.
type insertPlan struct {
	sql    string
	fields []*schema.Field
}

// args is before, then row's values in the plan's order, with room for
// extra more.
func (p *insertPlan) args(tx *gorm.DB, row any, before []any, extra int) []any {
	rv := reflect.ValueOf(row).Elem()
	args := make([]any, 0, len(before)+len(p.fields)+extra)
	args = append(args, before...)
	for _, f := range p.fields {
		v, _ := f.ValueOf(tx.Statement.Context, rv)
		args = append(args, v)
	}
	return args
}

type insertPlanKey struct {
	model   reflect.Type
	count   string
	dialect string
}

// insertPlans keeps the plans made (a handful: one per model and count).
var insertPlans sync.Map

func insertPlanOf(tx *gorm.DB, row any, count string) (*insertPlan, error) {
	key := insertPlanKey{reflect.TypeOf(row), count, tx.Dialector.Name()}
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
		if count == "" {
			vals = append(vals, "?")
			continue
		}
		// Parameters in a SELECT list have no column to take their type
		// from: each is cast to its column's type.
		vals = append(vals, "CAST(? AS "+tx.Dialector.DataTypeOf(f)+")")
	}
	into := "INSERT INTO " + stmt.Quote(stmt.Table) + " (" + strings.Join(cols, ", ") + ")"
	if count == "" {
		p.sql = into + " VALUES (" + strings.Join(vals, ", ") + ")"
	} else {
		p.sql = "WITH kept AS (" + count + ") " + into + " SELECT " + strings.Join(vals, ", ") + " FROM kept WHERE kept.n < ?"
	}
	insertPlans.Store(key, p)
	return p, nil
}
