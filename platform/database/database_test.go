package database_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

func open(t *testing.T, overrides ...any) *database.DB {
	t.Helper()
	return testkit.OpenDB(t, overrides...)
}

// River's SQLite migrations need jsonb (SQLite 3.45+); a downgrade of the
// pinned modernc.org/sqlite must fail here, loudly.
func TestSQLiteHasJSONB(t *testing.T) {
	t.Parallel()
	db := open(t)
	if db.Dialect != database.SQLite {
		t.Skip("SQLite only")
	}
	var out string
	if err := db.Gorm.Raw(`SELECT json(jsonb('{"a":1}'))`).Scan(&out).Error; err != nil {
		t.Fatalf("jsonb unavailable: %v", err)
	}
	if out != `{"a":1}` {
		t.Fatalf("jsonb round trip: %q", out)
	}
}

func TestMigrationsApplyTwiceAndDetectUniqueViolations(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	for range 2 {
		if err := db.Migrate(ctx, migrations.All(), migrations.River); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	err := db.Gorm.Exec(`INSERT INTO users (id, google_id, email, name, timezone, tier, version, created_at, updated_at)
		VALUES ('018f0000-0000-7000-8000-000000000001', 'g-1', 'a@b.co', 'a', 'UTC', 'free', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`).Error
	if err != nil {
		t.Fatal(err)
	}
	err = db.Gorm.Exec(`INSERT INTO users (id, google_id, email, name, timezone, tier, version, created_at, updated_at)
		VALUES ('018f0000-0000-7000-8000-0000000000ff', 'g-1', 'x@b.co', 'x', 'UTC', 'free', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`).Error
	if !database.IsUniqueViolation(err) {
		t.Fatalf("not recognised as a unique violation: %v", err)
	}
	if database.IsUniqueViolation(nil) {
		t.Fatal("nil is not a violation")
	}
	var n int
	if err := db.Gorm.Raw("SELECT count(*) FROM river_migration").Scan(&n).Error; err != nil || n != migrations.RiverVersion {
		t.Fatalf("river migrations: %d %v", n, err)
	}
}

func TestEscapeLike(t *testing.T) {
	t.Parallel()
	if got := database.EscapeLike(`50%_off\`); got != `50\%\_off\\` {
		t.Fatalf("%q", got)
	}
}

func TestPingFailsOnAClosedPool(t *testing.T) {
	t.Parallel()
	db := open(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	db.Close()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("ping succeeded on a closed pool")
	}
}

// Two transactions lock two rows in opposite orders: PostgreSQL aborts one
// as a deadlock, and Tx runs it again, so both succeed.
func TestTxRunsADeadlockedTransactionAgain(t *testing.T) {
	t.Parallel()
	db := open(t)
	if db.Dialect != database.Postgres {
		t.Skip("SQLite runs one transaction at a time: nothing to deadlock")
	}
	ctx := context.Background()
	if err := db.Gorm.Exec(`CREATE TABLE pair (id int PRIMARY KEY, v int NOT NULL);
		INSERT INTO pair VALUES (1, 0), (2, 0)`).Error; err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	var holding sync.WaitGroup
	holding.Add(2)
	both := make(chan struct{})
	go func() { holding.Wait(); close(both) }()
	run := func(first, second int) error {
		once := sync.Once{}
		return db.Tx(ctx, func(tx *gorm.DB) error {
			attempts.Add(1)
			if err := tx.Exec("UPDATE pair SET v = v + 1 WHERE id = ?", first).Error; err != nil {
				return err
			}
			once.Do(func() { holding.Done(); <-both }) // the first attempt waits for the other's lock
			return tx.Exec("UPDATE pair SET v = v + 1 WHERE id = ?", second).Error
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run(1, 2) }()
	go func() { errs <- run(2, 1) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a transaction failed: %v", err)
		}
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3 (one deadlock victim run again)", n)
	}
	var sum int
	db.Gorm.Raw("SELECT sum(v) FROM pair").Scan(&sum)
	if sum != 4 {
		t.Fatalf("sum %d, want 4: each transaction applied once", sum)
	}
}

// A transaction that keeps losing is run a bounded number of times, then
// reported as a conflict, never as an internal error.
func TestTxGivesUpOnEndlessSerializationFailures(t *testing.T) {
	t.Parallel()
	db := open(t)
	attempts := 0
	err := db.Tx(context.Background(), func(*gorm.DB) error {
		attempts++
		return fmt.Errorf("save: %w", &pgconn.PgError{Code: "40001"})
	})
	if !apperr.Is(err, apperr.CodeConflict) {
		t.Fatalf("err %v, want a CONFLICT", err)
	}
	if attempts != 5 {
		t.Fatalf("%d attempts, want 5", attempts)
	}
	other := errors.New("boom")
	attempts = 0
	if err := db.Tx(context.Background(), func(*gorm.DB) error { attempts++; return other }); !errors.Is(err, other) || attempts != 1 {
		t.Fatalf("an ordinary error was retried or changed: %v after %d attempts", err, attempts)
	}
}

// TestHandWrittenReadsAreNotStarvedByIdleConnections: GORM's database/sql
// pool and the hand-written reads share one pgx pool; connections idle in
// database/sql would be unavailable to the reads (with max_idle_conns =
// max_open_conns, every one of them).
func TestHandWrittenReadsAreNotStarvedByIdleConnections(t *testing.T) {
	t.Parallel()
	db := open(t, "database.max_open_conns", 2, "database.max_idle_conns", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Two transactions at once open two connections; both go back idle.
	a, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if db.Dialect == database.Postgres {
		b, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Commit()
	}
	_ = a.Commit()
	rows, err := db.Query(ctx, "SELECT 1")
	if err != nil {
		t.Fatalf("hand-written read: %v", err)
	}
	defer rows.Close()
	var one int
	if !rows.Next() || rows.Scan(&one) != nil || one != 1 {
		t.Fatalf("hand-written read: %v", rows.Err())
	}
}

// Tx under a Unit's context joins the Unit: nothing commits until the
// Unit's owner commits, a rollback keeps nothing, and a failed Tx marks the
// Unit failed.
func TestTxOrJoinJoinsTheUnitOfItsContextAndTxRefusesTo(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	if err := db.Gorm.Exec("CREATE TABLE unit_rows (n integer PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
	count := func() (n int64) {
		t.Helper()
		if err := db.Gorm.Table("unit_rows").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func(ctx context.Context, n int) error {
		return db.TxOrJoin(ctx, func(tx *gorm.DB) error { return tx.Exec("INSERT INTO unit_rows (n) VALUES (?)", n).Error })
	}

	unit, uctx := db.NewUnit(ctx)
	ran := false
	if err := db.Tx(uctx, func(*gorm.DB) error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("Tx under a Unit ran (%v): %v", ran, err)
	}
	if unit.Begun() {
		t.Fatal("a Unit began before any Tx")
	}
	for n := range 2 {
		if err := insert(uctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := unit.Exec("INSERT INTO unit_rows (n) VALUES (?)", 2); err != nil || n != 1 {
		t.Fatalf("exec in the unit: %d rows, %v", n, err)
	}
	if !unit.Begun() || unit.Failed() != nil {
		t.Fatalf("begun %v, failed %v", unit.Begun(), unit.Failed())
	}
	if testkit.Postgres() && count() != 0 { // SQLite's one writer is the Unit's until it ends
		t.Fatal("a joined Tx committed on its own")
	}
	if err := unit.Commit(); err != nil {
		t.Fatal(err)
	}
	if count() != 3 {
		t.Fatalf("rows after commit = %d, want 3", count())
	}

	unit, uctx = db.NewUnit(ctx)
	if err := insert(uctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := insert(uctx, 10); err == nil || unit.Failed() == nil {
		t.Fatalf("a failing Tx did not fail the unit: %v", err)
	}
	if err := insert(uctx, 11); err == nil {
		t.Fatal("a Tx ran in a failed unit")
	}
	if err := unit.Rollback(); err != nil {
		t.Fatal(err)
	}
	if count() != 3 {
		t.Fatalf("rows after rollback = %d, want 3", count())
	}
	if err := insert(ctx, 12); err != nil || count() != 4 {
		t.Fatalf("a Tx outside any unit: %v, rows %d", err, count())
	}
}

type versionedRow struct {
	ID        int `gorm:"primaryKey"`
	Name      string
	Other     string
	Version   int
	UpdatedAt time.Time
}

func (versionedRow) TableName() string { return "versioned_rows" }

func (r *versionedRow) Versioned() database.Versioned {
	return database.Versioned{Version: &r.Version, UpdatedAt: &r.UpdatedAt}
}

// TestSaveVersionWritesItsColumnsOnceAndRefusesAStaleRow: the named
// columns, the next version and the time are written when the row still
// has the version read; a row changed meanwhile is not written over, and
// the caller's copy keeps its version.
func TestSaveVersionWritesItsColumnsOnceAndRefusesAStaleRow(t *testing.T) {
	t.Parallel()
	db := open(t)
	if err := db.Gorm.Exec(`CREATE TABLE versioned_rows (id integer PRIMARY KEY, name text NOT NULL,
		other text NOT NULL, version integer NOT NULL, updated_at timestamp NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	then := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.Gorm.Create(&versionedRow{ID: 1, Name: "a", Other: "x", Version: 1, UpdatedAt: then}).Error; err != nil {
		t.Fatal(err)
	}
	stale := errors.New("stale")
	row := versionedRow{ID: 1, Name: "b", Other: "not saved", Version: 1, UpdatedAt: then}
	now := then.Add(time.Hour)
	if err := database.SaveVersion(db.Gorm, &row, now, stale, "name"); err != nil {
		t.Fatal(err)
	}
	var got versionedRow
	db.Gorm.Take(&got, 1)
	if got.Name != "b" || got.Other != "x" || got.Version != 2 || !got.UpdatedAt.Equal(now) || row.Version != 2 {
		t.Fatalf("saved %+v, copy version %d", got, row.Version)
	}
	old := versionedRow{ID: 1, Name: "c", Version: 1, UpdatedAt: then} // read before the save above
	if err := database.SaveVersion(db.Gorm, &old, now.Add(time.Hour), stale, "name"); !errors.Is(err, stale) {
		t.Fatalf("a stale save: %v", err)
	}
	db.Gorm.Take(&got, 1)
	if got.Name != "b" || got.Version != 2 || old.Version != 1 || !old.UpdatedAt.Equal(then) {
		t.Fatalf("after a stale save: row %+v, copy %+v", got, old)
	}
}

// NoFlushWait turns synchronous_commit off for its statement's transaction
// only: inside it the setting reads off, and the same connection's next
// transaction waits for the disk again.
func TestNoFlushWaitLastsOneTransaction(t *testing.T) {
	t.Parallel()
	db := open(t)
	if db.Dialect != database.Postgres {
		t.Skip("synchronous_commit is PostgreSQL's")
	}
	var inside, after string
	err := db.Gorm.Connection(func(conn *gorm.DB) error { // one connection throughout
		if err := conn.Transaction(func(tx *gorm.DB) error {
			return tx.Raw(database.NoFlushWait + ` SELECT current_setting('synchronous_commit') FROM no_flush_wait`).
				Scan(&inside).Error
		}); err != nil {
			return err
		}
		return conn.Raw("SHOW synchronous_commit").Scan(&after).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != "off" || after != "on" {
		t.Fatalf("synchronous_commit %q in the statement's transaction and %q after it, want off then on", inside, after)
	}
}
