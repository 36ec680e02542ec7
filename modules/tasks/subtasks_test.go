package tasks_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/test/testkit"
)

func addSubtask(t *testing.T, app *testkit.App, u *testkit.User, taskID string, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks/"+taskID+"/subtasks", body).Expect(t, http.StatusCreated).Data(t)
}

// order returns the titles of a task's subtasks as listed, and checks that
// order_index runs 0..n-1.
func order(t *testing.T, app *testkit.App, u *testkit.User, taskID string) string {
	t.Helper()
	var env struct {
		Data []struct {
			Title      string `json:"title"`
			OrderIndex int    `json:"order_index"`
		} `json:"data"`
	}
	app.Do(t, u, http.MethodGet, "/api/v1/tasks/"+taskID+"/subtasks", nil).Expect(t, http.StatusOK).Decode(t, &env)
	var titles []string
	for i, st := range env.Data {
		if st.OrderIndex != i {
			t.Fatalf("order_index %d at position %d", st.OrderIndex, i)
		}
		titles = append(titles, st.Title)
	}
	return strings.Join(titles, ",")
}

func counts(t *testing.T, app *testkit.App, u *testkit.User, taskID string) (float64, float64, map[string]any) {
	t.Helper()
	task := app.Do(t, u, http.MethodGet, "/api/v1/tasks/"+taskID, nil).Expect(t, http.StatusOK).Data(t)
	return task["subtask_count"].(float64), task["subtask_completed_count"].(float64), task
}

func TestSubtaskLimitPerTaskFollowsTier(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	for i := range 4 {
		addSubtask(t, app, alice, id, map[string]any{"title": fmt.Sprintf("s%d", i)})
	}
	res := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", map[string]any{"title": "fifth"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	if !strings.Contains(string(res.Body), "max_subtasks") {
		t.Fatalf("message: %s", res.Body)
	}
	// Completed subtasks still count.
	first := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id+"/subtasks", nil).JSON(t)["data"].([]any)[0].(map[string]any)
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+first["id"].(string)+"/complete", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", map[string]any{"title": "fifth"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")

	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	for i := 4; i < 10; i++ {
		addSubtask(t, app, alice, id, map[string]any{"title": fmt.Sprintf("s%d", i)})
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", map[string]any{"title": "eleventh"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	if n, _, _ := counts(t, app, alice, id); n != 10 {
		t.Fatalf("subtask_count %v", n)
	}
}

func TestSubtaskOrder(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	ids := map[string]string{}
	for _, title := range []string{"a", "b", "c"} {
		ids[title] = addSubtask(t, app, alice, id, map[string]any{"title": title})["id"].(string)
	}
	if got := order(t, app, alice, id); got != "a,b,c" {
		t.Fatalf("new subtasks go last: %s", got)
	}
	ids["first"] = addSubtask(t, app, alice, id, map[string]any{"title": "first", "order_index": 0})["id"].(string)
	ids["mid"] = addSubtask(t, app, alice, id, map[string]any{"title": "mid", "order_index": 2})["id"].(string)
	ids["far"] = addSubtask(t, app, alice, id, map[string]any{"title": "far", "order_index": 99})["id"].(string)
	if got := order(t, app, alice, id); got != "first,a,mid,b,c,far" {
		t.Fatalf("insert by order_index: %s", got)
	}
	app.Do(t, alice, http.MethodDelete, "/api/v1/subtasks/"+ids["mid"], nil).Expect(t, http.StatusOK)
	if got := order(t, app, alice, id); got != "first,a,b,c,far" {
		t.Fatalf("delete closes the gap: %s", got)
	}
	app.Do(t, alice, http.MethodPatch, "/api/v1/subtasks/"+ids["far"], map[string]any{"order_index": 1}).Expect(t, http.StatusOK)
	if got := order(t, app, alice, id); got != "first,far,a,b,c" {
		t.Fatalf("move by order_index: %s", got)
	}

	perm := []string{ids["c"], ids["b"], ids["a"], ids["far"], ids["first"]}
	res := app.Do(t, alice, http.MethodPut, "/api/v1/tasks/"+id+"/subtasks/reorder", map[string]any{"subtask_ids": perm}).
		Expect(t, http.StatusOK)
	var env struct {
		Data []struct {
			ID         string `json:"id"`
			OrderIndex int    `json:"order_index"`
		} `json:"data"`
	}
	res.Decode(t, &env)
	for i, st := range env.Data {
		if st.ID != perm[i] || st.OrderIndex != i {
			t.Fatalf("reorder answer: %s", res.Body)
		}
	}
	if got := order(t, app, alice, id); got != "c,b,a,far,first" {
		t.Fatalf("reorder: %s", got)
	}
	other := createTask(t, app, alice, map[string]any{"title": "other"})["id"].(string)
	foreign := addSubtask(t, app, alice, other, map[string]any{"title": "x"})["id"].(string)
	for name, bad := range map[string][]string{
		"missing one": perm[:4],
		"duplicate":   {perm[0], perm[0], perm[1], perm[2], perm[3]},
		"foreign":     {perm[0], perm[1], perm[2], perm[3], foreign},
		"extra":       append(append([]string{}, perm...), foreign),
		"not uuids":   {"a", "b", "c", "d", "e"},
	} {
		t.Run(name, func(t *testing.T) {
			app.Do(t, alice, http.MethodPut, "/api/v1/tasks/"+id+"/subtasks/reorder", map[string]any{"subtask_ids": bad}).
				ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
		})
	}
	if got := order(t, app, alice, id); got != "c,b,a,far,first" {
		t.Fatalf("a refused reorder changed the order: %s", got)
	}
	// The task detail lists them in order too.
	detail := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Data(t)["subtasks"].([]any)
	if detail[0].(map[string]any)["title"] != "c" || len(detail) != 5 {
		t.Fatalf("detail subtasks: %v", detail)
	}
}

func TestLastSubtaskAutoCompletesTheTask(t *testing.T) {
	t.Parallel()
	c := &completions{}
	app := testkit.Start(t, testkit.Modules(tasks.Module), testkit.WithFx(subscribeCompletions(c)))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	a := addSubtask(t, app, alice, id, map[string]any{"title": "a"})["id"].(string)
	b := addSubtask(t, app, alice, id, map[string]any{"title": "b"})["id"].(string)

	// The live client completes subtasks with PUT {"completed": true}.
	done := app.Do(t, alice, http.MethodPut, "/api/v1/subtasks/"+a, map[string]any{"completed": true}).Expect(t, http.StatusOK).Data(t)
	if done["completed"] != true || done["completed_at"] == nil {
		t.Fatalf("subtask: %v", done)
	}
	if n, m, task := counts(t, app, alice, id); n != 2 || m != 1 || task["completed"] != false {
		t.Fatalf("after one of two: %v %v %v", n, m, task["completed"])
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+b+"/complete", nil).Expect(t, http.StatusOK)
	n, m, task := counts(t, app, alice, id)
	if n != 2 || m != 2 || task["completed"] != true || task["completed_by"] != "auto" {
		t.Fatalf("auto-completion: %v %v %v", n, m, task)
	}
	if c.n.Load() != 1 {
		t.Fatalf("TaskCompleted published %d times", c.n.Load())
	}
	// Completing an already complete subtask changes nothing.
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+b+"/complete", nil).Expect(t, http.StatusOK)
	// Reopening a subtask never reopens the task.
	app.Do(t, alice, http.MethodPut, "/api/v1/subtasks/"+a, map[string]any{"completed": false}).Expect(t, http.StatusOK)
	if _, m, task := counts(t, app, alice, id); m != 1 || task["completed"] != true {
		t.Fatalf("reopening a subtask reopened the task: %v", task)
	}
	if c.n.Load() != 1 {
		t.Fatalf("TaskCompleted published %d times", c.n.Load())
	}
}

func TestDeletingTheOpenSubtaskNeverCompletesTheTask(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	a := addSubtask(t, app, alice, id, map[string]any{"title": "a"})["id"].(string)
	b := addSubtask(t, app, alice, id, map[string]any{"title": "b"})["id"].(string)
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+a+"/complete", nil).Expect(t, http.StatusOK)
	res := app.Do(t, alice, http.MethodDelete, "/api/v1/subtasks/"+b, nil).Expect(t, http.StatusOK).Data(t)
	if res["id"] != b || res["deleted"] != true {
		t.Fatalf("delete answer: %v", res)
	}
	if n, m, task := counts(t, app, alice, id); n != 1 || m != 1 || task["completed"] != false {
		t.Fatalf("after delete: %v %v %v", n, m, task["completed"])
	}
}

func TestForceCompleteCompletesOpenSubtasks(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	for _, title := range []string{"a", "b", "c"} {
		addSubtask(t, app, alice, id, map[string]any{"title": title})
	}
	task := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/force-complete", map[string]any{"version": 1}).
		Expect(t, http.StatusOK).Data(t)["task"].(map[string]any)
	if task["completed_by"] != "force" || task["subtask_completed_count"] != float64(3) {
		t.Fatalf("force-complete: %v", task)
	}
	for _, st := range app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id+"/subtasks", nil).JSON(t)["data"].([]any) {
		if st.(map[string]any)["completed"] != true {
			t.Fatalf("open subtask left: %v", st)
		}
	}
}

func TestSubtasksAreScopedAndFollowTheTaskState(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	id := createTask(t, app, alice, map[string]any{"title": "t"})["id"].(string)
	st := addSubtask(t, app, alice, id, map[string]any{"title": "a"})["id"].(string)

	app.Do(t, bob, http.MethodGet, "/api/v1/tasks/"+id+"/subtasks", nil).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	app.Do(t, bob, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", map[string]any{"title": "x"}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		app.Do(t, bob, m, "/api/v1/subtasks/"+st, map[string]any{"title": "x"}).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	}
	app.Do(t, bob, http.MethodPost, "/api/v1/subtasks/"+st+"/complete", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, bob, http.MethodDelete, "/api/v1/subtasks/"+st, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")

	for _, bad := range []map[string]any{{"title": ""}, {"title": "  "}, {"title": strings.Repeat("x", 201)}, {"order_index": -1}} {
		app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", bad).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}

	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"archived": true}).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", map[string]any{"title": "x"}).ExpectError(t, http.StatusConflict, "ARCHIVED")
	app.Do(t, alice, http.MethodPost, "/api/v1/subtasks/"+st+"/complete", nil).ExpectError(t, http.StatusConflict, "ARCHIVED")
	app.Do(t, alice, http.MethodDelete, "/api/v1/subtasks/"+st, nil).ExpectError(t, http.StatusConflict, "ARCHIVED")
}
