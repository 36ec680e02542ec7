package tasks_test

import (
	"context"
	"net/http"
	"testing"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/test/testkit"
)

// The faces other modules change tasks through keep the HTTP routes' rules
// and write the same activity, in the caller's transaction.
func TestEditorAndFocusWorkInTheCallersTransaction(t *testing.T) {
	t.Parallel()
	var editor tasks.Editor
	var focus tasks.Focus
	app := testkit.Start(t, testkit.Modules(tasks.Module, activity.Module), testkit.WithFx(fx.Populate(&editor, &focus)))
	alice := app.SignIn(t, "alice@example.com")
	p := auth.Principal{UserID: alice.ID, Tier: auth.TierFree, Timezone: "UTC"}
	ctx := events.WithSource(context.Background(), events.SourceAI)
	tx := func(fn func(tx *gorm.DB) error) error { return app.DB.Tx(ctx, fn) }

	var task *tasks.TaskInfo
	if err := tx(func(tx *gorm.DB) (err error) {
		task, err = editor.CreateTaskTx(ctx, tx, p, tasks.NewTask{Title: "  drafted by the assistant  "})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if task.Title != "drafted by the assistant" || task.Priority != "medium" {
		t.Fatalf("created %+v", task)
	}
	var subtasks []tasks.SubtaskInfo
	if err := tx(func(tx *gorm.DB) (err error) {
		subtasks, err = editor.AddSubtasksTx(ctx, tx, p, task.ID, []tasks.NewSubtask{{Title: "a", Source: "ai"}, {Title: "b", Source: "ai"}})
		return err
	}); err != nil || len(subtasks) != 2 || subtasks[1].OrderIndex != 1 || subtasks[0].Source != "ai" {
		t.Fatalf("subtasks %+v, %v", subtasks, err)
	}
	err := tx(func(tx *gorm.DB) error {
		_, err := editor.AddSubtasksTx(ctx, tx, p, task.ID, []tasks.NewSubtask{{Title: "c"}, {Title: "d"}, {Title: "e"}})
		return err
	})
	if !apperr.Is(err, apperr.CodeLimitExceeded) {
		t.Fatalf("past the subtask limit: %v", err)
	}
	high := "high"
	if err := tx(func(tx *gorm.DB) error {
		_, err := editor.UpdateTaskTx(ctx, tx, p, task.ID, tasks.Changes{Priority: &high})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var after *tasks.TaskInfo
	if err := tx(func(tx *gorm.DB) (err error) {
		after, err = focus.AddFocusTime(ctx, tx, alice.ID, task.ID, 90)
		return err
	}); err != nil || after.FocusTimeSeconds != 90 {
		t.Fatalf("focus time %+v, %v", after, err)
	}
	var rewards *tasks.Rewards
	if err := tx(func(tx *gorm.DB) (err error) {
		after, rewards, err = editor.CompleteTaskTx(ctx, tx, p, task.ID)
		return err
	}); err != nil || !after.Completed || rewards == nil {
		t.Fatalf("complete %+v, %v", after, err)
	}

	got := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+task.ID.String(), nil).Expect(t, http.StatusOK).Data(t)
	if got["priority"] != "high" || got["focus_time_seconds"] != float64(90) || got["subtask_count"] != float64(2) ||
		got["completed"] != true {
		t.Fatalf("task %v", got)
	}
	if n := app.Count(t, "activity_log", "user_id = ? AND source = ?", alice.ID, "ai"); n != 5 {
		t.Fatalf("%d activity rows by the assistant, want 5 (created, 2 subtasks, updated, completed)", n)
	}
	// Another user's task stays out of reach.
	bob := auth.Principal{UserID: app.SignIn(t, "bob@example.com").ID, Tier: auth.TierFree}
	err = tx(func(tx *gorm.DB) error {
		_, err := editor.UpdateTaskTx(ctx, tx, bob, task.ID, tasks.Changes{Priority: &high})
		return err
	})
	if !apperr.Is(err, tasks.CodeTaskNotFound) {
		t.Fatalf("another user's task: %v", err)
	}
}
