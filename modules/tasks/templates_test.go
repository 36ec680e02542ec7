package tasks_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

func createTemplate(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/templates", body).Expect(t, http.StatusCreated).Data(t)
}

// generate runs the recurring_task_generate job and waits until it is done.
func generate(t *testing.T, app *testkit.App) {
	t.Helper()
	res, err := app.Queue.Insert(context.Background(), tasks.RecurringGenerateArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "recurring_task_generate to finish", func() bool {
		return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
	})
}

func instances(t *testing.T, app *testkit.App, templateID string) []time.Time {
	t.Helper()
	var due []time.Time
	if err := app.DB.Gorm.Raw("SELECT due_date FROM tasks WHERE template_id = ? ORDER BY due_date", templateID).
		Scan(&due).Error; err != nil {
		t.Fatal(err)
	}
	for i := range due {
		due[i] = due[i].UTC()
	}
	return due
}

func TestTemplateCRUDAndValidation(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module, activity.Module))
	alice := app.SignIn(t, "alice@example.com")
	tmpl := createTemplate(t, app, alice, map[string]any{"title": "Water plants", "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
		"subtask_titles": []string{"kitchen", "balcony"}, "priority": "low", "estimated_duration": 10})
	for k, want := range map[string]any{"title": "Water plants", "active": true, "priority": "low", "rrule": "FREQ=WEEKLY;BYDAY=MO,TH",
		"estimated_duration": float64(10), "version": float64(1)} {
		if tmpl[k] != want {
			t.Errorf("%s = %v, want %v", k, tmpl[k], want)
		}
	}
	if tmpl["next_due"] == nil || len(tmpl["subtask_titles"].([]any)) != 2 {
		t.Fatalf("template: %v", tmpl)
	}
	id := tmpl["id"].(string)
	list := app.Do(t, alice, http.MethodGet, "/api/v1/templates", nil).Expect(t, http.StatusOK).List(t)
	if len(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	upd := app.Do(t, alice, http.MethodPatch, "/api/v1/templates/"+id, map[string]any{"title": "Water all plants", "active": false}).
		Expect(t, http.StatusOK).Data(t)
	if upd["title"] != "Water all plants" || upd["active"] != false || upd["version"] != float64(2) {
		t.Fatalf("update: %v", upd)
	}

	res := app.Do(t, alice, http.MethodPost, "/api/v1/templates", map[string]any{"title": "x", "rrule": "FREQ=SOMETIMES"}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	var env struct {
		Error struct {
			Details []struct{ Field, Message string } `json:"details"`
		} `json:"error"`
	}
	res.Decode(t, &env)
	if len(env.Error.Details) != 1 || env.Error.Details[0].Field != "rrule" || !strings.Contains(env.Error.Details[0].Message, "SOMETIMES") {
		t.Fatalf("parse error details: %s", res.Body)
	}
	for _, bad := range []map[string]any{
		{"title": "x"}, {"rrule": "FREQ=DAILY"}, {"title": "x", "rrule": "FREQ=HOURLY"},
		{"title": "x", "rrule": "FREQ=DAILY", "subtask_titles": []string{"1", "2", "3", "4", "5"}},
		{"title": "x", "rrule": "FREQ=DAILY", "subtask_titles": []string{""}},
		{"title": "", "rrule": "FREQ=DAILY"},
	} {
		status := app.Do(t, alice, http.MethodPost, "/api/v1/templates", bad).Status
		if status != http.StatusBadRequest && status != http.StatusConflict {
			t.Errorf("%v: status %d", bad, status)
		}
	}
	bob := app.SignIn(t, "bob@example.com")
	app.Do(t, bob, http.MethodGet, "/api/v1/templates/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, bob, http.MethodPost, "/api/v1/templates/"+id+"/instantiate", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	del := app.Do(t, alice, http.MethodDelete, "/api/v1/templates/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if del["deleted"] != true {
		t.Fatalf("delete: %v", del)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/templates/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestRecurringGenerationMakesEachOccurrenceOnce(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module, activity.Module))
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodPatch, "/api/v1/users/me", map[string]any{"timezone": "Europe/Berlin"}).Expect(t, http.StatusOK)
	tmpl := createTemplate(t, app, alice, map[string]any{"title": "Stand-up", "rrule": "FREQ=DAILY;COUNT=3",
		"subtask_titles": []string{"yesterday", "today"}})
	id := tmpl["id"].(string)
	start := app.Clock.Now()

	generate(t, app)
	generate(t, app) // a second run makes nothing new
	if got := instances(t, app, id); len(got) != 1 || !got[0].Equal(start) {
		t.Fatalf("first run: %v (start %v)", got, start)
	}
	var st int64
	app.DB.Gorm.Raw("SELECT subtask_count FROM tasks WHERE template_id = ?", id).Scan(&st)
	if st != 2 {
		t.Fatalf("instance subtasks: %d", st)
	}
	// The unique index refuses a second task for the same occurrence.
	err := app.DB.Gorm.Exec(`INSERT INTO tasks (id, user_id, template_id, title, description, priority, due_date,
		focus_time_seconds, completed, hidden, archived, subtask_count, subtask_completed_count, version, created_at, updated_at)
		VALUES ('018f0000-0000-7000-8000-0000000000aa', ?, ?, 'dup', '', 'medium', ?, 0, false, false, false, 0, 0, 1, ?, ?)`,
		alice.ID, id, start, start, start).Error
	if !database.IsUniqueViolation(err) {
		t.Fatalf("duplicate occurrence accepted: %v", err)
	}

	app.Clock.Advance(24 * time.Hour)
	generate(t, app)
	app.Clock.Advance(3 * 24 * time.Hour)
	generate(t, app)
	got := instances(t, app, id)
	if len(got) != 3 || !got[1].Equal(start.Add(24*time.Hour)) || !got[2].Equal(start.Add(48*time.Hour)) {
		t.Fatalf("occurrences: %v", got)
	}
	after := app.Do(t, app.SignIn(t, "alice@example.com"), http.MethodGet, "/api/v1/templates/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if after["active"] != false || after["next_due"] != nil {
		t.Fatalf("an exhausted template stays active: %v", after)
	}
	// A template is logged as a task (the web client knows no template entity).
	if n := app.Count(t, "activity_log", "entity_id = ? AND entity_type = 'task' AND action = ?", id, "template_deactivated"); n != 1 {
		t.Fatalf("deactivation rows: %d", n)
	}
	if n := app.Count(t, "activity_log", "action = ? AND source = ? AND entity_type = ?", "created", "system", "task"); n != 3 {
		t.Fatalf("generated tasks logged as system: %d", n)
	}
}

func TestCountOneRuleMakesItsOneOccurrence(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module, activity.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTemplate(t, app, alice, map[string]any{"title": "Once", "rrule": "FREQ=WEEKLY;COUNT=1"})["id"].(string)
	generate(t, app)
	if got := instances(t, app, id); len(got) != 1 {
		t.Fatalf("COUNT=1: %v", got)
	}
	tmpl := app.Do(t, alice, http.MethodGet, "/api/v1/templates/"+id, nil).Data(t)
	if tmpl["active"] != false {
		t.Fatalf("template: %v", tmpl)
	}
}

func TestInstantiateMakesTheNextOccurrenceNow(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module, activity.Module))
	alice := app.SignIn(t, "alice@example.com")
	tmpl := createTemplate(t, app, alice, map[string]any{"title": "Review", "rrule": "FREQ=DAILY",
		"subtask_titles": []string{"read", "comment"}})
	id := tmpl["id"].(string)
	task := app.Do(t, alice, http.MethodPost, "/api/v1/templates/"+id+"/instantiate", nil).Expect(t, http.StatusCreated).Data(t)
	if task["template_id"] != id || task["due_date"] != tmpl["next_due"] || len(task["subtasks"].([]any)) != 2 {
		t.Fatalf("instance: %v", task)
	}
	// The job does not make it again, and the alias makes the next one.
	generate(t, app)
	if got := instances(t, app, id); len(got) != 1 {
		t.Fatalf("after the job: %v", got)
	}
	next := app.Do(t, alice, http.MethodPost, "/api/v1/templates/"+id+"/generate", map[string]any{}).Expect(t, http.StatusCreated).Data(t)
	if next["due_date"] == task["due_date"] {
		t.Fatalf("generate repeated the occurrence: %v", next)
	}
}

func TestOccurrenceAtTheTaskLimitIsSkippedAndToldToTheUser(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module, notifications.Module, activity.Module), testkit.WithConfig("limits.free.max_tasks", 1))
	alice := app.SignIn(t, "alice@example.com")
	createTask(t, app, alice, map[string]any{"title": "fills the list"})
	id := createTemplate(t, app, alice, map[string]any{"title": "Daily", "rrule": "FREQ=DAILY"})["id"].(string)
	generate(t, app)
	if got := instances(t, app, id); len(got) != 0 {
		t.Fatalf("made past the limit: %v", got)
	}
	notes := app.Do(t, alice, http.MethodGet, "/api/v1/notifications", nil).Expect(t, http.StatusOK).List(t)
	if len(notes) != 1 || notes[0]["type"] != "system" || !strings.Contains(notes[0]["title"].(string), "Daily") {
		t.Fatalf("notifications: %v", notes)
	}
	tmpl := app.Do(t, alice, http.MethodGet, "/api/v1/templates/"+id, nil).Data(t)
	if tmpl["active"] != true || tmpl["next_due"] == nil {
		t.Fatalf("template after a skip: %v", tmpl)
	}
}
