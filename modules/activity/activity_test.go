package activity_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/test/testkit"
)

func createTask(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks", body).Expect(t, http.StatusCreated).Data(t)
}

func addSubtask(t *testing.T, app *testkit.App, u *testkit.User, taskID string, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks/"+taskID+"/subtasks", body).Expect(t, http.StatusCreated).Data(t)
}

func addReminder(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/reminders", body).Expect(t, http.StatusCreated).Data(t)
}

type activityRow struct {
	EntityType string         `json:"entity_type"`
	EntityID   string         `json:"entity_id"`
	Action     string         `json:"action"`
	Source     string         `json:"source"`
	ExtraData  map[string]any `json:"extra_data"`
	RequestID  *string        `json:"request_id"`
}

func entries(t *testing.T, app *testkit.App, u *testkit.User, query string) []activityRow {
	t.Helper()
	var env struct {
		Data []activityRow `json:"data"`
	}
	app.Do(t, u, http.MethodGet, "/api/v1/activity"+query, nil).Expect(t, http.StatusOK).Decode(t, &env)
	return env.Data
}

func TestEveryChangeWritesOneActivityRow(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(activity.Module, tasks.Module, notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(24 * time.Hour)

	res := app.Send(t, alice, testkit.Request{Method: http.MethodPost, Path: "/api/v1/tasks",
		Body:    map[string]any{"title": "t", "due_date": due.Format(time.RFC3339)},
		Headers: map[string]string{"X-Request-ID": "req-create-1"}}).Expect(t, http.StatusCreated)
	id := res.Data(t)["id"].(string)
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "u", "priority": "high"}).Expect(t, http.StatusOK)
	st := addSubtask(t, app, alice, id, map[string]any{"title": "s"})["id"].(string)
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+st+"/complete", nil).Expect(t, http.StatusOK) // + auto-completes the task
	rem := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "absolute", "scheduled_at": due.Format(time.RFC3339)})
	app.Do(t, alice, http.MethodDelete, "/api/v1/reminders/"+rem["id"].(string), nil).Expect(t, http.StatusOK)
	note := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "n"}).Expect(t, http.StatusCreated).Data(t)
	app.Do(t, alice, http.MethodPatch, "/api/v1/notes/"+note["id"].(string), map[string]any{"archived": true}).Expect(t, http.StatusOK)
	stone := app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK).Data(t)["tombstone_id"].(string)
	app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+stone+"/recover", nil).Expect(t, http.StatusCreated)

	// A refused change writes nothing.
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "x", "version": 99}).Expect(t, http.StatusConflict)

	rows := entries(t, app, alice, "")
	var got []string
	for i := len(rows) - 1; i >= 0; i-- {
		got = append(got, rows[i].EntityType+":"+rows[i].Action)
	}
	want := "task:created task:updated subtask:created subtask:completed task:completed reminder:created reminder:deleted " +
		"note:created note:archived task:deleted task:recovered"
	if strings.Join(got, " ") != want {
		t.Fatalf("activity:\n got  %s\n want %s", strings.Join(got, " "), want)
	}
	first := rows[len(rows)-1]
	if first.RequestID == nil || *first.RequestID != "req-create-1" || first.Source != "user" || first.EntityID != id {
		t.Fatalf("creation row: %+v", first)
	}
	updated := rows[len(rows)-2]
	if ch, _ := updated.ExtraData["changed"].([]any); len(ch) != 2 {
		t.Fatalf("update row extra: %v", updated.ExtraData)
	}
	if rows[len(rows)-5].ExtraData["completed_by"] != "auto" {
		t.Fatalf("auto completion row: %+v", rows[len(rows)-5])
	}

	// Filters and pagination.
	if r := entries(t, app, alice, "?entity_type=note"); len(r) != 2 {
		t.Fatalf("entity_type filter: %v", r)
	}
	if r := entries(t, app, alice, "?entity_id="+id); len(r) != 5 {
		t.Fatalf("entity_id filter: %d rows", len(r))
	}
	if r := entries(t, app, alice, "?limit=3"); len(r) != 3 {
		t.Fatalf("limit: %d", len(r))
	}
	if r := entries(t, app, alice, "?from="+app.Clock.Now().Add(time.Minute).Format(time.RFC3339)); len(r) != 0 {
		t.Fatalf("from filter: %d", len(r))
	}
	// The /users/{id}/activity alias answers for the caller's own id only.
	app.Do(t, alice, http.MethodGet, "/api/v1/users/"+alice.ID.String()+"/activity", nil).Expect(t, http.StatusOK)
	bob := app.SignIn(t, "bob@example.com")
	app.Do(t, bob, http.MethodGet, "/api/v1/users/"+alice.ID.String()+"/activity", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if r := entries(t, app, bob, ""); len(r) != 0 {
		t.Fatalf("bob sees alice's activity: %v", r)
	}
}

func TestActivityIsKeptThirtyDays(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(activity.Module, tasks.Module, notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	createTask(t, app, alice, map[string]any{"title": "old"})
	app.Clock.Advance(31 * 24 * time.Hour)
	alice = app.SignIn(t, "alice@example.com")
	createTask(t, app, alice, map[string]any{"title": "new"})
	res, err := app.Queue.Insert(context.Background(), activity.PurgeArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "activity_purge", func() bool {
		return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
	})
	rows := entries(t, app, alice, "")
	if len(rows) != 1 || rows[0].ExtraData["title"] != "new" {
		t.Fatalf("after purge: %+v", rows)
	}
}
