package database_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/database"
)

// quotaRow has a column of each kind a model uses.
type quotaRow struct {
	ID       uuid.UUID `gorm:"type:uuid;primaryKey"`
	Owner    string    `gorm:"not null"`
	Estimate *int
	Done     bool      `gorm:"not null"`
	At       time.Time `gorm:"not null"`
	Note     *string
}

func (quotaRow) TableName() string { return "quota_rows" }

// openQuota opens a database with the tables of quotaRow and its counts.
func openQuota(t *testing.T) *database.DB {
	t.Helper()
	db := open(t)
	if err := db.Gorm.AutoMigrate(&quotaRow{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Gorm.Exec(`CREATE TABLE quota_counts (owner text PRIMARY KEY, n int NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	return db
}

const quotaCount = `INSERT INTO quota_counts (owner, n) VALUES (?, 0)
	ON CONFLICT (owner) DO UPDATE SET n = quota_counts.n RETURNING n`

// TestInsertBelowStopsConcurrentInsertsAtTheLimit: twenty transactions
// released together insert under a limit of five; five rows land, each as
// given, and the count's lock makes the others wait and find no room.
func TestInsertBelowStopsConcurrentInsertsAtTheLimit(t *testing.T) {
	t.Parallel()
	db := openQuota(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	insert := func(i int) (bool, error) {
		est, note := i, "note"
		row := quotaRow{ID: uuid.New(), Owner: "alice", Estimate: &est, Done: i%2 == 0, At: at.Add(time.Duration(i) * time.Second)}
		if i%3 == 0 {
			row.Estimate, row.Note = nil, &note
		}
		var ok bool
		err := db.Tx(ctx, func(tx *gorm.DB) (err error) {
			if ok, err = database.InsertBelow(tx, &row, quotaCount, []any{"alice"}, 5); err != nil || !ok {
				return err
			}
			return tx.Exec("UPDATE quota_counts SET n = n + 1 WHERE owner = ?", "alice").Error
		})
		if ok {
			var got quotaRow
			if err := db.Gorm.Where("id = ?", row.ID).Take(&got).Error; err != nil {
				t.Errorf("inserted row %d not found: %v", i, err)
			} else if got.Owner != row.Owner || (got.Estimate == nil) != (row.Estimate == nil) ||
				(got.Estimate != nil && *got.Estimate != *row.Estimate) || got.Done != row.Done ||
				!got.At.Equal(row.At) || (got.Note == nil) != (row.Note == nil) {
				t.Errorf("row %d read back as %+v, written as %+v", i, got, row)
			}
		}
		return ok, err
	}

	if db.Dialect != database.Postgres {
		// SQLite: nothing inserted, the caller's own path runs.
		if ok, err := insert(0); ok || err != nil {
			t.Fatalf("InsertBelow on SQLite: %v, %v; want false, nil", ok, err)
		}
		var n int64
		db.Gorm.Model(&quotaRow{}).Count(&n)
		if n != 0 {
			t.Fatalf("%d rows on SQLite, want 0", n)
		}
		return
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make(chan bool, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := insert(i)
			if err != nil {
				t.Errorf("insert %d: %v", i, err)
			}
			results <- ok
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	inserted := 0
	for ok := range results {
		if ok {
			inserted++
		}
	}
	var rows, kept int64
	db.Gorm.Model(&quotaRow{}).Count(&rows)
	db.Gorm.Raw("SELECT n FROM quota_counts WHERE owner = 'alice'").Scan(&kept)
	if inserted != 5 || rows != 5 || kept != 5 {
		t.Fatalf("%d reported inserted, %d rows, count %d; want 5 of each", inserted, rows, kept)
	}
}
