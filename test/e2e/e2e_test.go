// Package e2e builds the real binary and drives it over HTTP. On PostgreSQL
// it runs two processes, --role=api and --role=worker, on one database (after
// `perpetua migrate`); on SQLite one process with --role=all.
package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/test/testkit"
)

var binary string

func TestMain(m *testing.M) { testkit.MainWithBinary(m, &binary) }

func run(t *testing.T, env []string, args ...string) *testkit.Proc {
	return testkit.Run(t, binary, env, args...)
}

const webhookSecret = "whsec_e2e"

// rewardsAndPayments: a new user gets the welcome credits, five completions
// unlock Task Starter (and raise the task limit), the payment of the page
// the upgrade opened (a signed webhook naming our session) makes her Pro
// with the month's credits, and bought credits, paid the same way, show in
// the history with everything else.
func rewardsAndPayments(t *testing.T, c *client, checkout *testkit.Checkout, signIn func(string) (string, string)) {
	carol, _ := signIn("carol@example.com")
	if b := c.do(carol, http.MethodGet, "/api/v1/credits/balance", nil, "").expect(t, http.StatusOK, "").data(); b["kickstart"] != float64(5) {
		t.Fatalf("welcome credits: %v", b)
	}
	var last answer
	for i := range 5 {
		id := c.do(carol, http.MethodPost, "/api/v1/tasks", map[string]any{"title": fmt.Sprintf("step %d", i)}, "").
			expect(t, http.StatusCreated, "").data()["id"].(string)
		last = c.do(carol, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil, "").expect(t, http.StatusOK, "")
	}
	unlocked := last.data()["unlocked_achievements"].([]any)
	if len(unlocked) != 1 || unlocked[0].(map[string]any)["achievement_id"] != "tasks_5" {
		t.Fatalf("fifth completion: %s", last.raw)
	}
	mine := c.do(carol, http.MethodGet, "/api/v1/achievements/me", nil, "").expect(t, http.StatusOK, "").data()
	if u := mine["unlocked"].([]any); len(u) != 1 || u[0] != "tasks_5" ||
		mine["effective_limits"].(map[string]any)["max_tasks"] != float64(65) {
		t.Fatalf("achievements: %v", mine)
	}
	me := c.do(carol, http.MethodGet, "/api/v1/users/me", nil, "").expect(t, http.StatusOK, "").data()

	up := c.do(carol, http.MethodPost, "/api/v1/subscription/upgrade", map[string]any{}, "").expect(t, http.StatusOK, "").data()
	c.pay(t, "evt_e2e_1", me["id"].(string), up["session_id"].(string), 999, "subscription")
	if me := c.do(carol, http.MethodGet, "/api/v1/users/me", nil, "").expect(t, http.StatusOK, "").data(); me["tier"] != "pro" {
		t.Fatalf("tier after payment: %v", me["tier"])
	}
	if b := c.do(carol, http.MethodGet, "/api/v1/credits/balance", nil, "").expect(t, http.StatusOK, "").data(); b["subscription"] != float64(50) {
		t.Fatalf("credits after payment: %v", b)
	}
	if l := c.do(carol, http.MethodGet, "/api/v1/achievements/limits", nil, "").expect(t, http.StatusOK, "").data(); l["max_tasks"] != float64(215) {
		t.Fatalf("Pro limits with the perk: %v", l)
	}
	bought := c.do(carol, http.MethodPost, "/api/v1/subscription/purchase-credits", map[string]any{"amount": 50}, "").
		expect(t, http.StatusOK, "").data()
	if bought["success"] != false || bought["checkout_url"] == nil || bought["monthly_remaining"] != float64(450) {
		t.Fatalf("purchase: %v", bought)
	}
	pages := checkout.Requests()
	c.pay(t, "evt_e2e_2", me["id"].(string), pages[len(pages)-1]["reference"].(string), 500, "credits")
	if b := c.do(carol, http.MethodGet, "/api/v1/credits/balance", nil, "").expect(t, http.StatusOK, "").data(); b["purchased"] != float64(50) {
		t.Fatalf("credits after their payment: %v", b)
	}
	hist := c.do(carol, http.MethodGet, "/api/v1/credits/history", nil, "").expect(t, http.StatusOK, "")
	seen := map[string]bool{}
	for _, r := range hist.body["data"].([]any) {
		seen[r.(map[string]any)["category"].(string)] = true
	}
	for _, want := range []string{"kickstart", "daily", "subscription", "purchase"} {
		if !seen[want] {
			t.Fatalf("history lacks a %s row: %s", want, hist.raw)
		}
	}
}

// pay delivers the provider's signed payment_captured for our session.
func (c *client) pay(t *testing.T, eventID, userID, session string, amount int, purpose string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"id": eventID, "type": "payment_captured",
		"created_on": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"id": "pay_" + eventID, "amount": amount, "currency": "USD", "reference": session,
			"metadata": map[string]any{"user_id": userID, "purpose": purpose}}})
	req, _ := http.NewRequest(http.MethodPost, c.url("/api/v1/webhooks/checkout"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cko-Signature", testkit.SignWebhook(webhookSecret, body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", res.StatusCode)
	}
}

// client talks to the API like the web client: JSON everywhere, a fresh
// Idempotency-Key on every mutation unless one is given.
type client struct {
	t    *testing.T
	base string
	// spread, when set, takes the place of base: each request goes to the
	// next of these (a load balancer in front of several processes).
	spread []string
	sent   int
}

// url is where the next request goes.
func (c *client) url(path string) string {
	if len(c.spread) == 0 {
		return c.base + path
	}
	c.sent++
	return c.spread[c.sent%len(c.spread)] + path
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (c *client) do(token, method, path string, body any, key string) answer {
	c.t.Helper()
	a, err := c.send(token, method, path, body, key)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// try is do for other goroutines than the test's: a failed request is an
// answer with status 0 and the error as its body.
func (c *client) try(token, method, path string, body any, key string) answer {
	a, err := c.send(token, method, path, body, key)
	if err != nil {
		return answer{raw: []byte(err.Error())}
	}
	return a
}

func (c *client) send(token, method, path string, body any, key string) (answer, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url(path), r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != http.MethodGet {
		if key == "" {
			key = uuid.NewString()
		}
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a, err
}

func (a answer) expect(t *testing.T, status int, code string) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	if code != "" {
		e, _ := a.body["error"].(map[string]any)
		if e == nil || e["code"] != code {
			t.Fatalf("error code, want %s: %s", code, a.raw)
		}
	}
	return a
}

func (a answer) data() map[string]any {
	d, _ := a.body["data"].(map[string]any)
	return d
}

// poll asks until cond holds, for at most 30 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaving: a user exports her data (the worker writes the archive, the
// download link needs no bearer and the archive holds her task), deletes
// her account (her tokens stop at once; the worker erases everything,
// archive included), and signing in again with the same Google account
// makes a new, empty account.
func leaving(t *testing.T, c *client, signIn func(string) (string, string)) {
	erin, _ := signIn("erin@example.com")
	c.do(erin, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Water the plants"}, "").expect(t, http.StatusCreated, "")
	id := c.do(erin, http.MethodPost, "/api/v1/users/me/export", nil, "").expect(t, http.StatusAccepted, "").data()["id"].(string)
	var link string
	poll(t, "the worker writes the export", func() bool {
		e := c.do(erin, http.MethodGet, "/api/v1/users/me/export/"+id, nil, "").expect(t, http.StatusOK, "").data()
		link, _ = e["download_url"].(string)
		return e["status"] == "ready"
	})
	path := link[strings.Index(link, "/api/v1/exports/"):]
	zipped := c.do("", http.MethodGet, path, nil, "").expect(t, http.StatusOK, "")
	zr, err := zip.NewReader(bytes.NewReader(zipped.raw), int64(len(zipped.raw)))
	if err != nil {
		t.Fatalf("the export is not a zip: %v", err)
	}
	f, err := zr.Open("export.json")
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(f)
	f.Close()
	if !strings.Contains(string(exported), "Water the plants") || !strings.Contains(string(exported), "erin@example.com") {
		t.Fatalf("export.json lacks Erin's task or profile: %.300s", exported)
	}

	c.do(erin, http.MethodDelete, "/api/v1/users/me", map[string]any{"confirm": "someone@example.com"}, "").
		expect(t, http.StatusBadRequest, "VALIDATION_ERROR")
	gone := c.do(erin, http.MethodDelete, "/api/v1/users/me", map[string]any{"confirm": "erin@example.com"}, "").
		expect(t, http.StatusAccepted, "").data()
	c.do(erin, http.MethodGet, "/api/v1/tasks", nil, "").expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
	poll(t, "the worker erases the account, its export with it", func() bool {
		return c.do("", http.MethodGet, path, nil, "").status == http.StatusNotFound
	})
	again, _ := signIn("erin@example.com")
	me := c.do(again, http.MethodGet, "/api/v1/users/me", nil, "").expect(t, http.StatusOK, "").data()
	if me["id"] == gone["user_id"] {
		t.Fatal("signing in again found the deleted account")
	}
	if tasks := c.do(again, http.MethodGet, "/api/v1/tasks", nil, "").expect(t, http.StatusOK, "").body["data"].([]any); len(tasks) != 0 {
		t.Fatalf("the new account has %d tasks", len(tasks))
	}
}

// assistant: a note becomes a task through the assistant (drafted, then
// confirmed: the task exists, the note is archived, one credit is spent, the
// activity says ai), and a push reminder reaches the browser through the
// worker, encrypted for it.
func assistant(t *testing.T, c *client, signIn func(string) (string, string), ps *testkit.PushService) {
	dave, _ := signIn("dave@example.com")
	note := c.do(dave, http.MethodPost, "/api/v1/notes", map[string]any{"content": "Dentist: book a check-up"}, "").
		expect(t, http.StatusCreated, "").data()["id"].(string)
	draft := c.do(dave, http.MethodPost, "/api/v1/notes/"+note+"/convert", map[string]any{}, "").expect(t, http.StatusOK, "").data()
	if draft["task"].(map[string]any)["title"] != "From a note" || draft["credits_used"] != float64(1) {
		t.Fatalf("draft: %v", draft)
	}
	made := c.do(dave, http.MethodPost, "/api/v1/notes/"+note+"/convert", map[string]any{"confirm": true}, "").expect(t, http.StatusOK, "").data()
	task := made["created_task"].(map[string]any)["id"].(string)
	c.do(dave, http.MethodGet, "/api/v1/tasks/"+task, nil, "").expect(t, http.StatusOK, "")
	if n := c.do(dave, http.MethodGet, "/api/v1/notes/"+note, nil, "").expect(t, http.StatusOK, "").data(); n["archived"] != true {
		t.Fatalf("note: %v", n)
	}
	if b := c.do(dave, http.MethodGet, "/api/v1/credits/balance", nil, "").expect(t, http.StatusOK, "").data(); b["total"] != float64(14) {
		t.Fatalf("balance after one conversion: %v", b)
	}
	byAI := 0
	for _, e := range c.do(dave, http.MethodGet, "/api/v1/activity", nil, "").expect(t, http.StatusOK, "").body["data"].([]any) {
		if e.(map[string]any)["source"] == "ai" {
			byAI++
		}
	}
	if byAI < 2 { // the task created, the note converted
		t.Fatalf("%d activity entries by the assistant", byAI)
	}

	ps.VAPIDKey = c.do(dave, http.MethodGet, "/api/v1/notifications/vapid-public-key", nil, "").expect(t, http.StatusOK, "").data()["public_key"].(string)
	browser := ps.Subscribe(t, http.StatusCreated)
	c.do(dave, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": browser.Endpoint, "p256dh_key": browser.P256dh, "auth_key": browser.Auth}, "").expect(t, http.StatusCreated, "")
	due := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	call := c.do(dave, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Call the dentist", "due_date": due}, "").
		expect(t, http.StatusCreated, "").data()["id"].(string)
	c.do(dave, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": call, "type": "before", "offset_minutes": -60,
		"method": "push"}, "").expect(t, http.StatusCreated, "")
	deadline := time.Now().Add(30 * time.Second)
	for len(ps.Messages(browser)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the push never arrived (refused: %v)", ps.Failures())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := ps.Messages(browser)[0]; !strings.Contains(m, "Call the dentist") || !strings.Contains(m, call) {
		t.Fatalf("push payload %s", m)
	}
}

// fakes are the outside services of a journey, local and speaking their
// real wire formats.
type fakes struct {
	issuer   *testkit.Issuer
	push     *testkit.PushService
	checkout *testkit.Checkout
}

// journeyEnv starts the fakes and returns the environment of the
// journey's processes (PORT and OPS_PORT are the caller's).
func journeyEnv(t *testing.T, dbURL string) ([]string, fakes) {
	issuer := testkit.NewIssuer(t)
	_, openai, _ := testkit.AIFakes(t)
	ps := testkit.NewPushService(t)
	checkout := testkit.NewCheckout(t)
	certFile := filepath.Join(t.TempDir(), "push-ca.pem")
	if err := os.WriteFile(certFile, ps.Certificate(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DATABASE_URL=" + dbURL,
		"JWT_PRIVATE_KEY=" + testkit.PrivateKeyPEM(t),
		"GOOGLE_ISSUER_URL=" + issuer.URL,
		"GOOGLE_CLIENT_ID=" + issuer.ClientID,
		"DATA_DIR=" + t.TempDir(),
		"ENVIRONMENT=development",
		"DEV_LOGIN_ENABLED=false",
		"LOG_LEVEL=warn",
		"PERPETUA_JOBS_POLL_INTERVAL=100ms",
		"RATE_LIMIT_GENERAL=100000", // the journey polls; limits have their own tests
		// The journey reuses a spent refresh token at once; the grace window
		// for tabs refreshing together has its own tests (on the fake clock).
		"PERPETUA_AUTH_REFRESH_REUSE_GRACE=0s",
		"CHECKOUT_WEBHOOK_SECRET=" + webhookSecret,
		"CHECKOUT_SECRET_KEY=" + checkout.Key,
		"CHECKOUT_API_URL=" + checkout.URL,
		"OPENAI_API_KEY=" + openai.Key,
		"OPENAI_BASE_URL=" + openai.URL,
		// The local push service: a loopback host, its certificate trusted.
		"PERPETUA_PUSH_ALLOW_PRIVATE_ENDPOINTS=true",
		"SSL_CERT_FILE=" + certFile,
	}
	return env, fakes{issuer: issuer, push: ps, checkout: checkout}
}

func TestJourney(t *testing.T) {
	env, f := journeyEnv(t, testkit.NewDatabase(t))
	port, opsPort, workerOpsPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	base := "http://127.0.0.1:" + port
	env = append(env, "PORT="+port, "OPS_PORT="+opsPort)
	var procs []*testkit.Proc
	// Metrics are on the ops listener in every role, never on the API port.
	metricsURL := "http://127.0.0.1:" + opsPort + "/metrics"
	if testkit.Postgres() {
		env = append(env, "PERPETUA_DATABASE_AUTO_MIGRATE=false")
		migrate := run(t, env, "migrate")
		if err := <-migrate.Done; err != nil {
			t.Fatalf("migrate: %v\n%s", err, migrate.Out.String())
		}
		api := run(t, env, "--role=api")
		worker := run(t, append(env, "OPS_PORT="+workerOpsPort), "--role=worker")
		t.Logf("api ready in %s", testkit.WaitReady(t, base, api))
		t.Logf("worker ready in %s", testkit.WaitReady(t, "http://127.0.0.1:"+workerOpsPort, worker))
		procs = []*testkit.Proc{api, worker}
		metricsURL = "http://127.0.0.1:" + workerOpsPort + "/metrics"
	} else {
		all := run(t, env, "--role=all")
		t.Logf("ready in %s", testkit.WaitReady(t, base, all))
		procs = []*testkit.Proc{all}
	}
	c := &client{t: t, base: base}
	journey(t, c, f, metricsURL)
	if testkit.Postgres() {
		// One of everything has been served; a refusal too (the sign-in
		// limit, per address). Every metric the dashboard and the alerts
		// name is exported, with the labels they use.
		for i := 0; ; i++ {
			if c.do("", http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": "x"}, "").status == http.StatusTooManyRequests {
				break
			}
			if i == 100 {
				t.Fatal("the sign-in rate limit never refused")
			}
		}
		exported := scrape(t, "http://127.0.0.1:"+opsPort+"/metrics")
		for name, labels := range scrape(t, metricsURL) {
			exported[name] = slices.Compact(slices.Sorted(slices.Values(append(exported[name], labels...))))
		}
		checkNamedMetrics(t, exported)
	}
	for _, p := range procs {
		p.Stop(t)
	}
}

// journey is a user's whole life through the API at c, with the worker
// whose metrics are at metricsURL.
func journey(t *testing.T, c *client, f fakes, metricsURL string) {
	issuer, ps, checkout := f.issuer, f.push, f.checkout
	c.do("", http.MethodGet, "/metrics", nil, "").expect(t, http.StatusNotFound, "NOT_FOUND")

	// Sign in through the (local) Google issuer.
	signIn := func(email string) (access, refresh string) {
		a := c.do("", http.MethodPost, "/api/v1/auth/google/callback",
			map[string]any{"id_token": issuer.IDToken(t, testkit.GoogleClaims{Email: email, Name: "E2E"})}, "").
			expect(t, http.StatusOK, "")
		return a.body["access_token"].(string), a.body["refresh_token"].(string)
	}
	alice, aliceRefresh := signIn("alice@example.com")
	bob, _ := signIn("bob@example.com")

	// The 401 codes.
	c.do("", http.MethodGet, "/api/v1/tasks", nil, "").expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
	c.do("garbage", http.MethodGet, "/api/v1/tasks", nil, "").expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
	c.do(expiredTokenLike(t, alice), http.MethodGet, "/api/v1/tasks", nil, "").expect(t, http.StatusUnauthorized, "TOKEN_EXPIRED")

	// Create, with an idempotent replay.
	key := uuid.NewString()
	created := c.do(alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Ship the release"}, key).
		expect(t, http.StatusCreated, "")
	replayed := c.do(alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Ship the release"}, key).
		expect(t, http.StatusCreated, "")
	if replayed.header.Get("X-Idempotent-Replayed") != "true" || string(replayed.raw) != string(created.raw) {
		t.Fatalf("replay: %v %s", replayed.header, replayed.raw)
	}
	c.do(alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "other"}, key).
		expect(t, http.StatusConflict, "IDEMPOTENCY_KEY_REUSED")
	id := created.data()["id"].(string)

	list := c.do(alice, http.MethodGet, "/api/v1/tasks", nil, "").expect(t, http.StatusOK, "")
	if items := list.body["data"].([]any); len(items) != 1 {
		t.Fatalf("list: %s", list.raw)
	}

	// Update with the current version, then with a stale one.
	c.do(alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "Ship v2", "version": 1}, "").
		expect(t, http.StatusOK, "")
	c.do(alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "stale", "version": 1}, "").
		expect(t, http.StatusConflict, "CONFLICT")

	// Another user cannot see it.
	c.do(bob, http.MethodGet, "/api/v1/tasks/"+id, nil, "").expect(t, http.StatusNotFound, "TASK_NOT_FOUND")
	c.do(bob, http.MethodDelete, "/api/v1/tasks/"+id, nil, "").expect(t, http.StatusNotFound, "TASK_NOT_FOUND")

	// Complete, then delete into a tombstone.
	done := c.do(alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil, "").expect(t, http.StatusOK, "")
	if done.data()["task"].(map[string]any)["completed_by"] != "manual" {
		t.Fatalf("complete: %s", done.raw)
	}
	del := c.do(alice, http.MethodDelete, "/api/v1/tasks/"+id, nil, "").expect(t, http.StatusOK, "")
	if del.data()["tombstone_id"] == nil {
		t.Fatalf("delete: %s", del.raw)
	}
	c.do(alice, http.MethodGet, "/api/v1/tasks/"+id, nil, "").expect(t, http.StatusNotFound, "TASK_NOT_FOUND")

	// Refresh rotation, then reuse of the spent token revokes the family.
	rot := c.do("", http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": aliceRefresh}, "").
		expect(t, http.StatusOK, "")
	newAccess, newRefresh := rot.body["access_token"].(string), rot.body["refresh_token"].(string)
	c.do(newAccess, http.MethodGet, "/api/v1/users/me", nil, "").expect(t, http.StatusOK, "")
	c.do("", http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": aliceRefresh}, "").
		expect(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	c.do("", http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": newRefresh}, "").
		expect(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	c.do(newAccess, http.MethodGet, "/api/v1/users/me", nil, "").expect(t, http.StatusUnauthorized, "UNAUTHORIZED")

	// A task with subtasks and a relative reminder. The reminder's time (an
	// hour before a task due in half an hour) has passed: the worker fires it.
	due := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	alice, _ = signIn("alice@example.com")
	trip := c.do(alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Pack for the trip", "due_date": due}, "").
		expect(t, http.StatusCreated, "").data()["id"].(string)
	var subs []string
	for _, title := range []string{"clothes", "charger"} {
		subs = append(subs, c.do(alice, http.MethodPost, "/api/v1/tasks/"+trip+"/subtasks", map[string]any{"title": title}, "").
			expect(t, http.StatusCreated, "").data()["id"].(string))
	}
	c.do(alice, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": trip, "type": "before", "offset_minutes": -60,
		"method": "in_app"}, "").expect(t, http.StatusCreated, "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		list := c.do(alice, http.MethodGet, "/api/v1/notifications", nil, "").expect(t, http.StatusOK, "")
		if items, _ := list.body["data"].([]any); len(items) == 1 {
			n := items[0].(map[string]any)
			if n["type"] != "reminder" || n["task_id"] != trip {
				t.Fatalf("notification: %v", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reminder never fired through the worker")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The client completes subtasks with PUT; the last one completes the task.
	for _, id := range subs {
		c.do(alice, http.MethodPut, "/api/v1/subtasks/"+id, map[string]any{"completed": true}, "").expect(t, http.StatusOK, "")
	}
	packed := c.do(alice, http.MethodGet, "/api/v1/tasks/"+trip, nil, "").expect(t, http.StatusOK, "").data()
	if packed["completed"] != true || packed["completed_by"] != "auto" {
		t.Fatalf("auto-completion: %v", packed)
	}
	stone := c.do(alice, http.MethodDelete, "/api/v1/tasks/"+trip, nil, "").expect(t, http.StatusOK, "").data()["tombstone_id"].(string)
	back := c.do(alice, http.MethodPost, "/api/v1/recovery/"+stone+"/recover", nil, "").expect(t, http.StatusCreated, "").data()
	if back["id"] != trip || back["subtask_count"] != float64(2) || back["version"] != float64(1) {
		t.Fatalf("recovered: %v", back)
	}

	rewardsAndPayments(t, c, checkout, signIn)
	assistant(t, c, signIn, ps)
	leaving(t, c, signIn)

	// The worker ran its periodic housekeeping (scheduled on start).
	deadline = time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(metricsURL)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.Contains(string(b), `perpetua_jobs_processed_total{kind="idempotency_purge",outcome="completed"}`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never ran idempotency_purge")
		}
		time.Sleep(50 * time.Millisecond)
	}

}

// expiredTokenLike re-signs the claims of token with the shared test key,
// expired an hour ago: the server must say TOKEN_EXPIRED, not UNAUTHORIZED.
func expiredTokenLike(t *testing.T, token string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if err != nil {
		t.Fatal(err)
	}
	claims["exp"] = time.Now().Add(-time.Hour).Unix()
	claims["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = parsed.Header["kid"]
	s, err := tok.SignedString(testkit.RSAKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
