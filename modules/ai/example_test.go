package ai_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/ai"
	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/test/testkit"
)

// The assistant gives the notes module its Converter: a draft from the
// model (one credit), then, confirmed, the task made from the draft the
// user saw (free), the note archived, all in one transaction.
func Example_converter() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	model := testkit.NewOpenAI(tb, testkit.Reply{Content: `{"title": "Call the bank", "description": "About the card",
		"priority": "high", "due_date": null, "subtasks": [{"title": "Find the card number"}, {"title": "Call"}]}`})
	var (
		conv  notes.Converter
		users auth.Users
	)
	app := testkit.Start(tb, testkit.Modules(ai.Module), testkit.WithConfig("ai.api_key", model.Key),
		testkit.WithConfig("ai.base_url", model.URL), testkit.WithFx(fx.Populate(&conv, &users)))
	alice := app.SignIn(tb, "alice@example.com")
	var note struct {
		Data struct{ ID uuid.UUID } `json:"data"`
	}
	app.Do(tb, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "call the bank about the card"}).
		Expect(tb, http.StatusCreated).Decode(tb, &note)

	ctx := context.Background()
	p, err := users.Principal(ctx, app.DB.Gorm, alice.ID)
	if err != nil {
		panic(err)
	}
	c, err := conv.Convert(ctx, p, note.Data.ID, false)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Draft.Title, c.Draft.Priority, c.Draft.Subtasks, c.Task == nil, c.CreditsUsed)
	if c, err = conv.Convert(ctx, p, note.Data.ID, true); err != nil {
		panic(err)
	}
	fmt.Println(c.Task.Title, c.Task.SubtaskCount, len(c.Subtasks), c.CreditsUsed)
	_, err = conv.Convert(ctx, p, note.Data.ID, true)
	fmt.Println(err)
	// Output:
	// Call the bank high [Find the card number Call] true 1
	// Call the bank 2 2 0
	// ARCHIVED: the note is archived (a converted note is archived): un-archive it to convert it again
}
