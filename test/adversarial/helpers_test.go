// Package adversarial is the suite that attacks the API the way a hostile or
// merely unlucky client does: another user's ids on every route of the
// OpenAPI document, malformed values in every field, concurrent requests on
// one row released together, and processes killed mid-write. It runs in
// `make test` on SQLite and on PostgreSQL (where the races are real).
package adversarial

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// fixture is one of everything a user can own, by the name of the resource
// segment that addresses it in a path (tasks/{id}, notes/{id}, ...).
type fixture struct {
	user         *testkit.User
	task         string
	subtask      string
	reminder     string
	template     string
	note         string
	taskNote     string
	tombstone    string
	notification string
}

func create(t *testing.T, app *testkit.App, u *testkit.User, path string, body any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, path, body).Expect(t, http.StatusCreated).Data(t)
}

// own creates one of everything for u (and a notification, through a
// reminder that fires).
func own(t *testing.T, app *testkit.App, u *testkit.User) *fixture {
	t.Helper()
	due := app.Clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	f := &fixture{user: u}
	f.task = create(t, app, u, "/api/v1/tasks", map[string]any{"title": "Secret task", "due_date": due})["id"].(string)
	f.subtask = create(t, app, u, "/api/v1/tasks/"+f.task+"/subtasks", map[string]any{"title": "Secret step"})["id"].(string)
	f.reminder = create(t, app, u, "/api/v1/reminders", map[string]any{"task_id": f.task, "type": "before",
		"offset_minutes": -15})["id"].(string)
	f.template = create(t, app, u, "/api/v1/templates", map[string]any{"title": "Secret routine",
		"rrule": "FREQ=DAILY"})["id"].(string)
	f.note = create(t, app, u, "/api/v1/notes", map[string]any{"content": "Secret note"})["id"].(string)
	f.taskNote = create(t, app, u, "/api/v1/tasks/"+f.task+"/notes", map[string]any{"content": "Secret task note"})["id"].(string)
	gone := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "Deleted secret"})["id"].(string)
	f.tombstone = app.Do(t, u, http.MethodDelete, "/api/v1/tasks/"+gone, nil).Expect(t, http.StatusOK).Data(t)["tombstone_id"].(string)

	// A reminder due now fires through the worker into a notification.
	soon := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "Soon"})["id"].(string)
	create(t, app, u, "/api/v1/reminders", map[string]any{"task_id": soon, "type": "absolute",
		"scheduled_at": app.Clock.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
	testkit.Eventually(t, 10*time.Second, "a notification", func() bool {
		return app.Count(t, "notifications", "user_id = ?", u.ID) > 0
	})
	list := app.Do(t, u, http.MethodGet, "/api/v1/notifications", nil).Expect(t, http.StatusOK).List(t)
	f.notification = list[0]["id"].(string)
	return f
}

// count fails unless table has want rows matching where.
func count(t *testing.T, app *testkit.App, want int64, table, where string, args ...any) {
	t.Helper()
	if got := app.Count(t, table, where, args...); got != want {
		t.Fatalf("%s where %s %v: %d rows, want %d", table, where, args, got, want)
	}
}

// expectStatuses fails when an answer has a status outside allowed, and
// returns the counts.
func expectStatuses(t *testing.T, what string, rs []*testkit.Response, allowed ...int) map[int]int {
	t.Helper()
	ok := map[int]bool{}
	for _, s := range allowed {
		ok[s] = true
	}
	for _, r := range rs {
		if !ok[r.Status] {
			t.Fatalf("%s: status %d (allowed %v): %s", what, r.Status, allowed, r.Body)
		}
	}
	return testkit.Statuses(rs)
}

func racers(n int, u *testkit.User, method, path string, body any) []testkit.Racer {
	out := make([]testkit.Racer, n)
	for i := range out {
		out[i] = testkit.Racer{User: u, Request: testkit.Request{Method: method, Path: path, Body: body}}
	}
	return out
}

func racersEach(n int, u *testkit.User, method, path string, body func(i int) any) []testkit.Racer {
	out := make([]testkit.Racer, n)
	for i := range out {
		out[i] = testkit.Racer{User: u, Request: testkit.Request{Method: method, Path: path, Body: body(i)}}
	}
	return out
}

func title(i int) string { return fmt.Sprintf("edit %02d", i) }
