package adversarial

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/test/testkit"
)

// Where money and outside services meet: requests that charge credits
// released together at small balances, providers that misbehave, payments
// replayed and forged, and URLs that name internal hosts.

// startWithBalance starts the app with local AI and transcription
// providers for users who have exactly k credits (no daily credits, k
// welcome credits).
func startWithBalance(t *testing.T, k int, opts ...testkit.Option) (*testkit.App, *testkit.OpenAI, *testkit.Deepgram) {
	t.Helper()
	providers, o, dg := testkit.AIFakes(t)
	return testkit.Start(t, append([]testkit.Option{providers, testkit.WithConfig("limits.free.daily_ai_credits", 0),
		testkit.WithConfig("limits.pro.daily_ai_credits", 0), testkit.WithConfig("billing.kickstart_credits", k)}, opts...)...), o, dg
}

// asPro makes u Pro as another instance would, and signs in again.
func asPro(t *testing.T, app *testkit.App, u *testkit.User) *testkit.User {
	t.Helper()
	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", u.ID).Error; err != nil {
		t.Fatal(err)
	}
	return app.SignIn(t, u.Email)
}

// ledgerSpent is what the ledger charged u: spends (and holds still open).
func ledgerSpent(t *testing.T, app *testkit.App, u *testkit.User) int {
	t.Helper()
	var n int
	if err := app.DB.Gorm.Raw("SELECT COALESCE(-SUM(amount), 0) FROM credit_ledger WHERE user_id = ? AND entry IN ('spend', 'hold')",
		u.ID).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func aiRequest(u *testkit.User, path string, body any) testkit.Racer {
	return testkit.Racer{User: u, Request: testkit.Request{Method: http.MethodPost, Path: path, Body: body,
		Headers: map[string]string{"Idempotency-Key": uuid.NewString()}}}
}

// TestChargingRoutesDeliverExactlyWhatWasPaidFor: at a balance of 3, a
// burst of every route that costs one credit (JSON chat, streamed chat,
// subtask suggestions, note drafts) from three sign-ins delivers exactly
// 3 answers; at a balance of 12, transcriptions of 45 s (5 credits) and
// voice notes deliver 2.
func TestChargingRoutesDeliverExactlyWhatWasPaidFor(t *testing.T) {
	t.Parallel()
	app, o, _ := startWithBalance(t, 3)
	o.ForShape("chat_answer", testkit.Reply{Content: `{"response": "One step.", "suggested_actions": []}`, Delay: 200 * time.Millisecond})
	users := []*testkit.User{app.SignIn(t, "alice@example.com"), app.SignIn(t, "alice@example.com"), app.SignIn(t, "alice@example.com")}
	task := create(t, app, users[0], "/api/v1/tasks", map[string]any{"title": "Move house"})["id"].(string)
	note := create(t, app, users[0], "/api/v1/notes", map[string]any{"content": "book the van"})["id"].(string)
	var rs []testkit.Racer
	for i := range 24 {
		u := users[i%3]
		switch i % 4 {
		case 0:
			rs = append(rs, aiRequest(u, "/api/v1/ai/chat", map[string]any{"message": "hi"}))
		case 1:
			rs = append(rs, aiRequest(u, "/api/v1/ai/chat/stream", map[string]any{"message": "hi"}))
		case 2:
			rs = append(rs, aiRequest(u, "/api/v1/ai/generate-subtasks", map[string]any{"task_id": task}))
		case 3:
			rs = append(rs, aiRequest(u, "/api/v1/notes/"+note+"/convert", map[string]any{}))
		}
	}
	if delivered, _ := testkit.CheckCharges(t, app, users[0], app.Burst(t, rs), len(o.Requests())); delivered != 3 {
		t.Fatalf("%d answers at a balance of 3", delivered)
	}

	app2, _, dg := startWithBalance(t, 12)
	bob := asPro(t, app2, app2.SignIn(t, "bob@example.com"))
	rs = nil
	for i := range 8 {
		rs = append(rs, aiRequest(bob, "/api/v1/ai/transcribe", map[string]any{"audio_url": fmt.Sprintf("https://cdn.example.com/%d.m4a", i),
			"duration_seconds": 45}))
	}
	if delivered, charged := testkit.CheckCharges(t, app2, bob, app2.Burst(t, rs), len(dg.Requests())); delivered != 2 || charged != 10 {
		t.Fatalf("%d transcriptions for %d credits at a balance of 12", delivered, charged)
	}
	carol := asPro(t, app2, app2.SignIn(t, "carol@example.com"))
	rs = nil
	for i := range 8 {
		rs = append(rs, testkit.Racer{User: carol, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/notes",
			Body: map[string]any{"voice_url": fmt.Sprintf("https://cdn.example.com/v%d.webm", i), "voice_duration_seconds": 45}}})
	}
	counts := testkit.Statuses(app2.Burst(t, rs))
	if counts[http.StatusCreated] != 2 || counts[http.StatusPaymentRequired] != 6 {
		t.Fatalf("voice notes at a balance of 12: %v", counts)
	}
	testkit.Eventually(t, 15*time.Second, "both transcriptions", func() bool {
		return app2.Count(t, "notes", "user_id = ? AND transcription_status = 'completed'", carol.ID) == 2
	})
	if spent := ledgerSpent(t, app2, carol); spent != 10 {
		t.Fatalf("voice notes charged %d, want 10", spent)
	}
	// The balances' kept sums are the ledgers' own, after every race.
	checkKept(t, app, "charges raced")
	checkKept(t, app2, "transcriptions raced")
}

// TestMisbehavingProvidersNeverCharge: streams whose model stalls past the
// timeout, is cut, answers 500, or answers in ways it should not (extra
// keys, code fences, no finish_reason) are released together. Every
// answer is content or a 503-coded error; what is charged is what was
// answered in full, and no hold is left open.
func TestMisbehavingProvidersNeverCharge(t *testing.T) {
	t.Parallel()
	app, o, _ := startWithBalance(t, 100, testkit.WithConfig("ai.timeout", "1s"), testkit.WithConfig("ai.hold_ttl", "1m"))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "alice@example.com")
	good := []testkit.Reply{
		{Chunks: []string{"Fine", " answer."}},
		{Chunks: []string{"No finish ", "reason."}, NoFinish: true},
		{Chunks: []string{"```json\n{\"a\": 1}\n```"}},
	}
	bad := []testkit.Reply{
		{Hang: true},
		{Chunks: []string{"Half", " an answer", " never ends"}, CutAfter: 2},
		{Status: http.StatusInternalServerError},
		{Status: http.StatusTooManyRequests},
		{Chunks: []string{"slow"}, Delay: 3 * time.Second},
	}
	var script []testkit.Reply
	for range 2 {
		script = append(append(script, good...), bad...)
	}
	o.Script(script...)
	var rs []testkit.Racer
	for i := range script {
		u := alice
		if i%2 == 1 {
			u = bob
		}
		rs = append(rs, aiRequest(u, "/api/v1/ai/chat/stream", map[string]any{"message": fmt.Sprintf("q%d", i)}))
	}
	res := app.Burst(t, rs)
	done, failed := 0, 0
	for _, r := range res {
		a := testkit.ReadAnswer(r)
		switch {
		case a.Charged == 1:
			done++
		case a.ErrorCode == "AI_SERVICE_UNAVAILABLE":
			failed++
		default:
			t.Errorf("answer %d %s", r.Status, clip(r.Body))
		}
	}
	if done != 2*len(good) || failed != 2*len(bad) || ledgerSpent(t, app, alice) != done {
		t.Fatalf("%d answered in full, %d failed, %d charged; want %d, %d, %d", done, failed, ledgerSpent(t, app, alice),
			2*len(good), 2*len(bad), 2*len(good))
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = 'hold'", alice.ID); n != 0 {
		t.Fatalf("%d holds left open", n)
	}
	var counted int
	app.DB.Gorm.Raw("SELECT COALESCE(SUM(requests), 0) FROM ai_sessions WHERE user_id = ?", alice.ID).Scan(&counted)
	if counted != done {
		t.Fatalf("the sign-in sessions counted %d requests for %d answers: a failed one was not given back", counted, done)
	}
}

// TestConcurrentReplaysOfOnePaymentGrantOnce: the provider delivers one
// payment's event ten times at once, and five events of other ids for the
// same payment page: its credits are granted once.
func TestConcurrentReplaysOfOnePaymentGrantOnce(t *testing.T) {
	t.Parallel()
	checkout := testkit.NewCheckout(t)
	const secret = "whsec_adversarial"
	app := testkit.Start(t, testkit.WithConfig("billing.checkout.api_url", checkout.URL),
		testkit.WithConfig("billing.checkout.secret_key", checkout.Key), testkit.WithConfig("billing.checkout.webhook_secret", secret))
	alice := asPro(t, app, app.SignIn(t, "alice@example.com"))
	var rs []testkit.Racer
	for range 10 {
		rs = append(rs, testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost,
			Path: "/api/v1/subscription/purchase-credits", Body: map[string]any{"amount": 100}}})
	}
	if counts := testkit.Statuses(app.Burst(t, rs)); counts[http.StatusOK] != 5 || counts[http.StatusConflict] != 5 {
		t.Fatalf("ten purchases of 100 at once: %v", counts)
	}
	page := checkout.Requests()[0]["reference"].(string)
	event := func(id string) testkit.Racer {
		body := fmt.Appendf(nil, `{"id": %q, "type": "payment_captured", "data": {"id": "pay_1", "amount": 1000, "currency": "USD",
			"reference": %q, "metadata": {"user_id": %q, "purpose": "credits", "credits": 500}}}`, id, page, alice.ID)
		return testkit.Racer{Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/webhooks/checkout", Body: body,
			Headers: map[string]string{"Cko-Signature": testkit.SignWebhook(secret, body)}}}
	}
	rs = nil
	for i := range 15 {
		id := "evt_same"
		if i >= 10 {
			id = fmt.Sprintf("evt_other_%d", i)
		}
		rs = append(rs, event(id))
	}
	for _, r := range app.Burst(t, rs) {
		r.Expect(t, http.StatusOK)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND kind = 'purchased' AND entry = 'grant'", alice.ID); n != 1 {
		t.Fatalf("%d purchase grants for one payment", n)
	}
	b := app.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t)
	if b["purchased"] != float64(100) {
		t.Fatalf("balance %v", b)
	}
}

// webhookSchema is the shape of a Checkout.com event, as far as we read it
// (docs/api.md): the fuzzer's input for the webhook, whose body is signed
// and read raw, so it is not in the OpenAPI document.
var webhookSchema = schema{"type": "object", "required": []any{"id", "type"}, "properties": map[string]any{
	"id":         map[string]any{"type": "string", "maxLength": float64(200)},
	"type":       map[string]any{"type": "string", "maxLength": float64(100)},
	"created_on": map[string]any{"type": "string", "format": "date-time"},
	"data": map[string]any{"type": "object", "properties": map[string]any{
		"id":        map[string]any{"type": "string", "maxLength": float64(200)},
		"amount":    map[string]any{"type": "integer", "minimum": float64(0), "maximum": float64(100_000_000)},
		"currency":  map[string]any{"type": "string"},
		"reference": map[string]any{"type": "string", "maxLength": float64(200)},
		"metadata": map[string]any{"type": "object", "properties": map[string]any{
			"user_id": map[string]any{"type": "string"},
			"purpose": map[string]any{"type": "string"},
		}},
	}},
}}

// TestWebhookBodiesFromTheSchemaFuzzer: every field of a signed event, in
// turn, gets each invalid value the bad-input sweep uses. Nothing answers
// 5xx or shows the server's internals; a value of the wrong type, or
// outside the bounds of the fields we store, is a 400; and a valid event
// still works afterwards.
func TestWebhookBodiesFromTheSchemaFuzzer(t *testing.T) {
	t.Parallel()
	const secret = "whsec_fuzz"
	app := testkit.Start(t, testkit.WithConfig("billing.checkout.webhook_secret", secret))
	alice := app.SignIn(t, "alice@example.com")
	valid := map[string]any{"id": "evt_valid", "type": "payment_declined", "created_on": "2026-12-01T10:00:00Z",
		"data": map[string]any{"id": "pay_1", "amount": 999, "currency": "USD", "reference": uuid.NewString(),
			"metadata": map[string]any{"user_id": alice.ID.String(), "purpose": "credits"}}}
	sent, refused := 0, 0
	deliver := func(what string, body []byte, refuse bool) {
		t.Helper()
		res := app.Send(t, nil, testkit.Request{Method: http.MethodPost, Path: "/api/v1/webhooks/checkout", Body: body,
			Headers: map[string]string{"Cko-Signature": testkit.SignWebhook(secret, body)}})
		sent++
		switch {
		case res.Status >= 500:
			t.Errorf("%s: %d %s", what, res.Status, clip(res.Body))
		case refuse && res.Status != http.StatusBadRequest:
			t.Errorf("%s: %d, want 400: %s", what, res.Status, clip(res.Body))
		case res.Status == http.StatusBadRequest:
			refused++
		}
		if leak := internals(res.Body); leak != "" {
			t.Errorf("%s: the answer shows %q: %s", what, leak, clip(res.Body))
		}
	}
	var walk func(path []string, s schema, required map[string]bool)
	walk = func(path []string, s schema, required map[string]bool) {
		props, _ := s["properties"].(map[string]any)
		for name, p := range props {
			ps := p.(map[string]any)
			at := append(append([]string(nil), path...), name)
			for _, m := range mutationsFor(ps, required[name]) {
				body := deepClone(valid)
				set(body, at, m.value)
				set(body, []string{"id"}, fmt.Sprintf("evt_%d", sent)) // a fresh event each time, unless id is the field
				set(body, at, m.value)
				// Our decoder refuses a wrong type anywhere; bounds and
				// encodings only where it stores or compares the field.
				refuse := m.name == "wrong type" || m.name == "object" && typeOf(ps) != "object" ||
					m.refuse && (name == "id" || name == "type" || name == "reference" || name == "amount")
				deliver(strings.Join(at, ".")+" "+m.name, encode(t, body), refuse)
			}
			if typeOf(ps) == "object" {
				walk(at, ps, map[string]bool{})
			}
		}
	}
	walk(nil, webhookSchema, map[string]bool{"id": true, "type": true})
	for what, raw := range map[string]string{"malformed": `{"id": `, "array": `[1]`, "string": `"x"`,
		"deep nesting": strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)} {
		deliver(what, []byte(raw), true)
	}
	deliver("a valid event", encode(t, valid), false)
	if n := app.Count(t, "webhook_events", "id = 'evt_valid'"); n != 1 {
		t.Fatal("the valid event after the fuzzing was not taken")
	}
	t.Logf("webhook fuzzing: %d signed bodies, %d refused with 400, none 5xx", sent, refused)
}

func deepClone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepClone(sub)
		}
		out[k] = v
	}
	return out
}

// set puts v at path in m.
func set(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	m[path[len(path)-1]] = v
}

// TestEveryRouteThatTakesAURLRefusesInternalHosts: voice notes, the
// transcription route and push subscriptions refuse each URL of the table
// with 400; nothing is stored, charged or fetched.
func TestEveryRouteThatTakesAURLRefusesInternalHosts(t *testing.T) {
	t.Parallel()
	app, _, dg := startWithBalance(t, 100)
	alice := asPro(t, app, app.SignIn(t, "alice@example.com"))
	const p256 = "BOr8T5q0tPJm9y3Zo4dYz0FL2JSeYt9XSSgs5Qy8lYd6o2aZtPt0vyAo7pP8eXF0vUw6K4eE4JkqzW5zVt3Yv1E"
	const authKey = "8eDyX_uCN0XRhSbY5hs7Hg"
	urls := testkit.InternalURLs(t)
	for _, u := range urls {
		https := "https://" + strings.SplitN(u, "://", 2)[1]
		for route, body := range map[string]map[string]any{
			"/api/v1/notes":                           {"voice_url": u, "voice_duration_seconds": 30},
			"/api/v1/ai/transcribe":                   {"audio_url": u, "duration_seconds": 30},
			"/api/v1/notifications/push-subscription": {"endpoint": https, "p256dh_key": p256, "auth_key": authKey},
		} {
			res := app.Send(t, alice, keyed(testkit.Request{Method: http.MethodPost, Path: route, Body: body}))
			if res.Status != http.StatusBadRequest {
				t.Errorf("%s with %s: %d %s", route, body, res.Status, clip(res.Body))
			}
		}
	}
	if app.Count(t, "notes", "") != 0 || app.Count(t, "push_subscriptions", "") != 0 || len(dg.Requests()) != 0 ||
		ledgerSpent(t, app, alice) != 0 {
		t.Fatal("an internal URL was stored, fetched or charged")
	}
	t.Logf("internal URLs: %d refused by each of 3 routes", len(urls))
}
