package database

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/apperr"
)

// Unit is one transaction that spans a whole request: every TxOrJoin run
// under the context it returns joins it instead of committing on its own
// (and a Tx there is refused), and the Unit's owner commits once, with
// writes of its own (the idempotency record beside the change it answers).
// It begins on the first TxOrJoin, so a request that writes nothing holds
// no connection.
//
// A request in a Unit must do its writes through TxOrJoin on that context
// and must not wait on anything but the database while it runs (the Unit
// holds a connection and the locks until its owner ends it); on SQLite it
// must not touch the database outside TxOrJoin either, since the single
// writer connection is the Unit's.
type Unit struct {
	db  *DB
	ctx context.Context
	tx  *gorm.DB
	err error
	// later are the writes held back by Later, in order.
	later []write
}

// write is one statement and its arguments.
type write struct {
	query string
	args  []any
}

type unitKey struct{}

// NewUnit returns a Unit and the context that makes TxOrJoin join it.
func (db *DB) NewUnit(ctx context.Context) (*Unit, context.Context) {
	u := &Unit{db: db}
	u.ctx = context.WithValue(ctx, unitKey{}, u)
	return u, u.ctx
}

func unitOf(ctx context.Context, db *DB) *Unit {
	u, _ := ctx.Value(unitKey{}).(*Unit)
	if u == nil || u.db != db {
		return nil
	}
	return u
}

// Begun reports whether a TxOrJoin has joined the Unit (and its transaction is open).
func (u *Unit) Begun() bool { return u.tx != nil }

// Failed is the first error a joined TxOrJoin returned (nil if none): the Unit
// must then be rolled back, whatever the request answers.
func (u *Unit) Failed() error { return u.err }

// Exec runs one statement in the Unit's open transaction and returns the
// rows it affected. The writes Later held back go out in the same
// statement, before it (in its WITH): the statement must not read what they
// write, since a statement does not see its own WITH's changes.
func (u *Unit) Exec(query string, args ...any) (int64, error) {
	if u.tx == nil {
		return 0, fmt.Errorf("unit: exec before any Tx began it")
	}
	query, args = withWrites(u.later, query, args)
	u.later = nil
	res := u.tx.Exec(query, args...)
	return res.RowsAffected, res.Error
}

// Later runs a write nobody reads a result of (an INSERT, UPDATE or DELETE
// without RETURNING): at once, or, in a Unit's transaction on PostgreSQL,
// with the Unit's next statement. A write held back goes out on its own
// before any other statement of the transaction (which sees it, as it
// would have), or in the WITH of the Unit's Exec (the idempotency record),
// or before the commit: a request in a Unit saves a round trip for the
// first such write it does (its activity row). A failed write fails the
// statement it went out with, and so the Unit.
func Later(tx *gorm.DB, query string, args ...any) error {
	if u := holding(tx); u != nil {
		u.later = append(u.later, write{query, args})
		return nil
	}
	return tx.Exec(query, args...).Error
}

// holding is the Unit whose open transaction on PostgreSQL tx runs in, if
// any.
func holding(tx *gorm.DB) *Unit {
	ctx := tx.Statement.Context
	if ctx == nil {
		return nil
	}
	u, _ := ctx.Value(unitKey{}).(*Unit)
	if u == nil || u.tx == nil || u.db.Dialect != Postgres || tx.Statement.ConnPool != u.tx.Statement.ConnPool {
		return nil
	}
	return u
}

// sendHeld sends the writes held back, in one statement.
func (u *Unit) sendHeld() error {
	held := u.later
	u.later = nil
	if len(held) == 0 {
		return nil
	}
	last := held[len(held)-1]
	query, args := withWrites(held[:len(held)-1], last.query, last.args)
	return u.tx.Exec(query, args...).Error
}

// withWrites puts writes in the WITH of query: "WITH w0 AS (…), w1 AS (…)
// query", joining a WITH query already has.
func withWrites(writes []write, query string, args []any) (string, []any) {
	if len(writes) == 0 {
		return query, args
	}
	var b strings.Builder
	all := make([]any, 0, len(args)+4*len(writes))
	q := strings.TrimSpace(query)
	head, own := "WITH ", false
	for _, h := range []string{"WITH RECURSIVE ", "WITH "} {
		if len(q) >= len(h) && strings.EqualFold(q[:len(h)], h) {
			head, q, own = h, q[len(h):], true
			break
		}
	}
	b.WriteString(head)
	for i, w := range writes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "w%d AS (%s)", i, w.query)
		all = append(all, w.args...)
	}
	if own {
		b.WriteString(", ")
	} else {
		b.WriteString(" ")
	}
	b.WriteString(q)
	return b.String(), append(all, args...)
}

// sendHeldFirst is a GORM callback: before any statement of a Unit's
// transaction, the writes held back go out (so it sees them).
func sendHeldFirst(g *gorm.DB) {
	if u := holding(g); u != nil && len(u.later) > 0 {
		if err := u.sendHeld(); err != nil {
			_ = g.AddError(err)
		}
	}
}

// registerSendHeld has every kind of GORM statement send the held writes
// before it.
func registerSendHeld(g *gorm.DB) error {
	cb := g.Callback()
	for name, register := range map[string]func(string, func(*gorm.DB)) error{
		"create": cb.Create().Before("*").Register,
		"query":  cb.Query().Before("*").Register,
		"update": cb.Update().Before("*").Register,
		"delete": cb.Delete().Before("*").Register,
		"row":    cb.Row().Before("*").Register,
		"raw":    cb.Raw().Before("*").Register,
	} {
		if err := register("perpetua:send_held", sendHeldFirst); err != nil {
			return fmt.Errorf("register the held writes' callback (%s): %w", name, err)
		}
	}
	return nil
}

// Commit ends the Unit's transaction, if one began.
func (u *Unit) Commit() error {
	if u.tx != nil && len(u.later) > 0 {
		if err := u.sendHeld(); err != nil {
			_ = u.end((*gorm.DB).Rollback)
			return err
		}
	}
	if u.tx == nil || !u.db.watching() {
		return u.end((*gorm.DB).Commit)
	}
	changed, err := u.db.changedIn(u.tx)
	if err != nil {
		_ = u.end((*gorm.DB).Rollback)
		return err
	}
	if err := u.end((*gorm.DB).Commit); err != nil {
		return err
	}
	if len(changed) > 0 {
		u.db.watch(changed)
	}
	return nil
}

// Rollback abandons whatever the Unit's transaction did, if one began.
func (u *Unit) Rollback() error { return u.end((*gorm.DB).Rollback) }

// end closes the open transaction with how (once: later calls do nothing).
func (u *Unit) end(how func(*gorm.DB) *gorm.DB) error {
	if u.tx == nil {
		return nil
	}
	tx := u.tx
	u.tx, u.later = nil, nil
	return how(tx).Error
}

// join runs fn in the Unit's transaction, beginning it on first use. A
// deadlock or serialization failure aborts the whole Unit, so it is not
// retried here: it is reported as the conflict Tx reports after its last
// attempt.
func (u *Unit) join(fn func(tx *gorm.DB) error) error {
	if u.err != nil {
		return u.err
	}
	if u.tx == nil {
		tx := u.db.Gorm.WithContext(u.ctx).Begin()
		if tx.Error != nil {
			u.err = tx.Error
			return tx.Error
		}
		u.tx = tx
	}
	err := fn(u.tx)
	if err == nil {
		return nil
	}
	if retryReason(err) != "" {
		err = errCollided
	}
	u.err = err
	return err
}

var errCollided = apperr.New(apperr.KindConflict, apperr.CodeConflict,
	"the change collided with concurrent changes to the same data; try again")
