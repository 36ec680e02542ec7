package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/test/testkit"
)

func createTask(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks", body).Expect(t, http.StatusCreated).Data(t)
}

func TestCreateTask(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(48 * time.Hour).In(time.FixedZone("CEST", 2*3600))

	task := createTask(t, app, alice, map[string]any{"title": "  Write report  ", "due_date": due.Format(time.RFC3339Nano),
		"estimated_duration": 90, "priority": "high"})

	want := map[string]any{"title": "Write report", "description": "", "priority": "high", "completed": false,
		"hidden": false, "archived": false, "version": float64(1), "estimated_duration": float64(90),
		"user_id": alice.ID.String(), "template_id": nil, "completed_at": nil, "completed_by": nil,
		"focus_time_seconds": float64(0), "subtask_count": float64(0), "subtask_completed_count": float64(0),
		"due_date": due.UTC().Format(time.RFC3339Nano)}
	for k, v := range want {
		got, ok := task[k]
		if !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if n := app.Count(t, "tasks", "user_id = ? AND title = ?", alice.ID, "Write report"); n != 1 {
		t.Fatalf("rows = %d", n)
	}

	plain := createTask(t, app, alice, map[string]any{"title": "Defaults"})
	if plain["priority"] != "medium" || plain["due_date"] != nil || plain["estimated_duration"] != nil {
		t.Fatalf("defaults: %v", plain)
	}
}

func TestCreateTaskRefusesBadInput(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	now := app.Clock.Now()
	cases := map[string]struct {
		body  any
		field string
	}{
		"missing title":           {map[string]any{}, "title"},
		"empty title":             {map[string]any{"title": ""}, "title"},
		"blank title":             {map[string]any{"title": "   "}, "title"},
		"title too long":          {map[string]any{"title": strings.Repeat("x", 501)}, "title"},
		"null title":              {map[string]any{"title": nil}, "title"},
		"title wrong type":        {map[string]any{"title": 12}, "title"},
		"unknown priority":        {map[string]any{"title": "x", "priority": "urgent"}, "priority"},
		"description over tier":   {map[string]any{"title": "x", "description": strings.Repeat("d", 1001)}, "description"},
		"due date too far":        {map[string]any{"title": "x", "due_date": now.Add(31 * 24 * time.Hour).Format(time.RFC3339)}, "due_date"},
		"due date not a date":     {map[string]any{"title": "x", "due_date": "tomorrow"}, "due_date"},
		"estimate zero":           {map[string]any{"title": "x", "estimated_duration": 0}, "estimated_duration"},
		"estimate too long":       {map[string]any{"title": "x", "estimated_duration": 721}, "estimated_duration"},
		"estimate not an integer": {map[string]any{"title": "x", "estimated_duration": 1.5}, "estimated_duration"},
		"malformed JSON":          {`{"title": "x"`, ""},
		"array body":              {`[1,2]`, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			res := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", c.body).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
			var env struct {
				Error struct {
					Details []struct{ Field, Message string } `json:"details"`
				} `json:"error"`
			}
			res.Decode(t, &env)
			if len(env.Error.Details) == 0 {
				t.Fatalf("no details: %s", res.Body)
			}
			if c.field != "" && env.Error.Details[0].Field != c.field {
				t.Fatalf("details name %q, want %q: %s", env.Error.Details[0].Field, c.field, res.Body)
			}
		})
	}
	if n := app.Count(t, "tasks", ""); n != 0 {
		t.Fatalf("refused creates left %d rows", n)
	}
	// A due date exactly at the limit is fine.
	createTask(t, app, alice, map[string]any{"title": "edge", "due_date": now.Add(30 * 24 * time.Hour).Format(time.RFC3339)})
}

func TestDescriptionLimitFollowsTier(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	createTask(t, app, alice, map[string]any{"title": "x", "description": strings.Repeat("d", 1000)})
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "x", "description": strings.Repeat("d", 1001)}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")

	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	createTask(t, app, alice, map[string]any{"title": "x", "description": strings.Repeat("d", 2000)})
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "x", "description": strings.Repeat("d", 2001)}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
}

func TestActiveTaskLimit(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	var first map[string]any
	for i := range 50 {
		task := createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("task %d", i)})
		if i == 0 {
			first = task
		}
	}
	res := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "one too many"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	if msg := res.JSON(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "max_tasks") || !strings.Contains(msg, "50") {
		t.Fatalf("message does not name the limit and its value: %q", msg)
	}

	// A completed task no longer counts; an archived one neither.
	id := first["id"].(string)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK)
	second := createTask(t, app, alice, map[string]any{"title": "fits again"})
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "full"}).ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+second["id"].(string), map[string]any{"archived": true}).Expect(t, http.StatusOK)
	createTask(t, app, alice, map[string]any{"title": "fits after archiving"})

	// Un-archiving into a full list is refused.
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+second["id"].(string), map[string]any{"archived": false}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")

	// Another user's limit is their own.
	bob := app.SignIn(t, "bob@example.com")
	createTask(t, app, bob, map[string]any{"title": "bob's"})
}

// TestConcurrentCreatesNeverPassTheLimit: twelve creates released together
// against a limit of five, by a user's first tasks (no count row yet: the
// creates make it) and by a user who has one (the creates lock it).
func TestConcurrentCreatesNeverPassTheLimit(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module), testkit.WithConfig("limits.free.max_tasks", 5))
	for _, had := range []int{0, 1} {
		user := app.SignIn(t, fmt.Sprintf("had%d@example.com", had))
		for i := range had {
			createTask(t, app, user, map[string]any{"title": fmt.Sprintf("before %d", i)})
		}
		racers := make([]testkit.Racer, 12)
		for i := range racers {
			racers[i] = testkit.Racer{User: user, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/tasks",
				Body: map[string]any{"title": fmt.Sprintf("t%d", i)}}}
		}
		statuses := testkit.Statuses(app.Burst(t, racers))
		if statuses[http.StatusCreated] != 5-had || statuses[http.StatusConflict] != 7+had {
			t.Fatalf("with %d task before: statuses %v; want %d created and %d refused", had, statuses, 5-had, 7+had)
		}
		if n := app.Count(t, "tasks", "user_id = ?", user.ID); n != 5 {
			t.Fatalf("with %d task before: rows = %d", had, n)
		}
	}
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	now := app.Clock.Now()
	mk := func(title, priority string, dueIn time.Duration) string {
		body := map[string]any{"title": title, "priority": priority, "description": "about " + title}
		if dueIn != 0 {
			body["due_date"] = now.Add(dueIn).Format(time.RFC3339)
		}
		task := createTask(t, app, alice, body)
		app.Clock.Advance(time.Second) // distinct created_at
		return task["id"].(string)
	}
	groceries := mk("Buy groceries", "low", 2*time.Hour)
	report := mk("Quarterly REPORT", "high", 48*time.Hour)
	hidden := mk("Secret plan", "medium", 0)
	done := mk("Done thing", "medium", 24*time.Hour)
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+hidden, map[string]any{"hidden": true}).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+done+"/complete", nil).Expect(t, http.StatusOK)
	bob := app.SignIn(t, "bob@example.com")
	createTask(t, app, bob, map[string]any{"title": "Bob's groceries"})

	ids := func(query string) []string {
		t.Helper()
		var out []string
		for _, item := range app.Do(t, alice, http.MethodGet, "/api/v1/tasks"+query, nil).Expect(t, http.StatusOK).List(t) {
			out = append(out, item["id"].(string))
		}
		return out
	}
	cases := map[string][]string{
		"":                 {done, hidden, report, groceries}, // newest first, hidden included
		"?completed=false": {hidden, report, groceries},
		"?completed=true":  {done},
		"?hidden=true":     {hidden},
		"?hidden=false":    {done, report, groceries},
		"?archived=false":  {done, hidden, report, groceries},
		"?priority=high":   {report},
		"?q=report":        {report},
		"?q=GROCER":        {groceries},
		"?q=about%20buy":   {groceries},
		"?q=%25":           nil, // a literal %, not a wildcard
		"?sort=created_at": {groceries, report, hidden, done},
		"?sort=due_date":   {groceries, done, report, hidden},
		"?sort=priority":   {report, done, hidden, groceries},
		"?due_before=" + now.Add(30*time.Hour).Format(time.RFC3339): {done, groceries},
		"?due_after=" + now.Add(30*time.Hour).Format(time.RFC3339):  {report},
	}
	for query, want := range cases {
		t.Run(query, func(t *testing.T) {
			got := ids(query)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	var page struct {
		Data       []map[string]any `json:"data"`
		Pagination struct {
			Offset, Limit int
			Total         int64
			HasMore       bool `json:"has_more"`
		} `json:"pagination"`
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?limit=3", nil).Expect(t, http.StatusOK).Decode(t, &page)
	if len(page.Data) != 3 || page.Pagination.Total != 4 || !page.Pagination.HasMore || page.Pagination.Limit != 3 {
		t.Fatalf("first page: %+v", page.Pagination)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?limit=3&offset=3", nil).Expect(t, http.StatusOK).Decode(t, &page)
	if len(page.Data) != 1 || page.Pagination.HasMore || page.Pagination.Offset != 3 || page.Pagination.Total != 4 {
		t.Fatalf("second page: %+v", page.Pagination)
	}
	// Past the end: no rows, the total all the same.
	page.Data = nil
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?limit=3&offset=9", nil).Expect(t, http.StatusOK).Decode(t, &page)
	if len(page.Data) != 0 || page.Pagination.HasMore || page.Pagination.Total != 4 {
		t.Fatalf("page past the end: %+v", page.Pagination)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?limit=3&q=nothing+like+it", nil).Expect(t, http.StatusOK).Decode(t, &page)
	if len(page.Data) != 0 || page.Pagination.Total != 0 {
		t.Fatalf("no match: %+v", page.Pagination)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Decode(t, &page)
	if page.Pagination.Limit != 100 {
		t.Fatalf("default limit %d, want 100", page.Pagination.Limit)
	}
	for _, bad := range []string{"?limit=0", "?limit=101", "?limit=1000000", "?offset=-1", "?completed=maybe",
		"?priority=urgent", "?sort=title", "?due_before=yesterday", "?limit=abc"} {
		app.Do(t, alice, http.MethodGet, "/api/v1/tasks"+bad, nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
}

func TestGetTaskDetail(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	task := createTask(t, app, alice, map[string]any{"title": "detail"})
	got := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+task["id"].(string), nil).Expect(t, http.StatusOK).Data(t)
	if got["title"] != "detail" {
		t.Fatalf("detail: %v", got)
	}
	for _, key := range []string{"subtasks", "reminders"} {
		if list, ok := got[key].([]any); !ok || len(list) != 0 {
			t.Fatalf("%s = %v, want an empty array", key, got[key])
		}
	}
}

func TestAnotherUsersTaskIsNotFound(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "alice's"})["id"].(string)
	path := "/api/v1/tasks/" + id
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, path, nil},
		{http.MethodPatch, path, map[string]any{"title": "mine now"}},
		{http.MethodPut, path, map[string]any{"title": "mine now"}},
		{http.MethodPost, path + "/complete", nil},
		{http.MethodPost, path + "/force-complete", map[string]any{}},
		{http.MethodDelete, path, nil},
	} {
		app.Do(t, bob, r.method, r.path, r.body).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks/018f0000-0000-7000-8000-000000000000", nil).
		ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	for _, bad := range []string{"not-a-uuid", "123", "018f0000-0000-7000-8000-00000000000g"} {
		app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+bad, nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
	unchanged := app.Do(t, alice, http.MethodGet, path, nil).Expect(t, http.StatusOK).Data(t)
	if unchanged["title"] != "alice's" || unchanged["completed"] != false {
		t.Fatalf("bob changed alice's task: %v", unchanged)
	}
}

func TestUpdateWithVersion(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "v1"})["id"].(string)
	path := "/api/v1/tasks/" + id

	v2 := app.Do(t, alice, http.MethodPatch, path, map[string]any{"title": "v2", "version": 1}).Expect(t, http.StatusOK).Data(t)
	if v2["version"] != float64(2) || v2["title"] != "v2" {
		t.Fatalf("v2: %v", v2)
	}
	res := app.Do(t, alice, http.MethodPatch, path, map[string]any{"title": "stale", "version": 1}).
		ExpectError(t, http.StatusConflict, "CONFLICT")
	if msg := res.JSON(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "current version is 2") {
		t.Fatalf("message: %q", msg)
	}
	// The live client toggles completion and hiding without a version.
	v3 := app.Do(t, alice, http.MethodPatch, path, map[string]any{"completed": true}).Expect(t, http.StatusOK).Data(t)
	if v3["completed"] != true || v3["completed_by"] != "manual" || v3["completed_at"] == nil || v3["version"] != float64(3) {
		t.Fatalf("complete via PATCH: %v", v3)
	}
	v4 := app.Do(t, alice, http.MethodPut, path, map[string]any{"hidden": true}).Expect(t, http.StatusOK).Data(t)
	if v4["hidden"] != true || v4["version"] != float64(4) {
		t.Fatalf("hide via PUT: %v", v4)
	}
	reopened := app.Do(t, alice, http.MethodPatch, path, map[string]any{"completed": false}).Expect(t, http.StatusOK).Data(t)
	if reopened["completed"] != false || reopened["completed_at"] != nil || reopened["completed_by"] != nil {
		t.Fatalf("reopen: %v", reopened)
	}
	// A request that changes nothing does not bump the version.
	same := app.Do(t, alice, http.MethodPatch, path, map[string]any{"title": "v2"}).Expect(t, http.StatusOK).Data(t)
	if same["version"] != reopened["version"] {
		t.Fatalf("no-op bumped version: %v -> %v", reopened["version"], same["version"])
	}
}

func TestConcurrentUpdatesWithoutVersionBothApply(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "race"})["id"].(string)
	var racers []testkit.Racer
	for _, body := range []map[string]any{{"hidden": true}, {"priority": "high"}, {"description": "d"}, {"estimated_duration": 5}} {
		racers = append(racers, testkit.Racer{User: alice,
			Request: testkit.Request{Method: http.MethodPatch, Path: "/api/v1/tasks/" + id, Body: body}})
	}
	for _, res := range app.Burst(t, racers) {
		res.Expect(t, http.StatusOK)
	}
	got := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Data(t)
	if got["hidden"] != true || got["priority"] != "high" || got["description"] != "d" || got["estimated_duration"] != float64(5) ||
		got["version"] != float64(5) {
		t.Fatalf("a concurrent update was lost: %v", got)
	}
}

func TestPatchNullClearsOnlyNullableFields(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t", "description": "d", "estimated_duration": 30,
		"due_date": app.Clock.Now().Add(time.Hour).Format(time.RFC3339)})["id"].(string)
	path := "/api/v1/tasks/" + id

	cleared := app.Do(t, alice, http.MethodPatch, path,
		map[string]any{"description": nil, "due_date": nil, "estimated_duration": nil}).Expect(t, http.StatusOK).Data(t)
	if cleared["description"] != "" || cleared["due_date"] != nil || cleared["estimated_duration"] != nil {
		t.Fatalf("cleared: %v", cleared)
	}
	for _, field := range []string{"title", "priority", "hidden", "completed"} {
		app.Do(t, alice, http.MethodPatch, path, map[string]any{field: nil}).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
	app.Do(t, alice, http.MethodPatch, path, map[string]any{"due_date": app.Clock.Now().Add(40 * 24 * time.Hour).Format(time.RFC3339)}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	app.Do(t, alice, http.MethodPatch, path, map[string]any{"title": "  "}).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	// Absent fields stay as they are.
	kept := app.Do(t, alice, http.MethodPatch, path, map[string]any{"priority": "low"}).Expect(t, http.StatusOK).Data(t)
	if kept["title"] != "t" || kept["priority"] != "low" {
		t.Fatalf("kept: %v", kept)
	}
}

func TestArchivedTaskIsReadOnlyUntilUnarchived(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "old"})["id"].(string)
	path := "/api/v1/tasks/" + id
	app.Do(t, alice, http.MethodPatch, path, map[string]any{"archived": true}).Expect(t, http.StatusOK)

	app.Do(t, alice, http.MethodPatch, path, map[string]any{"title": "new"}).ExpectError(t, http.StatusConflict, "ARCHIVED")
	app.Do(t, alice, http.MethodPatch, path, map[string]any{"archived": true, "hidden": true}).ExpectError(t, http.StatusConflict, "ARCHIVED")
	app.Do(t, alice, http.MethodPost, path+"/complete", nil).ExpectError(t, http.StatusConflict, "ARCHIVED")
	app.Do(t, alice, http.MethodPost, path+"/force-complete", nil).ExpectError(t, http.StatusConflict, "ARCHIVED")

	got := app.Do(t, alice, http.MethodPatch, path, map[string]any{"archived": false, "title": "new"}).Expect(t, http.StatusOK).Data(t)
	if got["archived"] != false || got["title"] != "new" {
		t.Fatalf("unarchive with a change: %v", got)
	}
}

// completions counts TaskCompleted events through a real subscriber.
type completions struct {
	n    atomic.Int32
	fail atomic.Bool
}

func subscribeCompletions(c *completions) fx.Option {
	return fx.Invoke(func(bus *events.Bus) {
		events.Subscribe(bus, "test", func(_ context.Context, tx *gorm.DB, e tasks.TaskCompleted) error {
			if c.fail.Load() {
				return errors.New("subscriber failed")
			}
			c.n.Add(1)
			e.Rewards.Streak = 7
			return nil
		})
	})
}

func TestCompleteAndForceComplete(t *testing.T) {
	t.Parallel()
	c := &completions{}
	app := testkit.Start(t, testkit.Modules(tasks.Module), testkit.WithFx(subscribeCompletions(c)))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)

	res := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK).Data(t)
	task := res["task"].(map[string]any)
	if task["completed"] != true || task["completed_by"] != "manual" || task["completed_at"] == nil {
		t.Fatalf("completed task: %v", task)
	}
	if list, ok := res["unlocked_achievements"].([]any); !ok || len(list) != 0 || res["streak"] != float64(7) {
		t.Fatalf("rewards: %v", res)
	}
	// Completing again is a no-op that answers the same task: safe to retry.
	again := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK).Data(t)
	if again["task"].(map[string]any)["version"] != task["version"] || c.n.Load() != 1 {
		t.Fatalf("second completion changed something: %v (events %d)", again, c.n.Load())
	}

	id2 := createTask(t, app, alice, map[string]any{"title": "t2"})["id"].(string)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id2+"/force-complete", map[string]any{"version": 9}).
		ExpectError(t, http.StatusConflict, "CONFLICT")
	forced := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id2+"/force-complete", map[string]any{"version": 1}).
		Expect(t, http.StatusOK).Data(t)["task"].(map[string]any)
	if forced["completed_by"] != "force" || c.n.Load() != 2 {
		t.Fatalf("forced: %v (events %d)", forced, c.n.Load())
	}
}

func TestCompletionRollsBackWhenASubscriberFails(t *testing.T) {
	t.Parallel()
	c := &completions{}
	app := testkit.Start(t, testkit.Modules(tasks.Module), testkit.WithFx(subscribeCompletions(c)))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	c.fail.Store(true)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).ExpectError(t, http.StatusInternalServerError, "INTERNAL_ERROR")
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"completed": true}).
		ExpectError(t, http.StatusInternalServerError, "INTERNAL_ERROR")
	if n := app.Count(t, "tasks", "id = ? AND completed = ?", id, true); n != 0 {
		t.Fatal("the completion committed although its subscriber failed")
	}
}

func TestDeleteLeavesARecoverableTombstone(t *testing.T) {
	t.Parallel()
	var deleted atomic.Int32
	app := testkit.Start(t, testkit.Modules(tasks.Module), testkit.WithFx(fx.Invoke(func(bus *events.Bus) {
		events.Subscribe(bus, "test", func(_ context.Context, _ *gorm.DB, e tasks.TaskDeleted) error {
			deleted.Add(1)
			return nil
		})
	})))
	alice := app.SignIn(t, "alice@example.com")
	var ids []string
	for i := range 4 {
		ids = append(ids, createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("t%d", i)})["id"].(string))
	}
	res := app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+ids[0], nil).Expect(t, http.StatusOK).Data(t)
	until, err := time.Parse(time.RFC3339Nano, res["recoverable_until"].(string))
	if err != nil || !until.Equal(app.Clock.Now().Add(7*24*time.Hour)) || res["tombstone_id"] == nil {
		t.Fatalf("delete answer: %v", res)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+ids[0], nil).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+ids[0], nil).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	if n := app.Count(t, "tombstones", "entity_id = ? AND entity_type = ? AND snapshot LIKE ?", ids[0], "task", "%t0%"); n != 1 {
		t.Fatalf("tombstone rows = %d", n)
	}

	for _, id := range ids[1:] {
		app.Clock.Advance(time.Minute)
		app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK)
	}
	if n := app.Count(t, "tombstones", "user_id = ?", alice.ID); n != 3 {
		t.Fatalf("tombstones = %d, want 3", n)
	}
	if n := app.Count(t, "tombstones", "entity_id = ?", ids[0]); n != 0 {
		t.Fatal("the oldest tombstone was not purged by the fourth")
	}
	if deleted.Load() != 4 {
		t.Fatalf("TaskDeleted published %d times", deleted.Load())
	}
}

// TestActiveTaskCountFollowsEveryChange holds the stored counts (the active
// tasks the limit reads, and the tasks in each state of completed, hidden
// and archived that the list's totals read) to a count of the rows, and
// the list's totals under every combination of those filters to the rows
// they match, after every way a task changes state, also when the changes
// race.
func TestActiveTaskCountFollowsEveryChange(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	check := func(step string) {
		t.Helper()
		for _, u := range []*testkit.User{alice, bob} {
			var stored struct{ Active, S000, S001, S010, S011, S100, S101, S110, S111 int64 }
			if err := app.DB.Gorm.Raw("SELECT active, s000, s001, s010, s011, s100, s101, s110, s111 FROM task_counts WHERE user_id = ?", u.ID).
				Scan(&stored).Error; err != nil {
				t.Fatal(err)
			}
			if rows := app.Count(t, "tasks", "user_id = ? AND completed = ? AND archived = ?", u.ID, false, false); stored.Active != rows {
				t.Fatalf("%s: %s has %d active tasks, the stored count says %d", step, u.Email, rows, stored.Active)
			}
			states := []int64{stored.S000, stored.S001, stored.S010, stored.S011, stored.S100, stored.S101, stored.S110, stored.S111}
			for k, n := range states {
				if rows := app.Count(t, "tasks", "user_id = ? AND completed = ? AND hidden = ? AND archived = ?", u.ID,
					k&4 != 0, k&2 != 0, k&1 != 0); rows != n {
					t.Fatalf("%s: %s has %d tasks in state %03b, the stored count says %d", step, u.Email, rows, k, n)
				}
			}
			// Every combination of the three filters (each absent, true or
			// false) totals what it matches.
			for combo := range 27 {
				query, where, args := "", []string{"user_id = ?"}, []any{u.ID}
				for i, name := range []string{"completed", "hidden", "archived"} {
					switch combo / []int{1, 3, 9}[i] % 3 {
					case 1:
						query, where, args = query+"&"+name+"=true", append(where, name+" = ?"), append(args, true)
					case 2:
						query, where, args = query+"&"+name+"=false", append(where, name+" = ?"), append(args, false)
					}
				}
				var page struct {
					Pagination struct{ Total int64 } `json:"pagination"`
				}
				app.Do(t, u, http.MethodGet, "/api/v1/tasks?limit=1"+query, nil).Expect(t, http.StatusOK).Decode(t, &page)
				if rows := app.Count(t, "tasks", strings.Join(where, " AND "), args...); page.Pagination.Total != rows {
					t.Fatalf("%s: /tasks?%s totals %d, %d rows match", step, query, page.Pagination.Total, rows)
				}
			}
		}
	}
	check("no tasks yet")
	var ids []string
	for i := range 8 {
		ids = append(ids, createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("t%d", i)})["id"].(string))
	}
	createTask(t, app, bob, map[string]any{"title": "bob's"})
	check("created")

	patch := func(id string, body map[string]any) testkit.Racer {
		return testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPatch, Path: "/api/v1/tasks/" + id, Body: body}}
	}
	post := func(path string, body any) testkit.Racer {
		return testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost, Path: path, Body: body}}
	}
	racers := []testkit.Racer{
		post("/api/v1/tasks/"+ids[0]+"/complete", nil), post("/api/v1/tasks/"+ids[0]+"/complete", nil),
		patch(ids[1], map[string]any{"completed": true}), patch(ids[1], map[string]any{"archived": true}),
		patch(ids[2], map[string]any{"archived": true}), patch(ids[2], map[string]any{"title": "renamed"}),
		patch(ids[5], map[string]any{"hidden": true}), patch(ids[5], map[string]any{"completed": true}),
		patch(ids[6], map[string]any{"hidden": true}), patch(ids[6], map[string]any{"hidden": false}),
		{User: alice, Request: testkit.Request{Method: http.MethodDelete, Path: "/api/v1/tasks/" + ids[3]}},
		{User: alice, Request: testkit.Request{Method: http.MethodDelete, Path: "/api/v1/tasks/" + ids[3]}},
		post("/api/v1/tasks/"+ids[4]+"/complete", nil),
		{User: alice, Request: testkit.Request{Method: http.MethodDelete, Path: "/api/v1/tasks/" + ids[4]}},
	}
	for i := range 4 {
		racers = append(racers, post("/api/v1/tasks", map[string]any{"title": fmt.Sprintf("raced %d", i)}))
	}
	for _, r := range app.Burst(t, racers) {
		if r.Status >= 500 {
			t.Fatalf("a racing change failed: %d %s", r.Status, r.Body)
		}
	}
	check("racing changes")

	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+ids[0], map[string]any{"completed": false}).Expect(t, http.StatusOK)
	check("reopened")
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+ids[2], map[string]any{"archived": false}).Expect(t, http.StatusOK)
	check("un-archived")
	for _, ts := range app.Do(t, alice, http.MethodGet, "/api/v1/recovery", nil).Expect(t, http.StatusOK).List(t) {
		app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+ts["id"].(string)+"/recover", nil).Expect(t, http.StatusCreated)
	}
	check("recovered")
	tmpl := app.Do(t, alice, http.MethodPost, "/api/v1/templates", map[string]any{"title": "daily", "rrule": "FREQ=DAILY"}).
		Expect(t, http.StatusCreated).Data(t)
	app.Do(t, alice, http.MethodPost, "/api/v1/templates/"+tmpl["id"].(string)+"/instantiate", nil).Expect(t, http.StatusCreated)
	check("made from a template")
}

// TestCursorPagesWalkEveryOrder: for every sort order, pages taken with
// next_cursor (and with offset) give the tasks of one full page in the same
// order, each once, with due dates and priorities tied and missing; a
// cursor that is not one, or is another order's, is a 400.
func TestCursorPagesWalkEveryOrder(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(48 * time.Hour).UTC()
	for i := range 23 {
		body := map[string]any{"title": fmt.Sprintf("t%02d", i), "priority": []string{"low", "medium", "high"}[i%3]}
		if i%4 != 0 { // some without a due date, some sharing one
			body["due_date"] = due.Add(time.Duration(i%5) * time.Hour).Format(time.RFC3339)
		}
		createTask(t, app, alice, body)
		if i%2 == 0 {
			app.Clock.Advance(time.Second) // some created at the same instant
		}
	}
	type page struct {
		Data       []map[string]any `json:"data"`
		Pagination struct {
			Total      int64
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		} `json:"pagination"`
	}
	ids := func(p page) (out []string) {
		for _, d := range p.Data {
			out = append(out, d["id"].(string))
		}
		return out
	}
	for _, sort := range []string{"-created_at", "created_at", "due_date", "-due_date", "priority", "-priority"} {
		var all page
		app.Do(t, alice, http.MethodGet, "/api/v1/tasks?sort="+sort, nil).Expect(t, http.StatusOK).Decode(t, &all)
		want := ids(all)
		if len(want) != 23 || all.Pagination.NextCursor != nil {
			t.Fatalf("%s: %d tasks, cursor %v on the only page", sort, len(want), all.Pagination.NextCursor)
		}
		var byCursor, byOffset []string
		cursor := ""
		for n := 0; ; n++ {
			var p page
			path := "/api/v1/tasks?limit=5&sort=" + sort
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			app.Do(t, alice, http.MethodGet, path, nil).Expect(t, http.StatusOK).Decode(t, &p)
			byCursor = append(byCursor, ids(p)...)
			if p.Pagination.Total != 23 || p.Pagination.HasMore != (p.Pagination.NextCursor != nil) {
				t.Fatalf("%s page %d: %+v", sort, n, p.Pagination)
			}
			var o page
			app.Do(t, alice, http.MethodGet, fmt.Sprintf("/api/v1/tasks?limit=5&offset=%d&sort=%s", 5*n, sort), nil).
				Expect(t, http.StatusOK).Decode(t, &o)
			byOffset = append(byOffset, ids(o)...)
			if p.Pagination.NextCursor == nil {
				break
			}
			cursor = *p.Pagination.NextCursor
		}
		if strings.Join(byCursor, ",") != strings.Join(want, ",") || strings.Join(byOffset, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: by cursor %v, by offset %v, want %v", sort, byCursor, byOffset, want)
		}
	}
	var first page
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?limit=5", nil).Expect(t, http.StatusOK).Decode(t, &first)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?limit=5&sort=priority&cursor="+*first.Pagination.NextCursor, nil).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	for _, bad := range []string{"x", "eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjpbXX0", "%00"} {
		app.Do(t, alice, http.MethodGet, "/api/v1/tasks?cursor="+bad, nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
}
