package database

import (
	"context"
	"fmt"

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
// rows it affected.
func (u *Unit) Exec(query string, args ...any) (int64, error) {
	if u.tx == nil {
		return 0, fmt.Errorf("unit: exec before any Tx began it")
	}
	res := u.tx.Exec(query, args...)
	return res.RowsAffected, res.Error
}

// Commit ends the Unit's transaction, if one began.
func (u *Unit) Commit() error {
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
	u.tx = nil
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
