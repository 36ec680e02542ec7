package account_test

import (
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/account"
	"github.com/perpetuaflow/api/test/testkit"
)

// addActivity gives the user n activity rows, 2,000 a statement (the
// trigger that counts them updates one row per insert: one statement of
// 100,000 would pile up 100,000 versions of it).
func addActivity(t *testing.T, a *testkit.App, userID uuid.UUID, n int) {
	t.Helper()
	for n > 2000 {
		addActivity(t, a, userID, 2000)
		n -= 2000
	}
	id := "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-' || hex(randomblob(2)) || '-' || hex(randomblob(2)) || '-' || hex(randomblob(6)))"
	if testkit.Postgres() {
		id = "gen_random_uuid()"
	}
	err := a.DB.Gorm.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO activity_log (id, user_id, entity_type, entity_id, action, source, extra_data, request_id, created_at)
		SELECT `+id+`, ?, 'task', ?, 'updated', 'user', '{"title":"a task title of some length, as users write them"}',
		'req-' || i, ? FROM n`, n, userID, uuid.New(), a.Clock.Now()).Error
	if err != nil {
		t.Fatal(err)
	}
}

// peakHeap runs f while sampling the live heap, and returns how far it rose
// above the heap before f.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// TestAnExportsMemoryDoesNotGrowWithTheRows: the archive of a user with
// 100,000 rows is written with about the memory of one with 1,000 (rows
// are streamed from the database to the compressor), so the figure is
// reported in the README. Not parallel: it reads the process's heap.
func TestAnExportsMemoryDoesNotGrowWithTheRows(t *testing.T) {
	a, svc, _ := start(t, testkit.WithRole("api"))
	small := a.SignIn(t, "small@example.com")
	large := a.SignIn(t, "large@example.com")
	addActivity(t, a, small.ID, 1_000)
	addActivity(t, a, large.ID, 100_000)

	measure := func(u *testkit.User) (uint64, int64, int64, time.Duration) {
		var rows int64
		var err error
		w := &countingWriter{}
		began := time.Now()
		peak := peakHeap(func() { rows, err = svc.WriteArchive(t.Context(), w, u.ID, a.Clock.Now()) })
		if err != nil {
			t.Fatal(err)
		}
		return peak, rows, w.n, time.Since(began)
	}
	measure(small) // warm up: connections, statements, buffers
	smallPeak, smallRows, _, _ := measure(small)
	largePeak, largeRows, size, took := measure(large)
	t.Logf("export of %d rows: heap +%.1f MB; of %d rows: heap +%.1f MB, archive %.1f MB, %s (%s)",
		smallRows, mb(smallPeak), largeRows, mb(largePeak), float64(size)/(1<<20), took.Round(time.Millisecond), testkit.Dialect())
	if largeRows < 100_000 {
		t.Fatalf("exported %d rows of the large user", largeRows)
	}
	if largePeak > smallPeak+16<<20 {
		t.Fatalf("the heap rose %.1f MB for 100,000 rows against %.1f MB for 1,000: rows are held in memory",
			mb(largePeak), mb(smallPeak))
	}

	// The same user erased: in batches of userdata.BatchSize rows.
	began := time.Now()
	e, err := svc.EraseNow(t.Context(), large.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("erasure of %d rows: %s", e.Erased["activity"], time.Since(began).Round(time.Millisecond))
	if e.Erased["activity"] != largeRows-3 || a.Count(t, "activity_log", "user_id = ?", large.ID) != 0 {
		t.Fatalf("erased %v", e.Erased)
	}
}

var _ account.Accounts = (*account.Service)(nil)

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
