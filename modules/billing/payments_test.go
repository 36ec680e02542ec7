package billing_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// sessionOf is our record of a payment page the provider opened.
func sessionOf(t *testing.T, app *testkit.App, providerID string) string {
	t.Helper()
	var s struct{ ID string }
	app.DB.Gorm.Raw("SELECT id FROM payment_sessions WHERE provider_id = ?", providerID).Scan(&s)
	if s.ID == "" {
		t.Fatalf("no payment session for %s", providerID)
	}
	return s.ID
}

func purchase(app *testkit.App, u *testkit.User, amount int) testkit.Racer {
	return testkit.Racer{User: u, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/subscription/purchase-credits",
		Body: map[string]any{"amount": amount}}}
}

// TestOpenPaymentPagesCountAgainstTheMonthlyLimit: a page for 500 credits
// leaves nothing to buy until it is paid, declined or expires; twenty
// concurrent purchases of 100 open five pages; paid, they grant 500.
func TestOpenPaymentPagesCountAgainstTheMonthlyLimit(t *testing.T) {
	t.Parallel()
	app, provider := withProvider(t)
	alice := payUpgrade(t, app, app.SignIn(t, "alice@example.com"), "evt_pro")

	first := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 500}).
		Expect(t, http.StatusOK).Data(t)
	if first["checkout_url"] == nil || first["monthly_remaining"] != float64(0) {
		t.Fatalf("first page: %v", first)
	}
	for range 2 {
		app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 500}).
			ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	}
	if len(provider.Requests()) != 2 { // the upgrade's and the first purchase's
		t.Fatalf("%d pages opened", len(provider.Requests()))
	}
	// Declined, the page frees its place.
	page := sessionOf(t, app, "hpp_2")
	declined := paymentEvent("evt_declined", "payment_declined", alice.ID, payment{reference: page, amount: 5000, currency: "USD"},
		map[string]any{"purpose": "credits"})
	deliver(t, app, declined, sign(declined)).Expect(t, http.StatusOK)
	if sub := app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Data(t); sub["status"] != "active" {
		t.Fatalf("a declined purchase counted as a failed subscription payment: %v", sub)
	}
	second := app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 500}).
		Expect(t, http.StatusOK).Data(t)
	// Expired, it frees it too.
	app.Clock.Advance(25 * time.Hour)
	alice = app.SignIn(t, alice.Email)
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 500}).Expect(t, http.StatusOK)
	if second["monthly_remaining"] != float64(0) {
		t.Fatalf("second page: %v", second)
	}
	// The first page can still take another card: a capture is honoured
	// (the provider took the money), once.
	paid := paymentEvent("evt_late", "payment_captured", alice.ID, payment{reference: page, amount: 5000, currency: "USD"},
		map[string]any{"purpose": "credits"})
	deliver(t, app, paid, sign(paid)).Expect(t, http.StatusOK)
	if b := balanceOf(t, app, alice); b["purchased"] != float64(500) {
		t.Fatalf("balance %v", b)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 1}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
}

func TestConcurrentPurchasesOpenPagesWithinTheLimit(t *testing.T) {
	t.Parallel()
	app, provider := withProvider(t)
	alice := payUpgrade(t, app, app.SignIn(t, "alice@example.com"), "evt_pro")
	var rs []testkit.Racer
	for range 20 {
		rs = append(rs, purchase(app, alice, 100))
	}
	counts := testkit.Statuses(app.Burst(t, rs))
	if counts[http.StatusOK] != 5 || counts[http.StatusConflict] != 15 {
		t.Fatalf("statuses %v, want 5×200 and 15×409", counts)
	}
	if n := app.Count(t, "payment_sessions", "user_id = ? AND purpose = 'credits' AND state = 'open'", alice.ID); n != 5 || len(provider.Requests()) != 6 {
		t.Fatalf("%d open sessions, %d pages", n, len(provider.Requests()))
	}
	for i := range 5 {
		page := sessionOf(t, app, fmt.Sprintf("hpp_%d", i+2))
		paid := paymentEvent(fmt.Sprintf("evt_%d", i), "payment_captured", alice.ID,
			payment{reference: page, amount: 1000, currency: "USD"}, map[string]any{"purpose": "credits"})
		deliver(t, app, paid, sign(paid)).Expect(t, http.StatusOK)
		deliver(t, app, paid, sign(paid)).Expect(t, http.StatusOK) // replayed
	}
	if b := balanceOf(t, app, alice); b["purchased"] != float64(500) {
		t.Fatalf("balance %v", b)
	}
}

// TestAPaymentGrantsWhatOurSessionRecordSays: the credits come from our
// record of the page, never from the event's metadata, and only when the
// event's amount and currency match it; whatever an event says, the
// user's balance stays readable.
func TestAPaymentGrantsWhatOurSessionRecordSays(t *testing.T) {
	t.Parallel()
	app, _ := withProvider(t)
	alice := payUpgrade(t, app, app.SignIn(t, "alice@example.com"), "evt_pro")
	bob := payUpgrade(t, app, app.SignIn(t, "bob@example.com"), "evt_pro_bob")
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 50}).Expect(t, http.StatusOK)
	app.Do(t, bob, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 10}).Expect(t, http.StatusOK)
	page, bobs := sessionOf(t, app, "hpp_3"), sessionOf(t, app, "hpp_4")
	huge := map[string]any{"purpose": "credits", "credits": int64(9223372036854775807)}
	for name, pay := range map[string]payment{
		"too little":        {reference: page, amount: 1, currency: "USD"},
		"another currency":  {reference: page, amount: 500, currency: "EUR"},
		"no session":        {reference: "not-ours", amount: 500, currency: "USD"},
		"another's session": {reference: bobs, amount: 100, currency: "USD"},
	} {
		e := paymentEvent("evt_"+strings.ReplaceAll(name, " ", "_"), "payment_captured", alice.ID, pay, huge)
		deliver(t, app, e, sign(e)).Expect(t, http.StatusOK)
	}
	if b := balanceOf(t, app, alice); b["purchased"] != float64(0) {
		t.Fatalf("an event that does not match our record granted credits: %v", b)
	}
	e := paymentEvent("evt_ok", "payment_captured", alice.ID, payment{reference: page, amount: 500, currency: "usd"}, huge)
	deliver(t, app, e, sign(e)).Expect(t, http.StatusOK)
	if b := balanceOf(t, app, alice); b["purchased"] != float64(50) || b["total"] != float64(115) {
		t.Fatalf("balance %v, want the 50 of our record", b)
	}
	// Later grants and reads keep working.
	app.Do(t, alice, http.MethodGet, "/api/v1/credits/history", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 10}).Expect(t, http.StatusOK)
}

// TestWebhookFieldsOutOfRangeAre400: a field the provider could never send
// is refused with 400 before anything is written, never a 500 it would
// retry for days.
func TestWebhookFieldsOutOfRangeAre400(t *testing.T) {
	t.Parallel()
	app, _ := withProvider(t)
	alice := app.SignIn(t, "alice@example.com")
	raw := func(body string) *testkit.Response {
		return deliver(t, app, []byte(body), sign([]byte(body)))
	}
	long := strings.Repeat("e", 201)
	for _, body := range []string{
		`{"id": "` + long + `", "type": "payment_captured"}`,
		`{"id": "evt_1", "type": "` + strings.Repeat("t", 101) + `"}`,
		`{"id": "evt_1", "type": "payment_captured", "data": {"id": "` + long + `"}}`,
		`{"id": "evt_1", "type": "payment_captured", "data": {"reference": "` + long + `"}}`,
		`{"id": "evt_1", "type": "payment_captured", "data": {"amount": -1}}`,
		`{"id": "evt_1", "type": "payment_captured", "data": {"amount": 100000000000}}`,
		`{"id": "evt_1", "type": "payment_captured", "data": {"amount": 1e30}}`,
		`{"id": "evt_1", "type": "payment_captured", "data": {"amount": 9.5}}`,
		`{"id": 7, "type": "payment_captured"}`,
	} {
		raw(body).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
	if n := app.Count(t, "webhook_events", ""); n != 0 {
		t.Fatalf("%d refused events recorded", n)
	}
	// Ids of 200 characters are taken.
	id := strings.Repeat("e", 200)
	raw(`{"id": "`+id+`", "type": "card_verified", "data": {"id": "`+id+`", "metadata": {"user_id": "`+alice.ID.String()+`"}}}`).
		Expect(t, http.StatusOK)
	if n := app.Count(t, "webhook_events", "id = ?", id); n != 1 {
		t.Fatal("the event of 200 characters was not recorded")
	}
}
