package database_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

// TestAHeldWriteGoesOutWithTheUnitsNextStatement: a row InsertLater writes
// in a Unit goes out, on PostgreSQL, in the WITH of the Unit's Exec (one
// statement for both), before any other statement of the transaction
// (which sees it), or before the commit; it is dropped with a rollback and
// fails the statement it goes out with. Outside a Unit, or on SQLite, it
// is written at once.
func TestAHeldWriteGoesOutWithTheUnitsNextStatement(t *testing.T) {
	t.Parallel()
	db := openQuota(t)
	var statements atomic.Int64
	if err := db.Gorm.Callback().Raw().After("*").Register("test:count", func(*gorm.DB) { statements.Add(1) }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	newRow := func(owner string) quotaRow {
		est := 25
		return quotaRow{ID: uuid.New(), Owner: owner, Estimate: &est, At: at}
	}
	exists := func(id uuid.UUID) bool {
		t.Helper()
		var n int64
		if err := db.Gorm.Model(&quotaRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	held := func(uctx context.Context, row *quotaRow) {
		t.Helper()
		if err := db.TxOrJoin(uctx, func(tx *gorm.DB) error { return database.InsertLater(tx, row) }); err != nil {
			t.Fatal(err)
		}
	}
	count := `INSERT INTO quota_counts (owner, n) VALUES (?, 1) ON CONFLICT (owner) DO UPDATE SET n = quota_counts.n + 1`
	newUnit := func() (*database.Unit, context.Context) {
		unit, uctx := db.NewUnit(ctx)
		t.Cleanup(func() { _ = unit.Rollback() }) // a failed check leaves no transaction open
		return unit, uctx
	}

	// With the Unit's Exec: one statement writes both rows.
	unit, uctx := newUnit()
	first := newRow("alice")
	held(uctx, &first)
	before := statements.Load()
	if n, err := unit.Exec(count, "alice"); err != nil || n != 1 {
		t.Fatalf("exec: %d rows, %v", n, err)
	}
	if got := statements.Load() - before; testkit.Postgres() && got != 1 {
		t.Fatalf("the held row and the Exec took %d statements, want 1", got)
	}
	if err := unit.Commit(); err != nil {
		t.Fatal(err)
	}
	var stored quotaRow
	if err := db.Gorm.Where("id = ?", first.ID).Take(&stored).Error; err != nil {
		t.Fatalf("the held row: %v", err)
	}
	if stored.Owner != "alice" || stored.Estimate == nil || *stored.Estimate != 25 || stored.Note != nil || !stored.At.Equal(at) {
		t.Fatalf("the held row was written as %+v", stored)
	}

	// An Exec with a WITH of its own: the held rows join it.
	unit, uctx = newUnit()
	second, third := newRow("bob"), newRow("bob")
	held(uctx, &second)
	held(uctx, &third)
	if _, err := unit.Exec("WITH o AS (SELECT ? AS owner) INSERT INTO quota_counts (owner, n) SELECT owner, 2 FROM o", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := unit.Commit(); err != nil {
		t.Fatal(err)
	}
	if !exists(second.ID) || !exists(third.ID) {
		t.Fatal("the rows held before an Exec with its own WITH were not written")
	}

	// A read in the transaction sees the held row; so does the commit.
	unit, uctx = newUnit()
	fourth, fifth := newRow("carol"), newRow("carol")
	held(uctx, &fourth)
	err := db.TxOrJoin(uctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&quotaRow{}).Where("owner = ?", "carol").Count(&n).Error; err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("the transaction's read saw %d held rows, want 1", n)
		}
		return database.InsertLater(tx, &fifth)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := unit.Commit(); err != nil {
		t.Fatal(err)
	}
	if !exists(fourth.ID) || !exists(fifth.ID) {
		t.Fatal("a row held until the commit was not written")
	}

	// A rollback drops it; the next Unit starts with nothing held.
	unit, uctx = newUnit()
	dropped := newRow("dave")
	held(uctx, &dropped)
	if err := unit.Rollback(); err != nil {
		t.Fatal(err)
	}
	unit, uctx = newUnit()
	sixth := newRow("dave")
	held(uctx, &sixth)
	if err := unit.Commit(); err != nil {
		t.Fatal(err)
	}
	if exists(dropped.ID) || !exists(sixth.ID) {
		t.Fatalf("rolled back row written %v, next unit's row written %v", exists(dropped.ID), exists(sixth.ID))
	}

	// A held row that cannot be written fails what it goes out with.
	unit, uctx = newUnit()
	again := sixth
	if err := db.TxOrJoin(uctx, func(tx *gorm.DB) error { return database.InsertLater(tx, &again) }); err == nil {
		if _, err := unit.Exec(count, "erin"); err == nil {
			t.Fatal("a held duplicate row did not fail the Exec it went out with")
		}
	} else if testkit.Postgres() {
		t.Fatalf("a held row failed at once: %v", err)
	}
	_ = unit.Rollback()
	var erin int64
	if err := db.Gorm.Table("quota_counts").Where("owner = ?", "erin").Count(&erin).Error; err != nil || erin != 0 {
		t.Fatalf("the failed Exec's own write: %d rows, %v", erin, err)
	}

	// Outside a Unit, the row is written in its transaction.
	outside := newRow("frank")
	if err := db.Tx(ctx, func(tx *gorm.DB) error { return database.InsertLater(tx, &outside) }); err != nil {
		t.Fatal(err)
	}
	if !exists(outside.ID) {
		t.Fatal("a row written outside a Unit is missing")
	}
}
