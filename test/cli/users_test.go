package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// The users commands change a running deployment's data through the
// modules' rules: the API sees each change at once.
func TestUsersCommandsChangeARunningDeployment(t *testing.T) {
	t.Parallel()
	url := testkit.NewDatabase(t)
	app := testkit.Start(t, testkit.WithDatabase(url))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	env := []string{"DATABASE_URL=" + url}

	// list and show, by email (any case) and by id.
	var listed struct {
		Users []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
			Tier  string `json:"tier"`
		} `json:"users"`
		Total int `json:"total"`
	}
	decode(t, run(t, env, "users", "list", "--json").expect(t, 0).stdout, &listed)
	if listed.Total != 2 || len(listed.Users) != 2 || listed.Users[0].Email != "bob@example.com" {
		t.Fatalf("list: %+v", listed)
	}
	if r := run(t, env, "users", "list").expect(t, 0); !strings.Contains(r.stdout, "alice@example.com") ||
		!strings.Contains(r.stdout, "2 of 2 users") {
		t.Fatalf("list table: %s", r.stdout)
	}
	var shown struct {
		User struct {
			ID             string `json:"id"`
			ActiveSessions int    `json:"active_sessions"`
		} `json:"user"`
		Plan struct {
			Tier    string `json:"tier"`
			Credits struct {
				Total int `json:"total"`
			} `json:"credits"`
		} `json:"plan"`
	}
	decode(t, run(t, env, "users", "show", "ALICE@example.com", "--json").expect(t, 0).stdout, &shown)
	if shown.User.ID != alice.ID.String() || shown.User.ActiveSessions != 1 || shown.Plan.Tier != "free" || shown.Plan.Credits.Total < 1 {
		t.Fatalf("show: %+v", shown)
	}
	if r := run(t, env, "users", "show", alice.ID.String()).expect(t, 0); !strings.Contains(r.stdout, "alice@example.com") {
		t.Fatalf("show by id: %s", r.stdout)
	}
	run(t, env, "users", "show", "nobody@example.com").expect(t, 1)

	// set-tier pro until a date: Pro at once, as a granted subscription,
	// with an activity row by the system.
	until := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
	r := run(t, env, "users", "set-tier", "alice@example.com", "pro", "--until", until).expect(t, 0)
	if !strings.Contains(r.stdout, "tier free -> pro until "+until[:8]) {
		t.Fatalf("set-tier: %s", r.stdout)
	}
	sub := app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Expect(t, http.StatusOK).Data(t)
	if sub["tier"] != "pro" || sub["status"] != "active" {
		t.Fatalf("the API after set-tier pro: %v", sub)
	}
	if n := app.Count(t, "activity_log", "user_id = ? AND entity_type = 'subscription' AND source = 'system'", alice.ID); n != 1 {
		t.Fatalf("%d system activity rows for the subscription, want 1", n)
	}
	run(t, env, "users", "set-tier", "alice@example.com", "gold").expect(t, 2)
	run(t, env, "users", "set-tier", "alice@example.com", "pro", "--until", "2001-01-01").expect(t, 1)
	run(t, env, "users", "set-tier", "alice@example.com", "pro", "--until", "soon").expect(t, 2)

	// grant-credits: a ledger row of its own kind, bounded, with the reason.
	before := balance(t, app, alice)
	var granted struct {
		Credits struct {
			Granted int `json:"granted"`
			Total   int `json:"total"`
		} `json:"credits"`
	}
	decode(t, run(t, env, "users", "grant-credits", alice.ID.String(), "25", "--reason", "outage on 2026-12-01", "--json").
		expect(t, 0).stdout, &granted)
	if granted.Credits.Granted != 25 {
		t.Fatalf("grant: %+v", granted)
	}
	after := balance(t, app, alice)
	if after["granted"] != float64(25) || after["total"] != before["total"].(float64)+25 {
		t.Fatalf("balance before %v, after %v", before, after)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND kind = 'granted' AND amount = 25 AND description = 'granted: outage on 2026-12-01'", alice.ID); n != 1 {
		t.Fatalf("%d granted ledger rows, want 1", n)
	}
	history := app.Do(t, alice, http.MethodGet, "/api/v1/credits/history", nil).Expect(t, http.StatusOK).List(t)
	if history[0]["category"] != "kickstart" || history[0]["amount"] != float64(25) {
		t.Fatalf("the history shows the grant as %v", history[0])
	}
	run(t, env, "users", "grant-credits", "alice@example.com", "10001", "--reason", "too many").expect(t, 1)
	run(t, env, "users", "grant-credits", "alice@example.com", "0", "--reason", "none").expect(t, 1)
	run(t, env, "users", "grant-credits", "alice@example.com", "5").expect(t, 2)
	if n := app.Count(t, "credit_ledger", "user_id = ? AND kind = 'granted'", alice.ID); n != 1 {
		t.Fatalf("refused grants wrote %d rows", n-1)
	}

	// revoke-sessions: every token of the user stops working; others' not.
	if r := run(t, env, "users", "revoke-sessions", "alice@example.com").expect(t, 0); !strings.Contains(r.stdout, "1 session(s) revoked") {
		t.Fatalf("revoke: %s", r.stdout)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": alice.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	app.Do(t, bob, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)

	// set-tier free: Pro ends at once.
	if r := run(t, env, "users", "set-tier", "alice@example.com", "free").expect(t, 0); !strings.Contains(r.stdout, "tier pro -> free") {
		t.Fatalf("set-tier free: %s", r.stdout)
	}
	alice = app.SignIn(t, "alice@example.com")
	if sub := app.Do(t, alice, http.MethodGet, "/api/v1/subscription", nil).Expect(t, http.StatusOK).Data(t); sub["tier"] != "free" {
		t.Fatalf("the API after set-tier free: %v", sub)
	}
	if n := app.Count(t, "activity_log", "user_id = ? AND entity_type = 'subscription' AND source = 'system'", alice.ID); n != 2 {
		t.Fatalf("%d system activity rows for the subscription, want 2", n)
	}

	// erase: asks for --yes, then deletes the account and every row of it
	// at once; the record of the deletion is kept; Bob is untouched.
	run(t, env, "users", "erase", "alice@example.com").expect(t, 2)
	if n := app.Count(t, "users", "id = ?", alice.ID); n != 1 {
		t.Fatal("erase without --yes deleted the user")
	}
	r = run(t, env, "users", "erase", "alice@example.com", "--yes", "--json").expect(t, 0)
	var erased struct {
		UserID     string           `json:"user_id"`
		RowsErased int64            `json:"rows_erased"`
		Erased     map[string]int64 `json:"erased"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &erased); err != nil {
		t.Fatalf("erase --json: %v\n%s", err, r.stdout)
	}
	if erased.UserID != alice.ID.String() || erased.Erased["user"] != 1 || erased.Erased["credit_ledger"] < 1 || erased.RowsErased < 5 {
		t.Fatalf("erase: %s", r.stdout)
	}
	for _, table := range []string{"users", "auth_sessions", "credit_ledger", "activity_log", "subscriptions"} {
		col := "user_id"
		if table == "users" {
			col = "id"
		}
		if n := app.Count(t, table, col+" = ?", alice.ID); n != 0 {
			t.Errorf("%s: %d rows of Alice's after erase", table, n)
		}
	}
	if n := app.Count(t, "deleted_accounts", "user_id = ? AND erased_at IS NOT NULL", alice.ID); n != 1 {
		t.Fatal("no record of Alice's deletion")
	}
	app.Do(t, bob, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	run(t, env, "users", "erase", alice.ID.String(), "--yes").expect(t, 1)
}

func balance(t *testing.T, app *testkit.App, u *testkit.User) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t)
}

func decode(t *testing.T, text string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("%v: %s", err, text)
	}
}

// On SQLite a command that writes beside a running server (whose job
// workers write every few milliseconds here) waits for the write lock
// instead of failing with SQLITE_BUSY: the writer's transactions begin
// IMMEDIATE. (Deferred, about one command in forty failed.)
func TestWritingCommandsWaitForARunningServerOnSQLite(t *testing.T) {
	t.Parallel()
	if testkit.Postgres() {
		t.Skip("SQLite's file lock")
	}
	url := testkit.NewDatabase(t)
	app := testkit.Start(t, testkit.WithDatabase(url), testkit.WithConfig("jobs.poll_interval", "5ms"),
		testkit.WithConfig("jobs.fetch_cooldown", "2ms"))
	alice := app.SignIn(t, "alice@example.com")
	env := []string{"DATABASE_URL=" + url}
	for range 30 {
		run(t, env, "users", "grant-credits", "alice@example.com", "1", "--reason", "busy").expect(t, 0)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND kind = 'granted' AND entry = 'grant'", alice.ID); n != 30 {
		t.Fatalf("%d grants, want 30", n)
	}
}
