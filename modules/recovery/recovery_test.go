package recovery_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/recovery"
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

func TestRecoveryRestoresTheTaskWithItsChildren(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(recovery.Module, tasks.Module, notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(3 * 24 * time.Hour)
	task := createTask(t, app, alice, map[string]any{"title": "Plan trip", "due_date": due.Format(time.RFC3339)})
	id := task["id"].(string)
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "Plan the trip"}).Expect(t, http.StatusOK)
	st := addSubtask(t, app, alice, id, map[string]any{"title": "book flights"})
	addSubtask(t, app, alice, id, map[string]any{"title": "book hotel"})
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+st["id"].(string)+"/complete", nil).Expect(t, http.StatusOK)
	rem := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": -60})
	note := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/notes", map[string]any{"content": "passport!"}).
		Expect(t, http.StatusCreated).Data(t)

	del := app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK).Data(t)
	for table, where := range map[string]string{"tasks": "id = ?", "subtasks": "task_id = ?", "reminders": "task_id = ?", "notes": "task_id = ?"} {
		if n := app.Count(t, table, where, id); n != 0 {
			t.Fatalf("%s left after delete: %d", table, n)
		}
	}
	list := app.Do(t, alice, http.MethodGet, "/api/v1/recovery", nil).Expect(t, http.StatusOK).JSON(t)["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["entity_type"] != "task" || list[0].(map[string]any)["entity_id"] != id ||
		list[0].(map[string]any)["title"] != "Plan the trip" {
		t.Fatalf("recovery list: %v", list)
	}

	got := app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+del["tombstone_id"].(string)+"/recover", nil).
		Expect(t, http.StatusCreated).Data(t)
	if got["id"] != id || got["created_at"] != task["created_at"] || got["version"] != float64(1) ||
		got["subtask_count"] != float64(2) || got["subtask_completed_count"] != float64(1) {
		t.Fatalf("recovered task: %v (was %v)", got, task)
	}
	detail := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK).Data(t)
	subs := detail["subtasks"].([]any)
	if len(subs) != 2 || subs[0].(map[string]any)["id"] != st["id"] || subs[0].(map[string]any)["completed"] != true {
		t.Fatalf("subtasks: %v", subs)
	}
	rems := detail["reminders"].([]any)
	if len(rems) != 1 || rems[0].(map[string]any)["id"] != rem["id"] {
		t.Fatalf("reminders: %v", rems)
	}
	notes := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id+"/notes", nil).Expect(t, http.StatusOK).List(t)
	if len(notes) != 1 || notes[0]["id"] != note["id"] {
		t.Fatalf("notes: %v", notes)
	}
	// The tombstone is spent.
	app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+del["tombstone_id"].(string)+"/recover", nil).
		ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if n := app.Count(t, "tombstones", ""); n != 0 {
		t.Fatalf("tombstones = %d", n)
	}
}

func TestRecoveryAliasesExpiryAndScope(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(recovery.Module, tasks.Module, notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	var stones []string
	for i := range 3 {
		id := createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("t%d", i)})["id"].(string)
		stones = append(stones, app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Data(t)["tombstone_id"].(string))
	}
	app.Do(t, bob, http.MethodPost, "/api/v1/recovery/"+stones[0]+"/recover", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if list := app.Do(t, bob, http.MethodGet, "/api/v1/recovery/tombstones", nil).JSON(t)["data"].([]any); len(list) != 0 {
		t.Fatalf("bob sees alice's tombstones: %v", list)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/recovery/tombstones/"+stones[0]+"/recover", nil).Expect(t, http.StatusCreated)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/recover/"+stones[1], nil).Expect(t, http.StatusCreated)

	app.Clock.Advance(7*24*time.Hour + time.Minute)
	alice = app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+stones[2]+"/recover", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if list := app.Do(t, alice, http.MethodGet, "/api/v1/recovery", nil).JSON(t)["data"].([]any); len(list) != 0 {
		t.Fatalf("expired tombstones listed: %v", list)
	}
	// tombstone_purge removes it.
	res, err := app.Queue.Insert(context.Background(), recovery.PurgeArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "tombstone_purge", func() bool {
		return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
	})
	if n := app.Count(t, "tombstones", ""); n != 0 {
		t.Fatalf("expired tombstones kept: %d", n)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/recovery/018f0000-0000-7000-8000-000000000000/recover", nil).
		ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestRecoveryChecksLimitsAgain(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(recovery.Module, tasks.Module, notes.Module), testkit.WithConfig("limits.free.max_tasks", 2))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "deleted"})["id"].(string)
	stone := app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Data(t)["tombstone_id"].(string)
	createTask(t, app, alice, map[string]any{"title": "a"})
	createTask(t, app, alice, map[string]any{"title": "b"})
	app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+stone+"/recover", nil).ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	if n := app.Count(t, "tombstones", "id = ?", stone); n != 1 {
		t.Fatal("a refused recovery spent its tombstone")
	}
}

func TestFourthTombstonePurgesTheOldestAcrossTasksAndNotes(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(recovery.Module, tasks.Module, notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	note := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "oldest"}).Expect(t, http.StatusCreated).Data(t)
	app.Do(t, alice, http.MethodDelete, "/api/v1/notes/"+note["id"].(string), nil).Expect(t, http.StatusOK)
	for i := range 3 {
		app.Clock.Advance(time.Minute)
		id := createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("t%d", i)})["id"].(string)
		app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK)
	}
	list := app.Do(t, alice, http.MethodGet, "/api/v1/recovery", nil).JSON(t)["data"].([]any)
	if len(list) != 3 {
		t.Fatalf("tombstones: %v", list)
	}
	for _, ts := range list {
		if ts.(map[string]any)["entity_type"] != "task" {
			t.Fatalf("the oldest (the note) was not purged: %v", list)
		}
	}
}
