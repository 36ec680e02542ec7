package gamification_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/gamification"
	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/test/testkit"
)

func start(t *testing.T, opts ...testkit.Option) *testkit.App {
	t.Helper()
	return testkit.Start(t, append([]testkit.Option{testkit.Modules(gamification.Module, notifications.Module,
		activity.Module)}, opts...)...)
}

func createTask(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) string {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks", body).Expect(t, http.StatusCreated).Data(t)["id"].(string)
}

func complete(t *testing.T, app *testkit.App, u *testkit.User, id string) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK).Data(t)
}

type profile struct {
	Stats struct {
		Lifetime         int     `json:"lifetime_tasks_completed"`
		Current          int     `json:"current_streak"`
		Longest          int     `json:"longest_streak"`
		Last             *string `json:"last_completion_date"`
		FocusCompletions int     `json:"focus_completions"`
	} `json:"stats"`
	Unlocked []string `json:"unlocked"`
	Progress []struct {
		ID       string `json:"id"`
		Current  int    `json:"current"`
		Unlocked bool   `json:"unlocked"`
	} `json:"progress"`
	Limits struct {
		MaxTasks int `json:"max_tasks"`
		MaxNotes int `json:"max_notes"`
		Credits  int `json:"daily_ai_credits"`
	} `json:"effective_limits"`
}

func me(t *testing.T, app *testkit.App, u *testkit.User) profile {
	t.Helper()
	var env struct {
		Data profile `json:"data"`
	}
	app.Do(t, u, http.MethodGet, "/api/v1/achievements/me", nil).Expect(t, http.StatusOK).Decode(t, &env)
	return env.Data
}

// runJob runs a periodic job now and waits for it to finish.
func runJob(t *testing.T, app *testkit.App, args interface{ Kind() string }) {
	t.Helper()
	res, err := app.Queue.Insert(context.Background(), args, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, args.Kind(), func() bool {
		return app.Count(t, "river_job", "id = ? AND state = ?", res.Job.ID, "completed") == 1
	})
}

func TestCatalogComesFromConfiguration(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	list := app.Do(t, alice, http.MethodGet, "/api/v1/achievements", nil).Expect(t, http.StatusOK).JSON(t)["data"].([]any)
	if len(list) != 11 {
		t.Fatalf("%d achievements, want the catalog's 11", len(list))
	}
	first := list[0].(map[string]any)
	if first["id"] != "tasks_5" || first["name"] != "Task Starter" || first["category"] != "tasks" ||
		first["threshold"] != float64(5) || first["perk_type"] != "max_tasks" || first["perk_value"] != float64(15) ||
		first["message"] == "" {
		t.Fatalf("tasks_5: %v", first)
	}
}

func TestFiveCompletionsUnlockTaskStarterOnceAndRaiseTheLimit(t *testing.T) {
	t.Parallel()
	app := start(t, testkit.WithConfig("limits.free.max_tasks", 6))
	alice := app.SignIn(t, "alice@example.com")
	if got := me(t, app, alice); got.Limits.MaxTasks != 6 || len(got.Unlocked) != 0 || got.Stats.Lifetime != 0 {
		t.Fatalf("a new user: %+v", got)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("t%d", i)}))
	}
	for i, id := range ids[:4] {
		if got := complete(t, app, alice, id); len(got["unlocked_achievements"].([]any)) != 0 || got["streak"] != float64(1) {
			t.Fatalf("completion %d: %v", i, got)
		}
	}
	fifth := complete(t, app, alice, ids[4])
	unlocked := fifth["unlocked_achievements"].([]any)
	if len(unlocked) != 1 {
		t.Fatalf("fifth completion unlocked %v", unlocked)
	}
	u := unlocked[0].(map[string]any)
	if u["achievement_id"] != "tasks_5" || u["achievement_name"] != "Task Starter" ||
		u["perk"].(map[string]any)["type"] != "max_tasks" || u["perk"].(map[string]any)["value"] != float64(15) {
		t.Fatalf("unlocked %v", u)
	}
	got := me(t, app, alice)
	if !slices.Equal(got.Unlocked, []string{"tasks_5"}) || got.Limits.MaxTasks != 21 || got.Stats.Lifetime != 5 {
		t.Fatalf("after five: %+v", got)
	}
	// The perk raises the limit the tasks module checks: 6 base + 15.
	for i := range 21 {
		createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("more %d", i)})
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "one too many"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")

	// Unlocked once: another completion unlocks nothing, one notification.
	if again := complete(t, app, alice, createTaskAt(t, app, alice)); len(again["unlocked_achievements"].([]any)) != 0 {
		t.Fatalf("unlocked again: %v", again)
	}
	if n := app.Count(t, "notifications", "user_id = ? AND type = ?", alice.ID, "achievement"); n != 1 {
		t.Fatalf("%d achievement notifications", n)
	}
	if n := app.Count(t, "activity_log", "user_id = ? AND action = ?", alice.ID, "unlocked"); n != 1 {
		t.Fatalf("%d unlock activity rows", n)
	}
	bob := app.SignIn(t, "bob@example.com")
	app.Do(t, bob, http.MethodGet, "/api/v1/users/"+alice.ID.String()+"/achievements", nil).
		ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, alice, http.MethodGet, "/api/v1/users/"+alice.ID.String()+"/achievements", nil).Expect(t, http.StatusOK)
}

// createTaskAt makes room first (completing frees a slot) and creates one.
func createTaskAt(t *testing.T, app *testkit.App, u *testkit.User) string {
	t.Helper()
	list := app.Do(t, u, http.MethodGet, "/api/v1/tasks?completed=false&limit=1", nil).Expect(t, http.StatusOK).List(t)
	complete(t, app, u, list[0]["id"].(string))
	return createTask(t, app, u, map[string]any{"title": "room made"})
}

func TestReopeningAndCompletingAgainTheSameDayCountsOnce(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "again"})
	complete(t, app, alice, id)
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"completed": false}).Expect(t, http.StatusOK)
	complete(t, app, alice, id)
	app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK)
	if got := me(t, app, alice); got.Stats.Lifetime != 1 || got.Stats.Current != 1 {
		t.Fatalf("after reopen + complete + delete: %+v", got.Stats)
	}
}

// A streak counts calendar days in the user's zone: 23:30 and 00:30 local
// are two days even when they are one UTC day, across a DST change too.
func TestStreakFollowsTheUsersZoneAcrossDSTAndAZoneChange(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodPatch, "/api/v1/users/me", map[string]any{"timezone": "Europe/Berlin"}).Expect(t, http.StatusOK)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// Saturday 28 March 2026, 23:30 in Berlin (CET, UTC+1); the clocks go
	// forward that night.
	app.Clock.Set(time.Date(2026, 3, 28, 23, 30, 0, 0, berlin))
	alice = app.SignIn(t, "alice@example.com")
	days := []time.Duration{0, 1 * time.Hour, 24 * time.Hour} // 23:30 Sat, 01:30 Sun (CEST), then Monday
	for i, step := range days {
		app.Clock.Advance(step)
		alice = app.SignIn(t, "alice@example.com") // access tokens live an hour
		complete(t, app, alice, createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("d%d", i)}))
	}
	got := me(t, app, alice)
	if got.Stats.Current != 3 || got.Stats.Longest != 3 || *got.Stats.Last != "2026-03-30" {
		t.Fatalf("streak over Sat, Sun (DST) and Mon: %+v", got.Stats)
	}

	// Moving to New York, where it is still Sunday evening: the streak
	// stands (Monday's completion is counted already).
	app.Do(t, alice, http.MethodPatch, "/api/v1/users/me", map[string]any{"timezone": "America/New_York"}).Expect(t, http.StatusOK)
	alice = app.SignIn(t, "alice@example.com")
	runJob(t, app, gamification.StreakCalculateArgs{})
	if got := me(t, app, alice); got.Stats.Current != 3 {
		t.Fatalf("the zone change broke the streak: %+v", got.Stats)
	}
	// Wednesday evening in New York with nothing on Tuesday: the job breaks
	// it, and running it again the same day changes nothing.
	app.Clock.Advance(72 * time.Hour)
	alice = app.SignIn(t, "alice@example.com")
	runJob(t, app, gamification.StreakCalculateArgs{})
	got = me(t, app, alice)
	if got.Stats.Current != 0 || got.Stats.Longest != 3 || got.Stats.Lifetime != 3 {
		t.Fatalf("after a missed day: %+v", got.Stats)
	}
	var checked string
	app.DB.Gorm.Table("user_stats").Where("user_id = ?", alice.ID).Select("version").Scan(&checked)
	runJob(t, app, gamification.StreakCalculateArgs{})
	var again string
	app.DB.Gorm.Table("user_stats").Where("user_id = ?", alice.ID).Select("version").Scan(&again)
	if again != checked {
		t.Fatalf("the job changed the stats again the same day (version %s → %s)", checked, again)
	}
	// Completing today starts again at 1.
	complete(t, app, alice, createTask(t, app, alice, map[string]any{"title": "fresh start"}))
	if got := me(t, app, alice); got.Stats.Current != 1 || got.Stats.Longest != 3 {
		t.Fatalf("a new streak: %+v", got.Stats)
	}
}

func TestStreakOfSevenUnlocksDailyCredits(t *testing.T) {
	t.Parallel()
	app := start(t, testkit.Modules(billing.Module))
	alice := app.SignIn(t, "alice@example.com")
	var last map[string]any
	for d := range 7 {
		if d > 0 {
			app.Clock.Advance(24 * time.Hour)
			alice = app.SignIn(t, "alice@example.com")
		}
		last = complete(t, app, alice, createTask(t, app, alice, map[string]any{"title": fmt.Sprintf("day %d", d)}))
	}
	if last["streak"] != float64(7) {
		t.Fatalf("streak %v", last["streak"])
	}
	got := me(t, app, alice)
	if !slices.Contains(got.Unlocked, "streak_7") || got.Limits.Credits != 13 {
		t.Fatalf("after a week: %+v", got)
	}
	// The perk reaches the billing module's next daily grant.
	app.Clock.Advance(24 * time.Hour)
	alice = app.SignIn(t, "alice@example.com")
	b := app.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t)
	if b["daily"] != float64(13) {
		t.Fatalf("daily credits with the perk: %v", b)
	}
}

func TestFocusSessions(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	a := createTask(t, app, alice, map[string]any{"title": "estimated", "estimated_duration": 60})
	b := createTask(t, app, alice, map[string]any{"title": "other"})

	app.Do(t, alice, http.MethodGet, "/api/v1/focus-sessions/active", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	first := app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": a}).
		Expect(t, http.StatusCreated).Data(t)
	if first["ended_at"] != nil || first["duration_seconds"] != nil || first["task_id"] != a {
		t.Fatalf("started: %v", first)
	}
	app.Clock.Advance(20 * time.Minute)
	// Starting another ends the first: its 20 minutes go to task a.
	second := app.Do(t, alice, http.MethodPost, "/api/v1/focus/start", map[string]any{"task_id": b}).
		Expect(t, http.StatusCreated).Data(t)
	if n := app.Count(t, "focus_sessions", "user_id = ? AND ended_at IS NULL", alice.ID); n != 1 {
		t.Fatalf("%d running sessions", n)
	}
	task := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+a, nil).Data(t)
	if task["focus_time_seconds"] != float64(1200) {
		t.Fatalf("task a focus time %v", task["focus_time_seconds"])
	}
	active := app.Do(t, alice, http.MethodGet, "/api/v1/focus/active", nil).Expect(t, http.StatusOK).Data(t)
	if active["id"] != second["id"] {
		t.Fatalf("active %v", active)
	}
	app.Clock.Advance(5 * time.Minute)
	ended := app.Do(t, alice, http.MethodPost, "/api/v1/focus/stop", nil).Expect(t, http.StatusOK).Data(t)
	if ended["duration_seconds"] != float64(300) || ended["ended_at"] == nil {
		t.Fatalf("ended %v", ended)
	}
	again := app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions/"+second["id"].(string)+"/end", nil).
		Expect(t, http.StatusOK).Data(t)
	if again["duration_seconds"] != float64(300) {
		t.Fatalf("ending twice changed it: %v", again)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/focus/end", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if list := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+a+"/focus-sessions", nil).Expect(t, http.StatusOK).List(t); len(list) != 1 {
		t.Fatalf("sessions of a: %v", list)
	}
	if list := app.Do(t, alice, http.MethodGet, "/api/v1/focus-sessions", nil).Expect(t, http.StatusOK).List(t); len(list) != 2 {
		t.Fatalf("sessions: %v", list)
	}

	// The 50 % rule: task a has 20 of 60 estimated minutes; 10 more in a
	// running session make half, and completing it counts a focus completion.
	app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": a}).Expect(t, http.StatusCreated)
	app.Clock.Advance(9 * time.Minute)
	c := createTask(t, app, alice, map[string]any{"title": "too little", "estimated_duration": 60})
	app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": c}).Expect(t, http.StatusCreated)
	app.Clock.Advance(29 * time.Minute)
	alice = app.SignIn(t, "alice@example.com") // access tokens live an hour
	complete(t, app, alice, c)                 // 29 of 60 minutes: not enough
	if got := me(t, app, alice); got.Stats.FocusCompletions != 0 {
		t.Fatalf("29 of 60 minutes counted: %+v", got.Stats)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": a}).Expect(t, http.StatusCreated)
	app.Clock.Advance(10 * time.Minute)
	complete(t, app, alice, a) // 20 + 9 + 10 = 39 of 60 minutes
	if got := me(t, app, alice); got.Stats.FocusCompletions != 1 {
		t.Fatalf("focus completions %+v", got.Stats)
	}

	// Another user's session or task stays out of reach.
	bob := app.SignIn(t, "bob@example.com")
	app.Do(t, bob, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": a}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	app.Do(t, bob, http.MethodPost, "/api/v1/focus-sessions/"+first["id"].(string)+"/end", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestFocusSessionsEndByThemselvesAfterTheMaximum(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "long"})
	app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": id}).Expect(t, http.StatusCreated)
	app.Clock.Advance(239 * time.Minute)
	runJob(t, app, gamification.FocusAutoEndArgs{})
	if n := app.Count(t, "focus_sessions", "ended_at IS NULL"); n != 1 {
		t.Fatal("a session ended before the maximum")
	}
	app.Clock.Advance(5 * time.Hour)
	alice = app.SignIn(t, "alice@example.com")
	runJob(t, app, gamification.FocusAutoEndArgs{})
	if n := app.Count(t, "focus_sessions", "ended_at IS NULL"); n != 0 {
		t.Fatal("a session outlived the maximum")
	}
	task := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Data(t)
	if task["focus_time_seconds"] != float64(240*60) {
		t.Fatalf("focus time %v, want the 240-minute maximum", task["focus_time_seconds"])
	}
}

// TestANewUsersActivityHasOnlyTheClientsEntityTypes: the sign-up credits
// are not activity, and a focus session is logged under its task.
func TestANewUsersActivityHasOnlyTheClientsEntityTypes(t *testing.T) {
	t.Parallel()
	app := start(t)
	alice := app.SignIn(t, "alice@example.com")
	task := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Write"}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	fs := app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": task}).Expect(t, http.StatusCreated).Data(t)
	app.Clock.Advance(90 * time.Second)
	app.Do(t, alice, http.MethodPost, "/api/v1/focus-sessions/"+fs["id"].(string)+"/end", nil).Expect(t, http.StatusOK)
	list := app.Do(t, alice, http.MethodGet, "/api/v1/activity", nil).Expect(t, http.StatusOK).List(t)
	actions := map[string]map[string]any{}
	for _, e := range list {
		if !slices.Contains(activity.EntityTypes, e["entity_type"].(string)) {
			t.Fatalf("entity type %v in %v", e["entity_type"], e)
		}
		actions[e["action"].(string)] = e
	}
	ended := actions["focus_ended"]
	if actions["focus_started"] == nil || ended == nil || ended["entity_type"] != "task" || ended["entity_id"] != task ||
		ended["extra_data"].(map[string]any)["session_id"] != fs["id"] || ended["extra_data"].(map[string]any)["duration_seconds"] != float64(90) {
		t.Fatalf("focus activity: %v", list)
	}
}
