package adversarial

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// Every test here releases its requests together (testkit.Burst) and then
// asserts on the rows: on PostgreSQL the requests really interleave, on
// SQLite they queue on the one writer; the answers must be the same.

func TestCompleteAndDeleteRacingOnOneTask(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	var earlier []string
	for range 2 {
		id := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "deleted before"})["id"].(string)
		ts := app.Do(t, u, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK).Data(t)
		earlier = append(earlier, ts["tombstone_id"].(string))
	}
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "contested"})["id"].(string)

	rs := app.Burst(t, append(racers(15, u, http.MethodPost, "/api/v1/tasks/"+task+"/complete", nil),
		racers(15, u, http.MethodDelete, "/api/v1/tasks/"+task, nil)...))

	expectStatuses(t, "complete", rs[:15], http.StatusOK, http.StatusNotFound)
	if n := expectStatuses(t, "delete", rs[15:], http.StatusOK, http.StatusNotFound)[http.StatusOK]; n != 1 {
		t.Fatalf("%d deletes answered 200, want exactly 1", n)
	}
	count(t, app, 0, "tasks", "id = ?", task)
	count(t, app, 1, "tombstones", "entity_id = ?", task)
	count(t, app, 3, "tombstones", "user_id = ?", u.ID)
	count(t, app, 2, "tombstones", "id IN ?", earlier) // the cap purged nothing of the user's
	count(t, app, 1, "activity_log", "entity_id = ? AND action = ?", task, "deleted")
	if n := app.Count(t, "activity_log", "entity_id = ? AND action = ?", task, "completed"); n > 1 {
		t.Fatalf("completed %d times", n)
	}
}

func TestNotePatchAndDeleteRacing(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	note := create(t, app, u, "/api/v1/notes", map[string]any{"content": "contested"})["id"].(string)

	rs := app.Burst(t, append(racersEach(10, u, http.MethodPatch, "/api/v1/notes/"+note,
		func(i int) any { return map[string]any{"content": title(i)} }),
		racers(10, u, http.MethodDelete, "/api/v1/notes/"+note, nil)...))

	expectStatuses(t, "patch", rs[:10], http.StatusOK, http.StatusNotFound)
	if n := expectStatuses(t, "delete", rs[10:], http.StatusOK, http.StatusNotFound)[http.StatusOK]; n != 1 {
		t.Fatalf("%d deletes answered 200, want exactly 1", n)
	}
	count(t, app, 0, "notes", "id = ?", note)
	count(t, app, 1, "tombstones", "entity_id = ?", note)
}

func TestTaskAndItsNoteDeletedTogether(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "with a note"})["id"].(string)
	note := create(t, app, u, "/api/v1/tasks/"+task+"/notes", map[string]any{"content": "attached"})["id"].(string)

	rs := app.Burst(t, append(racers(5, u, http.MethodDelete, "/api/v1/tasks/"+task, nil),
		racers(5, u, http.MethodDelete, "/api/v1/notes/"+note, nil)...))

	if n := expectStatuses(t, "task delete", rs[:5], http.StatusOK, http.StatusNotFound)[http.StatusOK]; n != 1 {
		t.Fatalf("%d task deletes answered 200, want 1", n)
	}
	noteDeleted := expectStatuses(t, "note delete", rs[5:], http.StatusOK, http.StatusNotFound)[http.StatusOK]
	if noteDeleted > 1 {
		t.Fatalf("%d note deletes answered 200", noteDeleted)
	}
	count(t, app, 1, "tombstones", "entity_id = ?", task)
	count(t, app, int64(noteDeleted), "tombstones", "entity_id = ?", note)

	// Everything recoverable comes back, and the note exists exactly once.
	for _, ts := range app.Do(t, u, http.MethodGet, "/api/v1/recovery", nil).Expect(t, http.StatusOK).List(t) {
		app.Do(t, u, http.MethodPost, "/api/v1/recovery/"+ts["id"].(string)+"/recover", nil).Expect(t, http.StatusCreated)
	}
	count(t, app, 1, "tasks", "id = ?", task)
	count(t, app, 1, "notes", "id = ?", note)
}

func TestSubtaskChangesRacingOnOneTask(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "four steps"})["id"].(string)
	var s []string
	for i := range 4 {
		s = append(s, create(t, app, u, "/api/v1/tasks/"+task+"/subtasks", map[string]any{"title": title(i)})["id"].(string))
	}
	var rs []testkit.Racer
	rs = append(rs, racers(4, u, http.MethodDelete, "/api/v1/subtasks/"+s[0], nil)...)
	rs = append(rs, racers(4, u, http.MethodDelete, "/api/v1/subtasks/"+s[1], nil)...)
	rs = append(rs, racers(4, u, http.MethodPost, "/api/v1/subtasks/"+s[2]+"/complete", nil)...)
	rs = append(rs, racers(4, u, http.MethodPut, "/api/v1/subtasks/"+s[3], map[string]any{"completed": true})...)
	rs = append(rs, racers(4, u, http.MethodPatch, "/api/v1/subtasks/"+s[3], map[string]any{"order_index": 0})...)
	rs = append(rs, racers(4, u, http.MethodPut, "/api/v1/tasks/"+task+"/subtasks/reorder",
		map[string]any{"subtask_ids": []string{s[3], s[2], s[1], s[0]}})...)

	got := app.Burst(t, rs)

	for i, del := range [][]*testkit.Response{got[0:4], got[4:8]} {
		if n := expectStatuses(t, "delete", del, http.StatusOK, http.StatusNotFound)[http.StatusOK]; n != 1 {
			t.Fatalf("subtask %d: %d deletes answered 200, want 1", i, n)
		}
	}
	expectStatuses(t, "complete and move", got[8:20], http.StatusOK)
	// A reorder that lost the race to a delete no longer lists a permutation.
	expectStatuses(t, "reorder", got[20:], http.StatusOK, http.StatusBadRequest)

	count(t, app, 2, "subtasks", "task_id = ?", task)
	count(t, app, 2, "subtasks", "task_id = ? AND completed = ?", task, true)
	detail := app.Do(t, u, http.MethodGet, "/api/v1/tasks/"+task, nil).Expect(t, http.StatusOK).Data(t)
	if detail["subtask_count"] != float64(2) || detail["subtask_completed_count"] != float64(2) {
		t.Fatalf("counters %v/%v, want 2/2", detail["subtask_completed_count"], detail["subtask_count"])
	}
	var order []float64
	for _, st := range detail["subtasks"].([]any) {
		order = append(order, st.(map[string]any)["order_index"].(float64))
	}
	if !slices.Equal(order, []float64{0, 1}) {
		t.Fatalf("order_index %v, want [0 1]", order)
	}
}

// TestConcurrentNoteCreatesStopAtTheLimit: the notes limit reads the count
// row_counts keeps (not a count of the user's notes) under the user's notes
// lock; of 16 creates released together with 3 notes already there, exactly
// the free limit's 10 notes exist afterwards, and the kept count agrees.
func TestConcurrentNoteCreatesStopAtTheLimit(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	for i := range 3 {
		create(t, app, u, "/api/v1/notes", map[string]any{"content": title(i)})
	}
	rs := app.Burst(t, racersEach(16, u, http.MethodPost, "/api/v1/notes",
		func(i int) any { return map[string]any{"content": title(i + 3)} }))
	if n := expectStatuses(t, "create", rs, http.StatusCreated, http.StatusConflict)[http.StatusCreated]; n != 7 {
		t.Fatalf("%d notes created beside 3, want 7 (the free limit of 10)", n)
	}
	count(t, app, 10, "notes", "user_id = ?", u.ID)
	checkKept(t, app, "notes raced")
}

func TestConcurrentSubtaskAddsStopAtTheLimit(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "steps"})["id"].(string)

	rs := app.Burst(t, racersEach(10, u, http.MethodPost, "/api/v1/tasks/"+task+"/subtasks",
		func(i int) any { return map[string]any{"title": title(i), "order_index": 0} }))

	if n := expectStatuses(t, "add", rs, http.StatusCreated, http.StatusConflict)[http.StatusCreated]; n != 4 {
		t.Fatalf("%d subtasks created, want the free limit of 4", n)
	}
	count(t, app, 4, "subtasks", "task_id = ?", task)
	count(t, app, 1, "tasks", "id = ? AND subtask_count = ?", task, 4)
	var idx []int
	app.DB.Gorm.Table("subtasks").Where("task_id = ?", task).Order("order_index").Pluck("order_index", &idx)
	if !slices.Equal(idx, []int{0, 1, 2, 3}) {
		t.Fatalf("order_index %v", idx)
	}
}

func TestPatchWithoutVersionLastWriteWins(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "edited by many"})["id"].(string)
	note := create(t, app, u, "/api/v1/notes", map[string]any{"content": "edited by many"})["id"].(string)
	const n = 40

	rs := app.Burst(t, append(racersEach(n, u, http.MethodPatch, "/api/v1/tasks/"+task,
		func(i int) any { return map[string]any{"title": title(i)} }),
		racersEach(n, u, http.MethodPatch, "/api/v1/notes/"+note,
			func(i int) any { return map[string]any{"content": title(i)} })...))

	expectStatuses(t, "patch", rs, http.StatusOK)
	count(t, app, 1, "tasks", "id = ? AND version = ?", task, n+1)
	count(t, app, 1, "notes", "id = ? AND version = ?", note, n+1)
	count(t, app, n, "activity_log", "entity_id = ? AND action = ?", task, "updated")
}

func TestConcurrentCompletesCountOnce(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "done once"})["id"].(string)

	rs := app.Burst(t, append(racers(5, u, http.MethodPost, "/api/v1/tasks/"+task+"/complete", nil),
		append(racers(5, u, http.MethodPost, "/api/v1/tasks/"+task+"/force-complete", nil),
			racers(5, u, http.MethodPatch, "/api/v1/tasks/"+task, map[string]any{"completed": true})...)...))

	expectStatuses(t, "complete", rs, http.StatusOK)
	count(t, app, 1, "activity_log", "entity_id = ? AND action = ?", task, "completed")
	count(t, app, 1, "tasks", "id = ? AND version = ?", task, 2)
}

func TestConcurrentGenerateFromOneTemplate(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	tpl := create(t, app, u, "/api/v1/templates", map[string]any{"title": "daily", "rrule": "FREQ=DAILY",
		"subtask_titles": []string{"a", "b"}})["id"].(string)
	const n = 10

	rs := app.Burst(t, append(racers(n/2, u, http.MethodPost, "/api/v1/templates/"+tpl+"/generate", nil),
		racers(n/2, u, http.MethodPost, "/api/v1/templates/"+tpl+"/instantiate", nil)...))

	expectStatuses(t, "generate", rs, http.StatusCreated)
	count(t, app, n, "tasks", "template_id = ?", tpl)
	var dues []time.Time
	app.DB.Gorm.Table("tasks").Where("template_id = ?", tpl).Distinct("due_date").Pluck("due_date", &dues)
	if len(dues) != n {
		t.Fatalf("%d distinct due dates for %d occurrences", len(dues), n)
	}
	count(t, app, 2*n, "subtasks", "task_id IN (SELECT id FROM tasks WHERE template_id = ?)", tpl)
}

func TestRecoverRacing(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "back once"})["id"].(string)
	create(t, app, u, "/api/v1/tasks/"+task+"/subtasks", map[string]any{"title": "step"})
	ts := app.Do(t, u, http.MethodDelete, "/api/v1/tasks/"+task, nil).Expect(t, http.StatusOK).Data(t)["tombstone_id"].(string)

	rs := app.Burst(t, append(racers(5, u, http.MethodPost, "/api/v1/recovery/"+ts+"/recover", nil),
		racers(5, u, http.MethodPost, "/api/v1/tasks/recover/"+ts, nil)...))

	if n := expectStatuses(t, "recover", rs, http.StatusCreated, http.StatusNotFound)[http.StatusCreated]; n != 1 {
		t.Fatalf("%d recoveries answered 201, want 1", n)
	}
	count(t, app, 1, "tasks", "id = ?", task)
	count(t, app, 1, "subtasks", "task_id = ?", task)
	count(t, app, 0, "tombstones", "id = ?", ts)
}

func TestReminderChangesRacing(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	due := app.Clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": "reminded", "due_date": due})["id"].(string)
	rem := create(t, app, u, "/api/v1/reminders", map[string]any{"task_id": task, "type": "before",
		"offset_minutes": -15})["id"].(string)

	var rs []testkit.Racer
	rs = append(rs, racers(5, u, http.MethodDelete, "/api/v1/reminders/"+rem, nil)...)
	rs = append(rs, racersEach(5, u, http.MethodPatch, "/api/v1/reminders/"+rem,
		func(i int) any { return map[string]any{"offset_minutes": -(i + 1) * 10} })...)
	rs = append(rs, racers(5, u, http.MethodPost, "/api/v1/reminders/"+rem+"/fire", nil)...)
	rs = append(rs, racersEach(5, u, http.MethodPost, "/api/v1/tasks/"+task+"/reminders",
		func(i int) any { return map[string]any{"type": "after", "offset_minutes": i + 1} })...)

	got := app.Burst(t, rs)

	if n := expectStatuses(t, "delete", got[:5], http.StatusOK, http.StatusNotFound)[http.StatusOK]; n != 1 {
		t.Fatalf("%d deletes answered 200, want 1", n)
	}
	expectStatuses(t, "patch and fire", got[5:15], http.StatusOK, http.StatusNotFound)
	// One reminder existed and is gone: four of the five new ones fit under the limit of 5.
	if n := expectStatuses(t, "add", got[15:], http.StatusCreated, http.StatusConflict)[http.StatusCreated]; n < 4 {
		t.Fatalf("only %d reminders added", n)
	}
	count(t, app, 0, "reminders", "id = ?", rem)
	if n := app.Count(t, "reminders", "task_id = ?", task); n > 5 {
		t.Fatalf("%d reminders on one task, limit 5", n)
	}
}

func TestTwoTabsRefreshingAtOnceStaySignedIn(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")

	rs := app.Burst(t, racers(20, nil, http.MethodPost, "/api/v1/auth/refresh",
		map[string]any{"refresh_token": u.RefreshToken}))

	expectStatuses(t, "refresh", rs, http.StatusOK)
	var tabs []*testkit.User
	for _, r := range rs {
		var pair struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		r.Decode(t, &pair)
		tabs = append(tabs, &testkit.User{ID: u.ID, AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken})
	}
	for _, tab := range tabs {
		app.Do(t, tab, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	}

	// Past the grace window, the spent token is a stolen one: the family ends.
	app.Clock.Advance(11 * time.Second)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": u.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	app.Do(t, tabs[0], http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": tabs[1].RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
}

func TestConcurrentFocusStartsLeaveOneRunning(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	var rs []testkit.Racer
	for i := range 8 {
		task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": title(i)})["id"].(string)
		rs = append(rs, testkit.Racer{User: u, Request: testkit.Request{Method: http.MethodPost,
			Path: "/api/v1/focus-sessions", Body: map[string]any{"task_id": task}}})
	}
	expectStatuses(t, "start", app.Burst(t, rs), http.StatusCreated)
	count(t, app, 1, "focus_sessions", "user_id = ? AND ended_at IS NULL", u.ID)
	count(t, app, 8, "focus_sessions", "user_id = ?", u.ID)
}

func TestConcurrentCompletionsAreEachCounted(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "alice@example.com")
	var rs []testkit.Racer
	for i := range 10 {
		task := create(t, app, u, "/api/v1/tasks", map[string]any{"title": title(i)})["id"].(string)
		rs = append(rs, racers(2, u, http.MethodPost, "/api/v1/tasks/"+task+"/complete", nil)...)
	}
	got := app.Burst(t, rs)
	expectStatuses(t, "complete", got, http.StatusOK)
	count(t, app, 1, "user_stats", "user_id = ? AND lifetime_tasks_completed = ?", u.ID, 10)
	count(t, app, 1, "user_achievements", "user_id = ? AND achievement_code = ?", u.ID, "tasks_5")
	count(t, app, 1, "notifications", "user_id = ? AND type = ?", u.ID, "achievement")
}
