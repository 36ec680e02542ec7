package tasks_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/test/testkit"
)

// Another module changes tasks through the Editor, inside its own
// transaction, with the rules, limits, events and activity of the tasks
// routes; it reads them through the Lookup.
func ExampleEditor() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	var (
		editor tasks.Editor
		lookup tasks.Lookup
		users  auth.Users
	)
	app := testkit.Start(tb, testkit.Modules(tasks.Module), testkit.WithFx(fx.Populate(&editor, &lookup, &users)))
	alice := app.SignIn(tb, "alice@example.com")

	ctx := events.WithSource(context.Background(), events.SourceAI) // the activity says the assistant acted
	err := app.DB.Tx(ctx, func(tx *gorm.DB) error {
		p, err := users.Principal(ctx, tx, alice.ID)
		if err != nil {
			return err
		}
		t, err := editor.CreateTaskTx(ctx, tx, p, tasks.NewTask{Title: "Write the report", Priority: tasks.PriorityHigh})
		if err != nil {
			return err
		}
		if _, err := editor.AddSubtasksTx(ctx, tx, p, t.ID, []tasks.NewSubtask{
			{Title: "Outline", Source: tasks.SourceAI}, {Title: "Draft", Source: tasks.SourceAI}}); err != nil {
			return err
		}
		if t, err = lookup.OwnedTask(ctx, tx, p.UserID, t.ID); err != nil {
			return err
		}
		fmt.Println(t.Title, t.Priority, t.SubtaskCount, t.Version)
		_, err = editor.CreateTaskTx(ctx, tx, p, tasks.NewTask{Title: ""})
		fmt.Println(err)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// Write the report high 2 1
	// VALIDATION_ERROR: title: must not be empty
}
