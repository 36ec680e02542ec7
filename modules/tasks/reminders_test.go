package tasks_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/test/testkit"
)

func addReminder(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/reminders", body).Expect(t, http.StatusCreated).Data(t)
}

func ts(v any) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, v.(string))
	return t
}

// fire runs a reminder_fire job for reminder id at scheduledAt now and waits
// for it to finish.
func fire(t *testing.T, app *testkit.App, id string, scheduledAt time.Time) {
	t.Helper()
	res, err := app.Queue.Insert(context.Background(),
		notifications.ReminderFireArgs{ReminderID: uuid.MustParse(id), ScheduledAt: scheduledAt.UTC()}, &river.InsertOpts{})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "reminder_fire to finish", func() bool {
		return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
	})
}

func TestRemindersAsTheLiveClientSendsThem(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(48 * time.Hour)
	task := createTask(t, app, alice, map[string]any{"title": "t", "due_date": due.Format(time.RFC3339)})
	id := task["id"].(string)

	// "15 minutes before": a negative offset and the client's own scheduled_at.
	before := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": -15,
		"scheduled_at": due.Add(-15 * time.Minute).Format(time.RFC3339), "method": "in_app"})
	if !ts(before["scheduled_at"]).Equal(due.Add(-15*time.Minute)) || before["fired"] != false || before["fired_at"] != nil {
		t.Fatalf("before: %v", before)
	}
	// A positive offset means the same for "before"; the server computes the time.
	pos := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": 60,
		"scheduled_at": "2020-01-01T00:00:00Z"})
	if !ts(pos["scheduled_at"]).Equal(due.Add(-time.Hour)) || pos["method"] != "in_app" {
		t.Fatalf("before with positive offset: %v", pos)
	}
	after := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/reminders",
		map[string]any{"type": "after", "offset_minutes": 30, "method": "push"}).Expect(t, http.StatusCreated).Data(t)
	if !ts(after["scheduled_at"]).Equal(due.Add(30*time.Minute)) || after["method"] != "push" {
		t.Fatalf("after: %v", after)
	}
	atDue := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "absolute", "offset_minutes": 0})
	if !ts(atDue["scheduled_at"]).Equal(due) {
		t.Fatalf("at due time: %v", atDue)
	}
	at := due.Add(-24 * time.Hour).In(time.FixedZone("X", 5*3600))
	abs := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "absolute", "scheduled_at": at.Format(time.RFC3339)})
	if !ts(abs["scheduled_at"]).Equal(at) {
		t.Fatalf("absolute: %v", abs)
	}
	// At most 5 per task.
	app.Do(t, alice, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": id, "type": "before", "offset_minutes": 5}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")

	list := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id+"/reminders", nil).Expect(t, http.StatusOK).List(t)
	if len(list) != 5 {
		t.Fatalf("task reminders: %d", len(list))
	}
	detail := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Data(t)
	if len(detail["reminders"].([]any)) != 5 {
		t.Fatalf("detail reminders: %v", detail["reminders"])
	}
	all := app.Do(t, alice, http.MethodGet, "/api/v1/reminders?from="+due.Add(-2*time.Hour).Format(time.RFC3339), nil).List(t)
	if len(all) != 4 {
		t.Fatalf("from filter: %d", len(all))
	}
	got := app.Do(t, alice, http.MethodGet, "/api/v1/reminders/"+before["id"].(string), nil).Expect(t, http.StatusOK).Data(t)
	if got["id"] != before["id"] {
		t.Fatalf("get: %v", got)
	}
}

func TestReminderInputRules(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	noDue := createTask(t, app, alice, map[string]any{"title": "no due date"})["id"].(string)
	for name, body := range map[string]map[string]any{
		"relative without due date": {"task_id": noDue, "type": "before", "offset_minutes": -15},
		"absolute without time":     {"task_id": noDue, "type": "absolute"},
		"unknown type":              {"task_id": noDue, "type": "sometime", "scheduled_at": "2026-01-01T00:00:00Z"},
		"unknown method":            {"task_id": noDue, "type": "absolute", "scheduled_at": "2026-01-01T00:00:00Z", "method": "sms"},
		"bad task id":               {"task_id": "nope", "type": "absolute", "scheduled_at": "2026-01-01T00:00:00Z"},
		"missing type":              {"task_id": noDue, "scheduled_at": "2026-01-01T00:00:00Z"},
	} {
		t.Run(name, func(t *testing.T) {
			app.Do(t, alice, http.MethodPost, "/api/v1/reminders", body).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
		})
	}
	app.Do(t, bob, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": noDue, "type": "absolute",
		"scheduled_at": "2026-01-01T00:00:00Z"}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	r := addReminder(t, app, alice, map[string]any{"task_id": noDue, "type": "absolute", "scheduled_at": "2027-01-01T00:00:00Z"})
	app.Do(t, bob, http.MethodGet, "/api/v1/reminders/"+r["id"].(string), nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, bob, http.MethodDelete, "/api/v1/reminders/"+r["id"].(string), nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	del := app.Do(t, alice, http.MethodDelete, "/api/v1/reminders/"+r["id"].(string), nil).Expect(t, http.StatusOK).Data(t)
	if del["deleted"] != true || del["id"] != r["id"] {
		t.Fatalf("delete: %v", del)
	}
}

func TestRelativeRemindersMoveWithTheDueDate(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(24 * time.Hour)
	id := createTask(t, app, alice, map[string]any{"title": "t", "due_date": due.Format(time.RFC3339)})["id"].(string)
	rel := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": -30})
	fixed := due.Add(-2 * time.Hour)
	abs := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "absolute", "scheduled_at": fixed.Format(time.RFC3339)})

	newDue := due.Add(72 * time.Hour)
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"due_date": newDue.Format(time.RFC3339)}).Expect(t, http.StatusOK)
	moved := app.Do(t, alice, http.MethodGet, "/api/v1/reminders/"+rel["id"].(string), nil).Data(t)
	if !ts(moved["scheduled_at"]).Equal(newDue.Add(-30 * time.Minute)) {
		t.Fatalf("relative reminder did not follow: %v", moved)
	}
	kept := app.Do(t, alice, http.MethodGet, "/api/v1/reminders/"+abs["id"].(string), nil).Data(t)
	if !ts(kept["scheduled_at"]).Equal(fixed) {
		t.Fatalf("absolute reminder moved: %v", kept)
	}
	// Its first delivery was cancelled and a new one scheduled.
	if n := app.Count(t, "river_job", "kind = ? AND state = ?", "reminder_fire", "cancelled"); n != 1 {
		t.Fatalf("cancelled deliveries: %d", n)
	}
	if n := app.Count(t, "river_job", "kind = ? AND state = ?", "reminder_fire", "scheduled"); n != 2 {
		t.Fatalf("scheduled deliveries: %d", n)
	}
	// The delivery scheduled for the old time does nothing; the new one fires.
	fire(t, app, rel["id"].(string), ts(rel["scheduled_at"]))
	if n := app.Count(t, "notifications", "user_id = ?", alice.ID); n != 0 {
		t.Fatalf("a stale delivery notified (%d)", n)
	}
	fire(t, app, rel["id"].(string), ts(moved["scheduled_at"]))
	if n := app.Count(t, "notifications", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("notifications after the right delivery: %d", n)
	}
	// Changing a reminder's offset through PUT moves it as well.
	upd := app.Do(t, alice, http.MethodPut, "/api/v1/reminders/"+abs["id"].(string),
		map[string]any{"type": "after", "offset_minutes": 10}).Expect(t, http.StatusOK).Data(t)
	if !ts(upd["scheduled_at"]).Equal(newDue.Add(10 * time.Minute)) {
		t.Fatalf("update: %v", upd)
	}
}

func TestReminderFiresOnceThroughTheWorker(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(10 * time.Minute)
	id := createTask(t, app, alice, map[string]any{"title": "Call the bank", "due_date": due.Format(time.RFC3339)})["id"].(string)
	// An hour before a task due in ten minutes: its time has passed, so it fires now.
	r := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": -60})
	testkit.Eventually(t, 10*time.Second, "the reminder to fire", func() bool {
		return app.Count(t, "reminders", "id = ? AND fired = ?", r["id"], true) == 1
	})
	list := app.Do(t, alice, http.MethodGet, "/api/v1/notifications", nil).Expect(t, http.StatusOK).List(t)
	if len(list) != 1 || list[0]["type"] != "reminder" || list[0]["title"] != "Call the bank" || list[0]["task_id"] != id {
		t.Fatalf("notifications: %v", list)
	}
	got := app.Do(t, alice, http.MethodGet, "/api/v1/reminders/"+r["id"].(string), nil).Data(t)
	if got["fired"] != true || got["fired_at"] == nil {
		t.Fatalf("reminder: %v", got)
	}
	// The same delivery again (a retry after a crash) makes no second notification.
	fire(t, app, r["id"].(string), ts(r["scheduled_at"]))
	fire(t, app, r["id"].(string), ts(r["scheduled_at"]))
	if n := app.Count(t, "notifications", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("notifications = %d, want 1", n)
	}
}

func TestClientFireAndDeletedTasksSilenceDeliveries(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(5 * 24 * time.Hour)
	id := createTask(t, app, alice, map[string]any{"title": "t", "due_date": due.Format(time.RFC3339)})["id"].(string)
	a := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": -10})
	b := addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": -20})

	fired := app.Do(t, alice, http.MethodPost, "/api/v1/reminders/"+a["id"].(string)+"/fire", nil).Expect(t, http.StatusOK).Data(t)
	if fired["fired"] != true {
		t.Fatalf("fire: %v", fired)
	}
	again := app.Do(t, alice, http.MethodPost, "/api/v1/reminders/"+a["id"].(string)+"/fire", nil).Expect(t, http.StatusOK).Data(t)
	if again["fired_at"] != fired["fired_at"] {
		t.Fatalf("second fire changed fired_at: %v", again)
	}
	fire(t, app, a["id"].(string), ts(a["scheduled_at"]))

	app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK)
	// Both pending deliveries are cancelled: one by the client's fire, one by the delete.
	if n := app.Count(t, "river_job", "kind = ? AND state IN ?", "reminder_fire", []string{"scheduled", "available"}); n != 0 {
		t.Fatalf("deliveries left pending: %d", n)
	}
	fire(t, app, b["id"].(string), ts(b["scheduled_at"]))
	if n := app.Count(t, "notifications", "user_id = ?", alice.ID); n != 0 {
		t.Fatalf("notifications = %d, want none", n)
	}
	// Unauthenticated calls (the service worker without a token) get 401.
	app.Do(t, nil, http.MethodPost, "/api/v1/reminders/"+a["id"].(string)+"/fire", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
}
