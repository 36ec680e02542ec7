package adversarial

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/perpetuaflow/api/test/testkit"
)

// keptLists are the counts triggers keep in row_counts, and the rows each
// counts.
var keptLists = map[string]string{
	"notes":                "SELECT user_id, count(*) AS n FROM notes GROUP BY user_id",
	"notes:archived":       "SELECT user_id, count(*) AS n FROM notes WHERE archived GROUP BY user_id",
	"notifications":        "SELECT user_id, count(*) AS n FROM notifications GROUP BY user_id",
	"notifications:unread": "SELECT user_id, count(*) AS n FROM notifications WHERE NOT read GROUP BY user_id",
	"activity":             "SELECT user_id, count(*) AS n FROM activity_log GROUP BY user_id",
	"credit_history":       "SELECT user_id, count(*) AS n FROM credit_ledger GROUP BY user_id",
	"focus_sessions":       "SELECT user_id, count(*) AS n FROM focus_sessions GROUP BY user_id",
	// The balance's sums, by kind of credit.
	"credits:daily":        "SELECT user_id, SUM(amount) AS n FROM credit_ledger WHERE kind = 'daily' GROUP BY user_id HAVING SUM(amount) <> 0",
	"credits:subscription": "SELECT user_id, SUM(amount) AS n FROM credit_ledger WHERE kind = 'subscription' GROUP BY user_id HAVING SUM(amount) <> 0",
	"credits:purchased":    "SELECT user_id, SUM(amount) AS n FROM credit_ledger WHERE kind = 'purchased' GROUP BY user_id HAVING SUM(amount) <> 0",
	"credits:kickstart":    "SELECT user_id, SUM(amount) AS n FROM credit_ledger WHERE kind = 'kickstart' GROUP BY user_id HAVING SUM(amount) <> 0",
}

// checkKept compares every kept count with the rows it counts, for every
// user, and the ledger's amounts with what its lots have left (the
// balance a change reads).
func checkKept(t *testing.T, app *testkit.App, step string) {
	t.Helper()
	var broken []struct {
		UserID, Kind  string
		Amounts, Lots int64
	}
	if err := app.DB.Gorm.Raw(`SELECT user_id, kind, SUM(amount) AS amounts, SUM(remaining) AS lots FROM credit_ledger
		GROUP BY user_id, kind HAVING SUM(amount) <> SUM(remaining)`).Scan(&broken).Error; err != nil {
		t.Fatal(err)
	}
	if len(broken) > 0 {
		t.Fatalf("%s: the ledger's amounts and its lots differ: %+v", step, broken)
	}
	for list, query := range keptLists {
		var rows, kept []struct {
			UserID string
			N      int64
		}
		if err := app.DB.Gorm.Raw(query).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if err := app.DB.Gorm.Raw("SELECT user_id, n FROM row_counts WHERE list = ? AND n <> 0", list).Scan(&kept).Error; err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{}
		for _, r := range rows {
			want[r.UserID] = r.N
		}
		got := map[string]int64{}
		for _, r := range kept {
			got[r.UserID] = r.N
		}
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("%s: %s kept %v, the rows say %v", step, list, got, want)
		}
	}
}

// TestKeptCountsFollowEveryChange: after one of everything for two users
// and a burst of racing changes to notes, notifications and focus
// sessions, every count kept for the lists' totals is the count of its
// rows, and the lists' totals say so.
func TestKeptCountsFollowEveryChange(t *testing.T) {
	t.Parallel()
	app := startWithProviders(t)
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	fa := own(t, app, alice)
	own(t, app, bob)
	checkKept(t, app, "one of everything")

	var rs []testkit.Racer
	for i := range 4 {
		archived := i%2 == 0
		rs = append(rs,
			testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPatch, Path: "/api/v1/notes/" + fa.note,
				Body: map[string]any{"archived": archived}}},
			testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPatch,
				Path: "/api/v1/notifications/" + fa.notification + "/read"}},
			testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/focus-sessions",
				Body: map[string]any{"task_id": fa.task}}},
			testkit.Racer{User: alice, Request: keyed(testkit.Request{Method: http.MethodPost, Path: "/api/v1/notes",
				Body: map[string]any{"content": fmt.Sprintf("raced %d", i)}})},
		)
	}
	rs = append(rs,
		testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/notifications/read-all"}},
		testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodDelete, Path: "/api/v1/notifications/" + fa.notification}},
		testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodDelete, Path: "/api/v1/tasks/" + fa.task}},
	)
	for _, r := range app.Burst(t, rs) {
		if r.Status >= 500 {
			t.Fatalf("a racing change failed: %d %s", r.Status, r.Body)
		}
	}
	checkKept(t, app, "racing changes")
	for _, ts := range app.Do(t, alice, http.MethodGet, "/api/v1/recovery", nil).Expect(t, http.StatusOK).List(t) {
		app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+ts["id"].(string)+"/recover", nil).Expect(t, http.StatusCreated)
	}
	checkKept(t, app, "recovered")
	for path, table := range map[string]string{"/api/v1/notes": "notes", "/api/v1/notes?archived=true": "notes",
		"/api/v1/notes?archived=false": "notes", "/api/v1/notifications": "notifications",
		"/api/v1/notifications?unread_only=true": "notifications", "/api/v1/activity": "activity_log",
		"/api/v1/credits/history": "credit_ledger", "/api/v1/focus-sessions": "focus_sessions"} {
		var page struct {
			Pagination struct{ Total int64 } `json:"pagination"`
		}
		app.Do(t, alice, http.MethodGet, path, nil).Expect(t, http.StatusOK).Decode(t, &page)
		where := "user_id = ?"
		switch path {
		case "/api/v1/notes?archived=true":
			where += " AND archived"
		case "/api/v1/notes?archived=false":
			where += " AND NOT archived"
		case "/api/v1/notifications?unread_only=true":
			where += " AND NOT read"
		}
		if rows := app.Count(t, table, where, alice.ID); rows != page.Pagination.Total {
			t.Fatalf("%s totals %d; %d rows", path, page.Pagination.Total, rows)
		}
	}
}
