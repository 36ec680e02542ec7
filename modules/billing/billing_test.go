package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/test/testkit"
)

const webhookSecret = "whsec_test_secret"

func start(t *testing.T, opts ...testkit.Option) *testkit.App {
	t.Helper()
	return testkit.Start(t, append([]testkit.Option{testkit.Modules(billing.Module, notifications.Module),
		testkit.WithConfig("billing.checkout.webhook_secret", webhookSecret)}, opts...)...)
}

func balanceOf(t *testing.T, app *testkit.App, u *testkit.User) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t)
}

func TestNewUserGetsKickstartAndDailyCredits(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	b := balanceOf(t, app, alice)
	if b["kickstart"] != float64(5) || b["daily"] != float64(10) || b["subscription"] != float64(0) ||
		b["purchased"] != float64(0) || b["total"] != float64(15) {
		t.Fatalf("balance %v", b)
	}
	alice = app.SignIn(t, "alice@example.com") // signing in again grants no second kickstart
	if b := balanceOf(t, app, alice); b["kickstart"] != float64(5) {
		t.Fatalf("kickstart granted twice: %v", b)
	}
	ai := app.Do(t, alice, http.MethodGet, "/api/v1/ai/credits", nil).Expect(t, http.StatusOK).Data(t)
	next := time.Date(app.Clock.Now().UTC().Year(), app.Clock.Now().UTC().Month(), app.Clock.Now().UTC().Day()+1, 0, 0, 0, 0, time.UTC)
	if ai["tier"] != "free" || ai["balance"].(map[string]any)["daily_free"] != float64(10) ||
		ai["daily_reset_at"] != next.Format(time.RFC3339) {
		t.Fatalf("/ai/credits %v", ai)
	}
	hist := app.Do(t, alice, http.MethodGet, "/api/v1/credits/history", nil).Expect(t, http.StatusOK).JSON(t)
	rows := hist["data"].([]any)
	if len(rows) != 2 || hist["pagination"].(map[string]any)["limit"] != float64(50) {
		t.Fatalf("history %v", hist)
	}
	first := rows[1].(map[string]any) // oldest
	if first["type"] != "grant" || first["category"] != "kickstart" || first["amount"] != float64(5) || first["balance_after"] != float64(5) {
		t.Fatalf("kickstart row %v", first)
	}
}

// TestDailyCreditsExpireAtUTCMidnight: yesterday's daily credits are
// written off by credit_expire, which also grants the new day's to users
// who came yesterday.
func TestDailyCreditsExpireAtUTCMidnight(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	balanceOf(t, app, alice)
	now := app.Clock.Now().UTC()
	app.Clock.Set(time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 1, 0, time.UTC))
	res, err := app.Queue.Insert(context.Background(), billing.CreditExpireArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "credit_expire", func() bool {
		return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
	})
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = ? AND kind = ? AND amount = ?", alice.ID, "expire", "daily", -10); n != 1 {
		t.Fatalf("%d expiry rows", n)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = ? AND kind = ?", alice.ID, "grant", "daily"); n != 2 {
		t.Fatalf("%d daily grants, want yesterday's and today's", n)
	}
	alice = app.SignIn(t, "alice@example.com")
	if b := balanceOf(t, app, alice); b["daily"] != float64(10) || b["total"] != float64(15) {
		t.Fatalf("next day %v", b)
	}
}

// spender is the ledger's face, as the AI module uses it.
func spender(t *testing.T, opts ...testkit.Option) (*testkit.App, billing.Credits) {
	t.Helper()
	var credits billing.Credits
	app := start(t, append(opts, testkit.WithFx(fx.Populate(&credits)))...)
	return app, credits
}

func TestConcurrentSpendsNeverOverdraw(t *testing.T) {
	t.Parallel()
	var ledger *billing.Ledger
	app := start(t, testkit.WithConfig("limits.free.daily_ai_credits", 5), testkit.WithFx(fx.Populate(&ledger)))
	alice := app.SignIn(t, "alice@example.com") // 5 kickstart + 5 daily = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]int{}
	gate := make(chan struct{})
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			err := app.DB.Tx(context.Background(), func(tx *gorm.DB) error {
				_, err := ledger.Spend(context.Background(), tx, alice.ID, 1, "chat")
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				results["spent"]++
			case apperr.Is(err, billing.CodeInsufficientCredits):
				results["refused"]++
			default:
				results[err.Error()]++
			}
		}()
	}
	close(gate)
	wg.Wait()
	if results["spent"] != 10 || results["refused"] != 10 || len(results) != 2 {
		t.Fatalf("results %v; want 10 spent and 10 refused", results)
	}
	if b := balanceOf(t, app, alice); b["total"] != float64(0) {
		t.Fatalf("balance %v", b)
	}
}

func TestConcurrentFirstReadsOfTheDayGrantOnce(t *testing.T) {
	t.Parallel()
	app := start(t)
	app.SignIn(t, "alice@example.com")
	app.Clock.Advance(24 * time.Hour)
	alice := app.SignIn(t, "alice@example.com")
	var rs []testkit.Racer
	for range 20 {
		rs = append(rs, testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodGet, Path: "/api/v1/credits/balance"}})
	}
	for _, r := range app.Burst(t, rs) {
		r.Expect(t, http.StatusOK)
	}
	today := "daily:" + app.Clock.Now().UTC().Format(time.DateOnly)
	if n := app.Count(t, "credit_ledger", "user_id = ? AND once_key = ?", alice.ID, today); n != 1 {
		t.Fatalf("%d daily grants today after 20 concurrent first reads", n)
	}
}

// TestLedgerPropertiesHold runs random sequences of grants, spends, holds
// (settled, released, or left to lapse), expiries and renewals on one user
// and checks after every step that each kind's balance is the sum of its
// rows and of its lots' remainders, nothing is negative, a released hold
// nets to nothing, and spends and holds take the kinds in order. The
// checks read under the ledger's lock: the app's own jobs (credit_expire
// and credit_hold_release run at start and on their schedules) may change
// the ledger between two unlocked reads.
func TestLedgerPropertiesHold(t *testing.T) {
	t.Parallel()
	var ledger *billing.Ledger
	app := start(t, testkit.WithFx(fx.Populate(&ledger)))
	// A fixed start: the steps cross UTC midnights at the same points on
	// every run, whatever the time of day the test runs at.
	app.Clock.Set(time.Date(2026, 3, 28, 21, 30, 0, 0, time.UTC))
	alice := app.SignIn(t, "alice@example.com")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(42, 7))
	kinds := []string{"daily", "subscription", "purchased", "kickstart"}
	steps := 400
	if testing.Short() {
		steps = 80
	}
	var open []uuid.UUID // holds made by the test and not yet settled or released
	for step := range steps {
		// Every random draw is made before the transaction, which may run
		// again after a deadlock.
		op, n, pick, hold := rng.IntN(9), 1+rng.IntN(12), rng.Int(), uuid.New()
		lapse := time.Duration(1+rng.IntN(90)) * time.Minute
		var before billing.Balance
		var last struct{ ID uuid.UUID }
		var settled, released bool
		err := app.DB.Tx(ctx, func(tx *gorm.DB) error {
			var err error
			if before, err = ledger.Balance(ctx, tx, alice.ID); err != nil {
				return err
			}
			if err := tx.Raw(`SELECT id FROM credit_ledger WHERE user_id = ? ORDER BY id DESC LIMIT 1`, alice.ID).Scan(&last).Error; err != nil {
				return err
			}
			switch op {
			case 0, 1:
				_, err = ledger.Spend(ctx, tx, alice.ID, n, "chat")
			case 2:
				_, _, err = ledger.GrantPurchase(ctx, tx, alice.ID, 1+pick%20, uuid.NewString())
			case 3:
				err = ledger.RenewSubscription(ctx, tx, alice.ID, 50, app.Clock.Now().AddDate(0, 1, 0), uuid.NewString())
			case 4:
				err = ledger.EndSubscriptionCredits(ctx, tx, alice.ID)
			case 5:
				app.Clock.Advance(time.Duration(1+pick%30) * time.Hour)
			case 6:
				_, err = ledger.Hold(ctx, tx, alice.ID, hold, n, "chat", app.Clock.Now().Add(lapse))
			case 7, 8:
				if len(open) == 0 {
					return nil
				}
				h := open[pick%len(open)]
				var held int
				if err := tx.Raw(`SELECT COALESCE(-SUM(amount), 0) FROM credit_ledger WHERE hold_id = ? AND entry = 'hold'`, h).Scan(&held).Error; err != nil {
					return err
				}
				if op == 7 {
					// A transcription may cost more than it held.
					_, err = ledger.Settle(ctx, tx, alice.ID, h, held+pick%3, "chat")
					settled = err == nil
				} else {
					_, err = ledger.Release(ctx, tx, alice.ID, h)
					released = err == nil
				}
			}
			return err
		})
		if err != nil && !apperr.Is(err, billing.CodeInsufficientCredits) {
			t.Fatalf("step %d (op %d): %v", step, op, err)
		}
		switch {
		case op == 6 && err == nil:
			open = append(open, hold)
		case settled || released:
			i := pick % len(open)
			open = append(open[:i], open[i+1:]...)
		}
		checkLedger(t, app, ledger, step, func(tx *gorm.DB) {
			if op != 0 && op != 1 && op != 6 && op != 7 {
				return
			}
			// What this step spent or held took a kind only when every kind
			// before it was empty.
			var took []string
			tx.Raw(`SELECT kind FROM credit_ledger WHERE user_id = ? AND id > ? AND entry IN ('spend', 'hold')`, alice.ID, last.ID).Scan(&took)
			for i, k := range kinds {
				if !contains(took, k) {
					continue
				}
				for _, earlier := range kinds[:i] {
					if v := amountOf(before, earlier); v > 0 && !contains(took, earlier) {
						t.Fatalf("step %d (op %d): took %s while %s had %d", step, op, k, earlier, v)
					}
				}
			}
		})
	}
}

// checkLedger checks the ledger's invariants under the user's lock (the one
// user of TestLedgerPropertiesHold), then runs more checks in the same
// transaction.
func checkLedger(t *testing.T, app *testkit.App, ledger *billing.Ledger, step int, more func(tx *gorm.DB)) {
	t.Helper()
	err := app.DB.Tx(context.Background(), func(tx *gorm.DB) error {
		var users []uuid.UUID
		tx.Raw(`SELECT DISTINCT user_id FROM credit_ledger`).Scan(&users)
		for _, u := range users {
			if _, err := ledger.Balance(context.Background(), tx, u); err != nil { // takes the lock
				return err
			}
			var sums []struct {
				Kind      string
				Amount    int
				Remaining int
			}
			tx.Raw(`SELECT kind, SUM(amount) AS amount, SUM(remaining) AS remaining FROM credit_ledger WHERE user_id = ? GROUP BY kind`, u).Scan(&sums)
			total := 0
			for _, s := range sums {
				if s.Amount != s.Remaining || s.Amount < 0 {
					t.Fatalf("step %d: kind %s sums to %d with %d remaining in its lots", step, s.Kind, s.Amount, s.Remaining)
				}
				total += s.Amount
			}
			var last struct{ BalanceAfter int }
			tx.Raw(`SELECT balance_after FROM credit_ledger WHERE user_id = ? ORDER BY id DESC LIMIT 1`, u).Scan(&last)
			if last.BalanceAfter != total {
				t.Fatalf("step %d: last balance_after %d, ledger sum %d", step, last.BalanceAfter, total)
			}
			var unbalanced int
			tx.Raw(`SELECT COUNT(*) FROM (SELECT hold_id FROM credit_ledger WHERE user_id = ? AND hold_id IS NOT NULL
				AND hold_id IN (SELECT hold_id FROM credit_ledger WHERE entry = 'released') GROUP BY hold_id HAVING SUM(amount) <> 0) x`, u).Scan(&unbalanced)
			if unbalanced != 0 {
				t.Fatalf("step %d: %d released holds do not net to zero", step, unbalanced)
			}
		}
		more(tx)
		return nil
	})
	if err != nil {
		t.Fatalf("step %d: check: %v", step, err)
	}
}

func amountOf(b billing.Balance, kind string) int {
	switch kind {
	case "daily":
		return b.Daily
	case "subscription":
		return b.Subscription
	case "purchased":
		return b.Purchased
	}
	return b.Kickstart
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sign(body []byte) string { return testkit.SignWebhook(webhookSecret, body) }

// payment is the data of a payment event: our session's reference, amount
// and currency, as the provider sends them back.
type payment struct {
	reference string
	amount    int64
	currency  string
}

func event(id, typ string, user uuid.UUID, meta map[string]any) []byte {
	return paymentEvent(id, typ, user, payment{reference: "ref", amount: 999, currency: "USD"}, meta)
}

func paymentEvent(id, typ string, user uuid.UUID, pay payment, meta map[string]any) []byte {
	if meta == nil {
		meta = map[string]any{}
	}
	meta["user_id"] = user.String()
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "created_on": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"id": "pay_" + id, "amount": pay.amount, "currency": pay.currency, "reference": pay.reference,
			"metadata": meta}})
	return b
}

// withProvider starts the app with a Checkout.com fake.
func withProvider(t *testing.T, opts ...testkit.Option) (*testkit.App, *testkit.Checkout) {
	t.Helper()
	provider := testkit.NewCheckout(t)
	return start(t, append([]testkit.Option{testkit.WithConfig("billing.checkout.api_url", provider.URL),
		testkit.WithConfig("billing.checkout.secret_key", provider.Key)}, opts...)...), provider
}

// payUpgrade opens the Pro payment page and delivers its captured
// payment; it returns the user signed in again (a Pro token).
func payUpgrade(t *testing.T, app *testkit.App, u *testkit.User, eventID string) *testkit.User {
	t.Helper()
	up := app.Do(t, u, http.MethodPost, "/api/v1/subscription/upgrade", map[string]any{}).Expect(t, http.StatusOK).Data(t)
	paid := paymentEvent(eventID, "payment_captured", u.ID, payment{reference: up["session_id"].(string), amount: 999, currency: "USD"},
		map[string]any{"purpose": "subscription"})
	deliver(t, app, paid, sign(paid)).Expect(t, http.StatusOK)
	return app.SignIn(t, u.Email)
}

func deliver(t *testing.T, app *testkit.App, body []byte, signature string) *testkit.Response {
	t.Helper()
	return app.Send(t, nil, testkit.Request{Method: http.MethodPost, Path: "/api/v1/webhooks/checkout", Body: body,
		Headers: map[string]string{"Cko-Signature": signature}})
}

func TestUpgradeOpensAHostedPaymentPage(t *testing.T) {
	t.Parallel()
	app, provider := withProvider(t)
	alice := app.SignIn(t, "alice@example.com")

	up := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/upgrade", map[string]any{}).Expect(t, http.StatusOK).Data(t)
	if up["checkout_url"] != "https://pay.sandbox.checkout.com/page/hpp_1" || up["tier"] != "free" || up["session_id"] == nil ||
		up["status"] != nil || up["features"].(map[string]any)["max_subtasks"] != float64(4) {
		t.Fatalf("upgrade answer %v", up)
	}
	req := provider.Requests()[0]
	meta := req["metadata"].(map[string]any)
	if provider.Authorizations()[0] != "Bearer sk_sbox_test" || req["amount"] != float64(999) || req["currency"] != "USD" ||
		req["reference"] != up["session_id"] || meta["user_id"] != alice.ID.String() || meta["purpose"] != "subscription" ||
		req["billing"].(map[string]any)["address"].(map[string]any)["country"] != "US" {
		t.Fatalf("request to the provider: %v (auth %v)", req, provider.Authorizations())
	}
	// The page returns to the web client's own routes.
	if req["success_url"] != "http://localhost:3000/dashboard/subscription/success" ||
		req["failure_url"] != "http://localhost:3000/pricing" || req["cancel_url"] != "http://localhost:3000/pricing" {
		t.Fatalf("return pages of the subscription: %v %v %v", req["success_url"], req["failure_url"], req["cancel_url"])
	}
	if n := app.Count(t, "payment_sessions", "id = ? AND user_id = ? AND provider_id = ? AND state = 'open' AND purpose = 'subscription' AND amount = 999",
		up["session_id"], alice.ID, "hpp_1"); n != 1 {
		t.Fatal("the payment session was not recorded")
	}
	// Opening the page changes nothing: only the webhook makes the user Pro.
	if me := app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Data(t); me["tier"] != "free" {
		t.Fatalf("tier %v before payment", me["tier"])
	}
	paid := paymentEvent("evt_pro", "payment_captured", alice.ID, payment{reference: up["session_id"].(string), amount: 999, currency: "USD"},
		map[string]any{"purpose": "subscription"})
	deliver(t, app, paid, sign(paid)).Expect(t, http.StatusOK)
	if app.Count(t, "payment_sessions", "id = ? AND state = 'paid'", up["session_id"]) != 1 {
		t.Fatal("the paid session is not marked paid")
	}
	alice = app.SignIn(t, "alice@example.com")

	// With a provider configured, credits bought wait for their payment.
	buy := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 50}).
		Expect(t, http.StatusOK).Data(t)
	if buy["success"] != false || buy["checkout_url"] != "https://pay.sandbox.checkout.com/page/hpp_2" || buy["credits_purchased"] != float64(0) ||
		buy["monthly_purchased"] != float64(0) || buy["monthly_remaining"] != float64(450) {
		t.Fatalf("purchase with a provider: %v", buy)
	}
	creditsReq := provider.Requests()[1]
	if creditsReq["amount"] != float64(500) || creditsReq["metadata"].(map[string]any)["credits"] != "50" ||
		creditsReq["metadata"].(map[string]any)["purpose"] != "credits" ||
		creditsReq["success_url"] != "http://localhost:3000/dashboard/credits/payment-success" ||
		creditsReq["failure_url"] != "http://localhost:3000/dashboard/credits/payment-cancel" ||
		creditsReq["cancel_url"] != "http://localhost:3000/dashboard/credits/payment-cancel" {
		t.Fatalf("credits payment request %v", creditsReq)
	}
	var sess struct{ ID string }
	app.DB.Gorm.Raw("SELECT id FROM payment_sessions WHERE provider_id = 'hpp_2'").Scan(&sess)
	credits := paymentEvent("evt_credits", "payment_captured", alice.ID, payment{reference: sess.ID, amount: 500, currency: "USD"},
		map[string]any{"purpose": "credits", "credits": 50})
	deliver(t, app, credits, sign(credits)).Expect(t, http.StatusOK)
	if b := balanceOf(t, app, alice); b["purchased"] != float64(50) {
		t.Fatalf("credits after payment %v", b)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/upgrade", nil).ExpectError(t, http.StatusConflict, "CONFLICT")
}

// TestReturnPagesFollowTheFrontendURL: paths are taken on FRONTEND_URL,
// full URLs as they are.
func TestReturnPagesFollowTheFrontendURL(t *testing.T) {
	t.Parallel()
	app, provider := withProvider(t, testkit.WithConfig("frontend_url", "https://app.example.com/"),
		testkit.WithConfig("billing.checkout.subscription_failure_url", "https://www.example.com/plans"))
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/upgrade", nil).Expect(t, http.StatusOK)
	req := provider.Requests()[0]
	if req["success_url"] != "https://app.example.com/dashboard/subscription/success" || req["failure_url"] != "https://www.example.com/plans" {
		t.Fatalf("return pages %v %v", req["success_url"], req["failure_url"])
	}
}

func TestUpgradeWithoutAProviderSaysHowToConfigureIt(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	res := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/upgrade", nil).
		ExpectError(t, http.StatusServiceUnavailable, "PAYMENT_SERVICE_UNAVAILABLE")
	if !strings.Contains(string(res.Body), "CHECKOUT_SECRET_KEY") {
		t.Fatal(string(res.Body))
	}
	if n := app.Count(t, "payment_sessions", ""); n != 0 {
		t.Fatalf("%d payment sessions recorded without a provider", n)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 10}).
		ExpectError(t, http.StatusForbidden, "TIER_REQUIRED")
	off := start(t, testkit.WithConfig("billing.checkout.webhook_secret", ""))
	deliver(t, off, []byte(`{"id":"evt_1","type":"payment_captured"}`), "00").
		ExpectError(t, http.StatusServiceUnavailable, "PAYMENT_SERVICE_UNAVAILABLE")
}

func TestWebhooksMakeProAndBackToFree(t *testing.T) {
	t.Parallel()
	app, _ := withProvider(t)
	alice := app.SignIn(t, "alice@example.com")
	up := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/upgrade", map[string]any{}).Expect(t, http.StatusOK).Data(t)

	captured := paymentEvent("evt_1", "payment_captured", alice.ID, payment{reference: up["session_id"].(string), amount: 999, currency: "USD"},
		map[string]any{"purpose": "subscription"})
	deliver(t, app, captured, "").ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	deliver(t, app, captured, sign([]byte("something else"))).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	deliver(t, app, []byte(`{"id": `), sign([]byte(`{"id": `))).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")

	deliver(t, app, captured, sign(captured)).Expect(t, http.StatusOK)
	deliver(t, app, captured, sign(captured)).Expect(t, http.StatusOK) // a replay: no second effect
	alice = app.SignIn(t, "alice@example.com")
	if me := app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Data(t); me["tier"] != "pro" {
		t.Fatalf("tier %v after payment", me["tier"])
	}
	sub := app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Expect(t, http.StatusOK).Data(t)
	if sub["tier"] != "pro" || sub["status"] != "active" || sub["current_period_end"] == nil ||
		sub["features"].(map[string]any)["max_subtasks"] != float64(10) || sub["features"].(map[string]any)["voice_notes"] != true {
		t.Fatalf("subscription %v", sub)
	}
	if b := balanceOf(t, app, alice); b["subscription"] != float64(50) {
		t.Fatalf("balance after payment %v", b)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND kind = ? AND entry = ?", alice.ID, "subscription", "grant"); n != 1 {
		t.Fatalf("%d subscription grants after a replayed event", n)
	}
	if n := app.Count(t, "notifications", "user_id = ? AND type = ?", alice.ID, "subscription"); n != 1 {
		t.Fatalf("%d subscription notifications", n)
	}

	// Unknown events and unknown users change nothing and answer 200.
	deliver(t, app, event("evt_x", "card_verified", alice.ID, nil), sign(event("evt_x", "card_verified", alice.ID, nil))).Expect(t, http.StatusOK)
	ghost := event("evt_ghost", "payment_captured", uuid.New(), nil)
	deliver(t, app, ghost, sign(ghost)).Expect(t, http.StatusOK)

	// Three declines open a week of grace; the check job ends it after.
	for i := range 3 {
		declined := event(fmt.Sprintf("evt_d%d", i), "payment_declined", alice.ID, nil)
		deliver(t, app, declined, sign(declined)).Expect(t, http.StatusOK)
	}
	sub = app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Data(t)
	if sub["status"] != "grace" || sub["tier"] != "pro" {
		t.Fatalf("after three declines %v", sub)
	}
	runCheck := func() {
		res, err := app.Queue.Insert(context.Background(), billing.SubscriptionCheckArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "subscription_check", func() bool {
			return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
		})
	}
	app.Clock.Advance(6 * 24 * time.Hour)
	runCheck()
	alice = app.SignIn(t, "alice@example.com")
	if me := app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Data(t); me["tier"] != "pro" {
		t.Fatal("grace ended early")
	}
	app.Clock.Advance(2 * 24 * time.Hour)
	runCheck()
	alice = app.SignIn(t, "alice@example.com")
	sub = app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Data(t)
	if sub["tier"] != "free" || sub["status"] != "expired" {
		t.Fatalf("after the grace period %v", sub)
	}
	if b := balanceOf(t, app, alice); b["subscription"] != float64(0) {
		t.Fatalf("subscription credits kept after the end: %v", b)
	}
}

func TestRenewalCarriesOverAtMostFifty(t *testing.T) {
	t.Parallel()
	app, _ := withProvider(t, testkit.WithConfig("limits.pro.monthly_credits", 80))
	alice := payUpgrade(t, app, app.SignIn(t, "alice@example.com"), "evt_a")
	app.Clock.Advance(30 * 24 * time.Hour)
	renewed := event("evt_b", "subscription_renewed", alice.ID, nil)
	deliver(t, app, renewed, sign(renewed)).Expect(t, http.StatusOK)
	alice = app.SignIn(t, "alice@example.com")
	if b := balanceOf(t, app, alice); b["subscription"] != float64(130) {
		t.Fatalf("after renewal %v, want 80 new + 50 carried", b)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = ? AND amount = ?", alice.ID, "carry_over", 50); n != 1 {
		t.Fatalf("%d carry-over rows", n)
	}
	cancel := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/cancel", nil).Expect(t, http.StatusOK).Data(t)
	if cancel["status"] != "cancelled" || cancel["access_until"] == nil {
		t.Fatalf("cancel %v", cancel)
	}
	if sub := app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Data(t); sub["cancel_at_period_end"] != true || sub["tier"] != "pro" {
		t.Fatalf("after cancel %v", sub)
	}
}

// makePro makes a user Pro as another instance's webhook would.
func makePro(t *testing.T, app *testkit.App, u *testkit.User) *testkit.User {
	t.Helper()
	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", u.ID).Error; err != nil {
		t.Fatal(err)
	}
	return app.SignIn(t, u.Email)
}

// TestPurchaseCreditsWithinTheMonthlyLimit: without a payment provider
// (development) credits bought are granted at once, within the limit.
func TestPurchaseCreditsWithinTheMonthlyLimit(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := makePro(t, app, app.SignIn(t, "alice@example.com"))

	got := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 100}).
		Expect(t, http.StatusOK).Data(t)
	if got["success"] != true || got["credits_purchased"] != float64(100) || got["new_balance"] != float64(115) ||
		got["monthly_purchased"] != float64(100) || got["monthly_remaining"] != float64(400) || got["checkout_url"] != nil {
		t.Fatalf("purchase %v", got)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 501}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 401}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 400}).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 1}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
}

// TestOperatorsChangesRaceCleanly: operators' changes released together
// with each other and with spends. Ten set-tier pro for a user with no
// subscription row yet: each is applied or refused with 409 CONFLICT (the
// row inserted meanwhile), never a database error, and one row results.
// Grants racing spends: every grant lands, the spends never overdraw, and
// the balance is what the ledger's rows add up to.
func TestOperatorsChangesRaceCleanly(t *testing.T) {
	t.Parallel()
	var plans billing.Plans
	var ledger *billing.Ledger
	app := start(t, testkit.WithConfig("limits.free.daily_ai_credits", 5), testkit.WithFx(fx.Populate(&plans, &ledger)))
	alice := app.SignIn(t, "alice@example.com") // 5 kickstart + 5 daily = 10
	until := app.Clock.Now().AddDate(0, 1, 0)
	race := func(n int, f func(i int) error) map[string]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		out := map[string]int{}
		gate := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				err := f(i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					out["ok"]++
				case apperr.Is(err, apperr.CodeConflict):
					out["conflict"]++
				case apperr.Is(err, billing.CodeInsufficientCredits):
					out["refused"]++
				default:
					out[err.Error()]++
				}
			}()
		}
		close(gate)
		wg.Wait()
		return out
	}
	got := race(10, func(int) error { _, err := plans.SetTier(context.Background(), alice.ID, "pro", &until); return err })
	t.Logf("set-tier x10: %v", got)
	if got["ok"] < 1 || got["ok"]+got["conflict"] != 10 {
		t.Fatalf("set-tier: %v", got)
	}
	if n := app.Count(t, "subscriptions", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("%d subscription rows", n)
	}
	if p, err := plans.Plan(context.Background(), alice.ID); err != nil || p.Tier != "pro" || p.Status != billing.StatusActive {
		t.Fatalf("plan %+v, %v", p, err)
	}

	before := balanceOf(t, app, alice)["total"].(float64)
	got = race(20, func(i int) error {
		if i%2 == 0 {
			_, err := plans.GrantCredits(context.Background(), alice.ID, 1, "race")
			return err
		}
		return app.DB.Tx(context.Background(), func(tx *gorm.DB) error {
			_, err := ledger.Spend(context.Background(), tx, alice.ID, 3, "chat")
			return err
		})
	})
	if n := app.Count(t, "credit_ledger", "user_id = ? AND kind = 'granted' AND entry = 'grant'", alice.ID); n != 10 {
		t.Fatalf("%d grants landed of 10 (%v)", n, got)
	}
	for k := range got {
		if k != "ok" && k != "refused" {
			t.Fatalf("outcomes %v", got)
		}
	}
	var sum int
	if err := app.DB.Gorm.Raw("SELECT COALESCE(SUM(amount), 0) FROM credit_ledger WHERE user_id = ?", alice.ID).Scan(&sum).Error; err != nil {
		t.Fatal(err)
	}
	b := balanceOf(t, app, alice)
	if spent := got["ok"] - 10; b["total"] != float64(sum) || sum < 0 || b["total"] != before+10-float64(3*spent) {
		t.Fatalf("balance %v (before %v), ledger sum %d, outcomes %v", b, before, sum, got)
	}
}
