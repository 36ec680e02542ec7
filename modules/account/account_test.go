package account_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/account"
	"github.com/perpetuaflow/api/test/testkit"
)

const webhookSecret = "whsec_test_secret"

func start(t *testing.T, opts ...testkit.Option) (*testkit.App, *account.Service, *testkit.Checkout) {
	t.Helper()
	provider := testkit.NewCheckout(t)
	var svc *account.Service
	a := testkit.Start(t, append([]testkit.Option{
		testkit.WithConfig("billing.checkout.api_url", provider.URL),
		testkit.WithConfig("billing.checkout.secret_key", provider.Key),
		testkit.WithConfig("billing.checkout.webhook_secret", webhookSecret),
		testkit.WithConfig("jobs.max_attempts", 3),
		testkit.WithFx(fx.Populate(&svc)),
	}, opts...)...)
	return a, svc, provider
}

// waitExport polls the export until it is no longer pending.
func waitExport(t *testing.T, a *testkit.App, u *testkit.User, id string) map[string]any {
	t.Helper()
	var e map[string]any
	testkit.Eventually(t, 20*time.Second, "the export is written", func() bool {
		e = a.Do(t, u, http.MethodGet, "/api/v1/users/me/export/"+id, nil).Expect(t, http.StatusOK).Data(t)
		return e["status"] != "pending"
	})
	return e
}

// download fetches an archive without a bearer token.
func download(t *testing.T, a *testkit.App, link string) *testkit.Response {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return a.Do(t, nil, http.MethodGet, u.RequestURI(), nil)
}

type archive struct {
	Format string                      `json:"format"`
	UserID string                      `json:"user_id"`
	Tables map[string][]map[string]any `json:"tables"`
	Readme string
}

func unzip(t *testing.T, body []byte) archive {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	var out archive
	files := map[string]bool{}
	for _, f := range zr.File {
		files[f.Name] = true
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch f.Name {
		case "export.json":
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("export.json: %v", err)
			}
		case "README.txt":
			out.Readme = string(b)
		}
	}
	if len(files) != 2 || !files["export.json"] || !files["README.txt"] {
		t.Fatalf("archive files %v, want export.json and README.txt", files)
	}
	return out
}

// TestAnExportHoldsEveryRowOfTheUser: asked for, the export is written by
// its job, announced by a notification, and downloaded without a bearer
// from a URL valid a day (then a new one); the archive holds the user's
// rows and nobody else's, and no secret; one export at a time; the archive
// is deleted after its week.
func TestAnExportHoldsEveryRowOfTheUser(t *testing.T) {
	t.Parallel()
	a, svc, _ := start(t)
	alice := a.SignIn(t, "alice@example.com")
	bob := a.SignIn(t, "bob@example.com")
	for _, u := range []*testkit.User{alice, bob} {
		task := a.Do(t, u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Task of " + u.Email,
			"description": "secret plans of " + u.Email}).Expect(t, http.StatusCreated).Data(t)
		a.Do(t, u, http.MethodPost, "/api/v1/tasks/"+task["id"].(string)+"/subtasks", map[string]any{"title": "step"}).
			Expect(t, http.StatusCreated)
		a.Do(t, u, http.MethodPost, "/api/v1/notes", map[string]any{"content": "note of " + u.Email}).Expect(t, http.StatusCreated)
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK)

	ex := a.Do(t, alice, http.MethodPost, "/api/v1/users/me/export", nil).Expect(t, http.StatusAccepted).Data(t)
	if ex["status"] != "pending" || ex["download_url"] != nil {
		t.Fatalf("export %v, want pending without a link", ex)
	}
	id := ex["id"].(string)
	// One at a time (the job may have finished already: then a second one is fine).
	if r := a.Do(t, alice, http.MethodPost, "/api/v1/users/me/export", nil); r.Status != http.StatusAccepted {
		r.ExpectError(t, http.StatusConflict, account.CodeExportInProgress)
	} else {
		waitExport(t, a, alice, r.Data(t)["id"].(string))
	}
	a.Do(t, bob, http.MethodGet, "/api/v1/users/me/export/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")

	e := waitExport(t, a, alice, id)
	if e["status"] != "ready" || e["download_url"] == nil || e["rows"].(float64) < 8 || e["size_bytes"].(float64) < 100 {
		t.Fatalf("export %v: want ready with a link, rows and a size", e)
	}
	link := e["download_url"].(string)
	if !strings.HasPrefix(link, a.Config.PublicBaseURL()+"/api/v1/exports/"+id+"/download?token=") {
		t.Fatalf("download_url %s", link)
	}
	notes := a.Do(t, alice, http.MethodGet, "/api/v1/notifications", nil).Expect(t, http.StatusOK).List(t)
	if len(notes) == 0 || notes[0]["title"] != "Your data export is ready" || notes[0]["type"] != "system" {
		t.Fatalf("notifications %v: want the export's", notes)
	}

	res := download(t, a, link).Expect(t, http.StatusOK)
	if res.Header.Get("Content-Type") != "application/zip" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), `attachment; filename="perpetua-export-`) {
		t.Fatalf("headers %v", res.Header)
	}
	arc := unzip(t, res.Body)
	if arc.Format != "perpetua-flow-export/1" || arc.UserID != alice.ID.String() {
		t.Fatalf("export.json head: %q %q", arc.Format, arc.UserID)
	}
	all, _ := json.Marshal(arc.Tables)
	for _, want := range []string{"Task of alice@example.com", "secret plans of alice@example.com", "note of alice@example.com", "step"} {
		if !strings.Contains(string(all), want) {
			t.Errorf("the export lacks %q", want)
		}
	}
	if strings.Contains(string(all), "bob@example.com") || strings.Contains(string(all), bob.ID.String()) {
		t.Error("the export holds Bob's rows")
	}
	for _, secret := range []string{"token_hash", "secret_hash", "download_token", "p256dh_key"} {
		if strings.Contains(string(all), secret) {
			t.Errorf("the export holds %s", secret)
		}
	}
	for name, n := range map[string]int{"user": 1, "tasks": 1, "subtasks": 1, "notes": 1, "calendar_feed": 1, "exports": 1} {
		if len(arc.Tables[name]) < n {
			t.Errorf("%s: %d rows, want at least %d", name, len(arc.Tables[name]), n)
		}
	}
	if len(arc.Tables["sessions"]) < 1 || len(arc.Tables["credit_ledger"]) < 1 || len(arc.Tables["activity"]) < 3 {
		t.Errorf("sessions, ledger or activity missing: %d %d %d", len(arc.Tables["sessions"]),
			len(arc.Tables["credit_ledger"]), len(arc.Tables["activity"]))
	}
	for _, want := range []string{"export.json", "- tasks: 1 (table tasks)", "refresh_tokens:", "left out: secret_hash"} {
		if !strings.Contains(arc.Readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, arc.Readme)
		}
	}

	// Someone else's id or a wrong token: 404.
	download(t, a, strings.Replace(link, "token=", "token=0", 1)).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	download(t, a, a.URL+"/api/v1/exports/"+uuid.NewString()+"/download?token=x").ExpectError(t, http.StatusNotFound, "NOT_FOUND")

	// A day later the link is dead; asking again gives a new one.
	a.Clock.Advance(25 * time.Hour)
	download(t, a, link).ExpectError(t, http.StatusGone, account.CodeExportExpired)
	alice = a.SignIn(t, "alice@example.com")
	again := a.Do(t, alice, http.MethodGet, "/api/v1/users/me/export/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if again["download_url"] == nil || again["download_url"] == link {
		t.Fatalf("after a day: %v, want a new link", again)
	}
	download(t, a, again["download_url"].(string)).Expect(t, http.StatusOK)

	// After its week, the archive is deleted.
	a.Clock.Advance(7 * 24 * time.Hour)
	alice = a.SignIn(t, "alice@example.com")
	if err := svc.PurgeExports(t.Context()); err != nil {
		t.Fatal(err)
	}
	gone := a.Do(t, alice, http.MethodGet, "/api/v1/users/me/export/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if gone["status"] != "expired" || gone["download_url"] != nil {
		t.Fatalf("after a week: %v", gone)
	}
	download(t, a, again["download_url"].(string)).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if n := a.Count(t, "account_exports", "id = ? AND state = ?", id, "expired"); n != 1 {
		t.Fatalf("the export is not recorded expired")
	}
}

// TestOneExportAtATimeUnderConcurrency: ten requests at once make one
// export; the others are 409 (the database's unique index decides).
func TestOneExportAtATimeUnderConcurrency(t *testing.T) {
	t.Parallel()
	a, _, _ := start(t, testkit.WithRole("api"))
	alice := a.SignIn(t, "alice@example.com")
	reqs := make([]testkit.Racer, 10)
	for i := range reqs {
		reqs[i] = testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/users/me/export"}}
	}
	got := testkit.Statuses(a.Burst(t, reqs))
	if got[http.StatusAccepted] != 1 || got[http.StatusConflict] != 9 {
		t.Fatalf("statuses %v: want one 202 and nine 409", got)
	}
	if n := a.Count(t, "account_exports", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("%d exports recorded", n)
	}
}

func sign(body []byte) string { return testkit.SignWebhook(webhookSecret, body) }

// payPro makes u Pro through the provider's payment with a stored card.
func payPro(t *testing.T, a *testkit.App, u *testkit.User, card string) {
	t.Helper()
	up := a.Do(t, u, http.MethodPost, "/api/v1/subscription/upgrade", map[string]any{}).Expect(t, http.StatusOK).Data(t)
	body, _ := json.Marshal(map[string]any{"id": "evt_" + card, "type": "payment_captured",
		"created_on": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"id": "pay_" + card, "amount": 999, "currency": "USD", "reference": up["session_id"],
			"source":   map[string]any{"id": card, "type": "card"},
			"metadata": map[string]any{"user_id": u.ID.String(), "purpose": "subscription"}}})
	a.Send(t, nil, testkit.Request{Method: http.MethodPost, Path: "/api/v1/webhooks/checkout", Body: body,
		Headers: map[string]string{"Cko-Signature": sign(body)}}).Expect(t, http.StatusOK)
}

// TestDeletingAnAccount: with the account's email, DELETE /users/me signs
// the user out everywhere at once, removes push subscriptions, ends Pro and
// deletes the card at the provider (a failure is retried), and the erase
// job deletes every row; the record kept has the email's hash and the
// ledger's totals; the same Google account then signs up anew, empty.
func TestDeletingAnAccount(t *testing.T) {
	t.Parallel()
	a, _, provider := start(t)
	alice := a.SignIn(t, "alice@example.com")
	payPro(t, a, alice, "src_alice_card")
	phone := a.SignIn(t, "alice@example.com")
	bob := a.SignIn(t, "bob@example.com")
	for _, u := range []*testkit.User{alice, bob} {
		a.Do(t, u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "mine"}).Expect(t, http.StatusCreated)
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/notifications/push-subscription", map[string]any{
		"endpoint": "https://fcm.googleapis.com/fcm/send/alice", "auth_key": "tBHItJI5svbpez7KI4CCXg",
		"p256dh_key": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"}).
		Expect(t, http.StatusCreated)
	due := a.Clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	trip := a.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "trip", "due_date": due}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	a.Do(t, alice, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": trip, "type": "before", "offset_minutes": -60}).
		Expect(t, http.StatusCreated)
	if n := a.Count(t, "river_job", "kind = 'reminder_fire' AND state = 'scheduled'"); n != 1 {
		t.Fatalf("%d reminder jobs scheduled", n)
	}
	provider.FailDeletes(1)

	a.Do(t, alice, http.MethodDelete, "/api/v1/users/me", map[string]any{"confirm": "bob@example.com"}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	a.Do(t, alice, http.MethodDelete, "/api/v1/users/me", nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	a.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)

	d := a.Do(t, alice, http.MethodDelete, "/api/v1/users/me", map[string]any{"confirm": " Alice@Example.com "}).
		Expect(t, http.StatusAccepted).Data(t)
	if d["status"] != "erasing" || d["user_id"] != alice.ID.String() || d["sessions_revoked"] != float64(2) {
		t.Fatalf("deletion %v", d)
	}
	for _, u := range []*testkit.User{alice, phone} {
		a.Do(t, u, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
		a.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": u.RefreshToken}).
			Expect(t, http.StatusUnauthorized)
	}
	if n := a.Count(t, "push_subscriptions", "user_id = ?", alice.ID); n != 0 {
		t.Fatalf("%d push subscriptions left at once", n)
	}
	if n := a.Count(t, "river_job", "kind = 'reminder_fire' AND state = 'cancelled'"); n != 1 {
		t.Fatalf("the reminder to come was not cancelled at once (%d cancelled)", n)
	}
	testkit.Eventually(t, 20*time.Second, "the card is deleted at the provider (after one failure)", func() bool {
		return len(provider.DeletedInstruments()) == 1
	})
	if got := provider.DeletedInstruments(); got[0] != "src_alice_card" {
		t.Fatalf("deleted instruments %v", got)
	}
	testkit.Eventually(t, 20*time.Second, "the account is erased", func() bool {
		return a.Count(t, "deleted_accounts", "user_id = ? AND erased_at IS NOT NULL", alice.ID) == 1
	})
	for _, table := range []string{"tasks", "credit_ledger", "subscriptions", "payment_sessions", "auth_sessions",
		"refresh_tokens", "activity_log", "notifications", "user_stats", "row_counts", "task_counts"} {
		if n := a.Count(t, table, "user_id = ?", alice.ID); n != 0 {
			t.Errorf("%s: %d rows of Alice's left", table, n)
		}
	}
	if n := a.Count(t, "users", "id = ?", alice.ID); n != 0 {
		t.Error("Alice's user row is left")
	}
	if n := a.Count(t, "tasks", "user_id = ?", bob.ID); n != 1 {
		t.Errorf("Bob's task was touched (%d)", n)
	}
	var rec struct {
		EmailHash string
		Kept      string
	}
	if err := a.DB.Gorm.Table("deleted_accounts").Where("user_id = ?", alice.ID).Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	if rec.EmailHash != "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976" {
		t.Errorf("email hash %s, want the SHA-256 of alice@example.com", rec.EmailHash)
	}
	var kept map[string][]map[string]any
	if err := json.Unmarshal([]byte(rec.Kept), &kept); err != nil {
		t.Fatal(err)
	}
	if len(kept["credit_ledger"]) == 0 || len(kept["payment_sessions"]) != 1 || kept["payment_sessions"][0]["amount"] != float64(999) {
		t.Errorf("kept %s: want the ledger's totals and the one payment of 999", rec.Kept)
	}
	if strings.Contains(rec.Kept, "alice") {
		t.Errorf("the kept totals hold personal data: %s", rec.Kept)
	}

	again := a.SignIn(t, "alice@example.com")
	if again.ID == alice.ID {
		t.Fatal("signing in again found the deleted account")
	}
	if list := a.Do(t, again, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK).List(t); len(list) != 0 {
		t.Fatalf("the new account has %d tasks", len(list))
	}
	me := a.Do(t, again, http.MethodGet, "/api/v1/subscription", nil).Expect(t, http.StatusOK).Data(t)
	if me["tier"] != "free" {
		t.Fatalf("the new account is %v", me["tier"])
	}
}

// TestAFailedExportIsRetriedThenReported: an archive that cannot be written
// is tried again by the job (here the retry succeeds); after the last
// attempt the export is failed, the user told, and a new one may be asked
// for.
func TestAFailedExportIsRetriedThenReported(t *testing.T) {
	t.Parallel()
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, _ := start(t, testkit.WithConfig("account.export_dir", filepath.Join(blocker, "exports")))
	alice := a.SignIn(t, "alice@example.com")
	id := a.Do(t, alice, http.MethodPost, "/api/v1/users/me/export", nil).Expect(t, http.StatusAccepted).Data(t)["id"].(string)
	testkit.Eventually(t, 20*time.Second, "the first attempt fails", func() bool {
		return a.Count(t, "river_job", "kind = 'account_export' AND attempt >= 1 AND state <> 'running'") == 1 &&
			a.Count(t, "river_job", "kind = 'account_export' AND state IN ('retryable', 'available', 'scheduled')") == 1
	})
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if e := waitExport(t, a, alice, id); e["status"] != "ready" {
		t.Fatalf("after the retry: %v", e)
	}

	b, _, _ := start(t, testkit.WithConfig("account.export_dir", filepath.Join(blocker+"-b", "exports")),
		testkit.WithConfig("account.export_attempts", 1))
	if err := os.WriteFile(blocker+"-b", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bob := b.SignIn(t, "bob@example.com")
	id = b.Do(t, bob, http.MethodPost, "/api/v1/users/me/export", nil).Expect(t, http.StatusAccepted).Data(t)["id"].(string)
	if e := waitExport(t, b, bob, id); e["status"] != "failed" || e["download_url"] != nil {
		t.Fatalf("after the last attempt: %v", e)
	}
	notes := b.Do(t, bob, http.MethodGet, "/api/v1/notifications", nil).Expect(t, http.StatusOK).List(t)
	if len(notes) == 0 || notes[0]["title"] != "Your data export failed" {
		t.Fatalf("notifications %v", notes)
	}
	b.Do(t, bob, http.MethodPost, "/api/v1/users/me/export", nil).Expect(t, http.StatusAccepted)
}

// TestTwoErasuresOfOneAccountKeepTheTotalsOnce: the erase job and an
// operator's erase of the same account, released together: the account
// is erased and the totals kept are those read before any row went.
func TestTwoErasuresOfOneAccountKeepTheTotalsOnce(t *testing.T) {
	t.Parallel()
	a, svc, _ := start(t, testkit.WithRole("api")) // no worker: the two erasures are this test's
	alice := a.SignIn(t, "alice@example.com")
	a.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK)
	want := a.Count(t, "credit_ledger", "user_id = ?", alice.ID)
	a.Do(t, alice, http.MethodDelete, "/api/v1/users/me", map[string]any{"confirm": "alice@example.com"}).Expect(t, http.StatusAccepted)
	start := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			<-start
			_, err := svc.Erase(context.Background(), alice.ID)
			errs <- err
		}()
	}
	close(start)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var rec struct{ Kept string }
	if err := a.DB.Gorm.Table("deleted_accounts").Where("user_id = ?", alice.ID).Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	var kept map[string][]map[string]any
	if err := json.Unmarshal([]byte(rec.Kept), &kept); err != nil {
		t.Fatal(err)
	}
	entries := 0.0
	for _, row := range kept["credit_ledger"] {
		entries += row["entries"].(float64)
	}
	if int64(entries) != want || want == 0 {
		t.Fatalf("kept %s: %v ledger entries, want the %d there were", rec.Kept, entries, want)
	}
	if n := a.Count(t, "credit_ledger", "user_id = ?", alice.ID); n != 0 {
		t.Fatalf("%d ledger rows left", n)
	}
}
