package billing_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

// inTx runs fn in a transaction of the app.
func inTx(t *testing.T, app *testkit.App, fn func(tx *gorm.DB) error) error {
	t.Helper()
	return app.DB.Tx(context.Background(), fn)
}

// TestConcurrentHoldsNeverOverdraw: twenty requests hold a credit each at
// a balance of 10, released together: ten holds are made. Settled holds
// are spent, released ones come back, each once.
func TestConcurrentHoldsNeverOverdraw(t *testing.T) {
	t.Parallel()
	app, credits := spender(t, testkit.WithConfig("limits.free.daily_ai_credits", 5))
	alice := app.SignIn(t, "alice@example.com") // 5 kickstart + 5 daily = 10
	ctx := context.Background()
	var mu sync.Mutex
	var held []uuid.UUID
	refused := 0
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			h := uuid.New()
			err := inTx(t, app, func(tx *gorm.DB) error {
				_, err := credits.Hold(ctx, tx, alice.ID, h, 1, "AI chat", app.Clock.Now().Add(5*time.Minute))
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				held = append(held, h)
			case apperr.Is(err, billing.CodeInsufficientCredits):
				refused++
			default:
				t.Errorf("hold: %v", err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	if len(held) != 10 || refused != 10 {
		t.Fatalf("%d held, %d refused; want 10 and 10", len(held), refused)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(0) {
		t.Fatalf("balance with every credit held: %v", b)
	}
	for i, h := range held {
		var err error
		if i < 5 {
			err = inTx(t, app, func(tx *gorm.DB) error {
				_, err := credits.Settle(ctx, tx, alice.ID, h, 1, "AI chat")
				return err
			})
		} else {
			err = inTx(t, app, func(tx *gorm.DB) error {
				ok, err := credits.Release(ctx, tx, alice.ID, h)
				if !ok && err == nil {
					t.Errorf("hold %d was not open", i)
				}
				return err
			})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(5) {
		t.Fatalf("balance after 5 settled and 5 released: %v", b)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = 'spend'", alice.ID); n != 5 {
		t.Fatalf("%d spend rows", n)
	}
	// Released twice, or settled after its release: nothing more comes back,
	// and a settlement after a release is a spend of its own.
	err := inTx(t, app, func(tx *gorm.DB) error {
		if ok, err := credits.Release(ctx, tx, alice.ID, held[9]); ok || err != nil {
			t.Errorf("second release: %v %v", ok, err)
		}
		if ok, err := credits.Release(ctx, tx, alice.ID, held[0]); ok || err != nil {
			t.Errorf("release of a settled hold: %v %v", ok, err)
		}
		_, err := credits.Settle(ctx, tx, alice.ID, held[8], 1, "AI chat")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(4) {
		t.Fatalf("balance %v", b)
	}
	// A hold is made once per id.
	err = inTx(t, app, func(tx *gorm.DB) error {
		_, err := credits.Hold(ctx, tx, alice.ID, held[1], 1, "AI chat", app.Clock.Now().Add(time.Minute))
		return err
	})
	if err != nil || balanceOf(t, app, alice)["total"] != float64(4) {
		t.Fatalf("a second hold with a used id: %v", err)
	}
}

// TestAChangeWaitingForTheLedgerSeesWhatTheHolderCommitted: a hold that
// waits for the user's ledger lock reads the ledger as the holder left it
// when it committed — here the 5 credits it granted, without which the
// hold of 12 (at a balance of 10) is refused. On PostgreSQL the lock and
// the read are one statement (credit_book): a read that took its
// snapshot before the lock was granted would miss the grant.
func TestAChangeWaitingForTheLedgerSeesWhatTheHolderCommitted(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("SQLite has one writer: nothing waits for a lock")
	}
	var ledger *billing.Ledger
	app := start(t, testkit.WithConfig("limits.free.daily_ai_credits", 5), testkit.WithFx(fx.Populate(&ledger)))
	alice := app.SignIn(t, "alice@example.com") // 5 kickstart + 5 daily = 10
	balanceOf(t, app, alice)                    // the day's credits granted
	ctx := context.Background()
	err := waitingHold(t, app, func(tx *gorm.DB) error {
		_, err := ledger.GrantCredits(ctx, tx, alice.ID, 5, "make up") // locks alice's ledger
		return err
	}, func(tx *gorm.DB) error {
		_, err := ledger.Hold(ctx, tx, alice.ID, uuid.New(), 12, "AI chat", app.Clock.Now().Add(time.Minute))
		return err
	})
	if err != nil {
		t.Fatalf("hold of 12 after a grant of 5 at a balance of 10: %v", err)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(3) {
		t.Fatalf("balance after the hold: %v", b)
	}
}

// TestTheLedgersFunctionTakesTheLockOfLockKey: credit_book hashes the
// key in SQL as database.LockKey does in Go (the purchase route locks the
// ledger with the latter, then changes it through the former): a hold
// waits while another transaction holds database.LockKey's lock.
func TestTheLedgersFunctionTakesTheLockOfLockKey(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("SQLite has one writer: nothing waits for a lock")
	}
	app, credits := spender(t)
	alice := app.SignIn(t, "alice@example.com")
	ctx := context.Background()
	err := waitingHold(t, app, func(tx *gorm.DB) error {
		return database.LockKey(tx, "credits:"+alice.ID.String())
	}, func(tx *gorm.DB) error {
		_, err := credits.Hold(ctx, tx, alice.ID, uuid.New(), 1, "AI chat", app.Clock.Now().Add(time.Minute))
		return err
	})
	if err != nil {
		t.Fatalf("hold after the lock was released: %v", err)
	}
}

// waitingHold runs lock in a transaction, then hold in another one, and
// commits the first once the second waits for an advisory lock (polled in
// pg_locks, 10 s at most); it returns hold's error.
func waitingHold(t *testing.T, app *testkit.App, lock, hold func(tx *gorm.DB) error) error {
	t.Helper()
	held := make(chan error, 1)
	err := inTx(t, app, func(tx *gorm.DB) error {
		if err := lock(tx); err != nil {
			return err
		}
		go func() { held <- inTx(t, app, hold) }()
		testkit.Eventually(t, 10*time.Second, "the hold to wait for the ledger's lock", func() bool {
			var waiting int64
			err := app.DB.Gorm.Raw(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting).Error
			return err == nil && waiting > 0
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return <-held
}

// TestAHoldItsProcessNeverEndedIsGivenBackByTheJob: credit_hold_release
// gives back the holds still open after their time, and only those.
func TestAHoldItsProcessNeverEndedIsGivenBackByTheJob(t *testing.T) {
	t.Parallel()
	app, credits := spender(t)
	alice := app.SignIn(t, "alice@example.com") // 15
	ctx := context.Background()
	lapsing, live := uuid.New(), uuid.New()
	err := inTx(t, app, func(tx *gorm.DB) error {
		if _, err := credits.Hold(ctx, tx, alice.ID, lapsing, 3, "AI chat", app.Clock.Now().Add(time.Minute)); err != nil {
			return err
		}
		_, err := credits.Hold(ctx, tx, alice.ID, live, 2, "transcription", app.Clock.Now().Add(time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(10) {
		t.Fatalf("balance with 5 held: %v", b)
	}
	app.Clock.Advance(2 * time.Minute)
	res, err := app.Queue.Insert(ctx, billing.CreditHoldReleaseArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "credit_hold_release", func() bool {
		return app.Count(t, "river_job", "id = ? AND state = 'completed'", res.Job.ID) == 1
	})
	if b := balanceOf(t, app, alice); b["total"] != float64(13) {
		t.Fatalf("balance after the lapsed hold came back: %v", b)
	}
	if app.Count(t, "credit_ledger", "hold_id = ? AND entry = 'released'", lapsing) != 1 ||
		app.Count(t, "credit_ledger", "hold_id = ? AND entry = 'release' AND amount = 3", lapsing) != 1 ||
		app.Count(t, "credit_ledger", "hold_id = ? AND entry = 'hold'", live) != 1 {
		t.Fatal("the job released the wrong holds")
	}
	// The history shows the hold and what came back.
	hist := app.Do(t, alice, http.MethodGet, "/api/v1/credits/history", nil).Expect(t, http.StatusOK).List(t)
	if hist[0]["type"] != "grant" || hist[0]["amount"] != float64(3) || hist[0]["category"] != "daily" {
		t.Fatalf("newest history row %v", hist[0])
	}
}

// TestCreditsHeldOverMidnightExpireWhenGivenBack: a day's credits held
// before midnight and given back after it are written off, as they would
// have been.
func TestCreditsHeldOverMidnightExpireWhenGivenBack(t *testing.T) {
	t.Parallel()
	app, credits := spender(t)
	now := app.Clock.Now().UTC()
	app.Clock.Set(time.Date(now.Year(), now.Month(), now.Day(), 23, 59, 50, 0, time.UTC))
	alice := app.SignIn(t, "alice@example.com") // 5 kickstart + 10 daily
	ctx := context.Background()
	h := uuid.New()
	if err := inTx(t, app, func(tx *gorm.DB) error {
		_, err := credits.Hold(ctx, tx, alice.ID, h, 4, "AI chat", app.Clock.Now().Add(5*time.Minute))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	app.Clock.Advance(20 * time.Second)
	if err := inTx(t, app, func(tx *gorm.DB) error {
		_, err := credits.Release(ctx, tx, alice.ID, h)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b := balanceOf(t, app, alice); b["daily"] != float64(10) || b["total"] != float64(15) {
		t.Fatalf("the next day: %v (today's 10 daily and 5 welcome credits)", b)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = 'expire' AND kind = 'daily' AND amount = -4", alice.ID); n != 1 {
		t.Fatalf("%d write-offs of the 4 given back after their day", n)
	}
}

// TestABalanceReadTakesNoLockOnceTheDayIsGranted: while another
// transaction holds the user's ledger (a spend under way), reading the
// balance answers at once; only the day's first read writes (and locks).
func TestABalanceReadTakesNoLockOnceTheDayIsGranted(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("SQLite has one writer, and every request writes (its rate-limit lease) before it reads")
	}
	app, credits := spender(t)
	alice := app.SignIn(t, "alice@example.com")
	balanceOf(t, app, alice) // the day's first read grants the day's credits
	answered := make(chan *testkit.Response, 1)
	err := inTx(t, app, func(tx *gorm.DB) error {
		if _, err := credits.Balance(context.Background(), tx, alice.ID); err != nil { // locks alice's ledger
			return err
		}
		go func() {
			res, err := app.Call(alice, testkit.Request{Method: http.MethodGet, Path: "/api/v1/credits/balance"})
			if err != nil {
				t.Error(err)
			}
			answered <- res
		}()
		select {
		case res := <-answered:
			if res == nil || res.Status != http.StatusOK {
				t.Errorf("balance read: %+v", res)
			}
		case <-time.After(10 * time.Second):
			t.Error("the balance read waited for the ledger's lock")
			<-answered // it goes on once the lock is released
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestASettlementWithoutItsHoldSpendsFromTheBalance: a hold that is not
// there (lost with an AI admission a database crash took before it reached
// the disk) is spent from the balance, and refused with 402 beyond it: the
// charge never overdraws.
func TestASettlementWithoutItsHoldSpendsFromTheBalance(t *testing.T) {
	t.Parallel()
	app, credits := spender(t, testkit.WithConfig("limits.free.daily_ai_credits", 0))
	alice := app.SignIn(t, "alice@example.com") // 5 kickstart
	ctx := context.Background()
	settle := func(hold uuid.UUID, amount int) error {
		return inTx(t, app, func(tx *gorm.DB) error {
			_, err := credits.Settle(ctx, tx, alice.ID, hold, amount, "AI chat")
			return err
		})
	}
	lost := uuid.New()
	if err := settle(lost, 3); err != nil {
		t.Fatalf("settle without a hold: %v", err)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(2) {
		t.Fatalf("balance after a 3-credit settlement without its hold: %v", b)
	}
	if err := settle(uuid.New(), 3); !apperr.Is(err, billing.CodeInsufficientCredits) {
		t.Fatalf("settling 3 at a balance of 2: %v, want %s", err, billing.CodeInsufficientCredits)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(2) {
		t.Fatalf("balance after a refused settlement: %v", b)
	}
}
