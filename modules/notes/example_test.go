package notes_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/test/testkit"
)

// Another module reads a user's notes through the Notes face and archives
// one that became a task with ConvertTx, in its own transaction: once only.
func ExampleNotes() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	var (
		face  notes.Notes
		users auth.Users
	)
	app := testkit.Start(tb, testkit.Modules(notes.Module), testkit.WithFx(fx.Populate(&face, &users)))
	alice := app.SignIn(tb, "alice@example.com")
	var created struct {
		Data struct{ ID uuid.UUID } `json:"data"`
	}
	app.Do(tb, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "call the bank"}).
		Expect(tb, http.StatusCreated).Decode(tb, &created)

	ctx := context.Background()
	err := app.DB.Tx(ctx, func(tx *gorm.DB) error {
		p, err := users.Principal(ctx, tx, alice.ID)
		if err != nil {
			return err
		}
		n, err := face.Note(ctx, tx, p.UserID, created.Data.ID)
		if err != nil {
			return err
		}
		fmt.Println(n.Content, n.Archived)
		if n, err = face.ConvertTx(ctx, tx, p, n.ID); err != nil {
			return err
		}
		fmt.Println(n.Archived, n.Version)
		_, err = face.ConvertTx(ctx, tx, p, n.ID)
		fmt.Println(err)
		_, err = face.Note(ctx, tx, uuid.New(), n.ID) // another user's view
		fmt.Println(err)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// call the bank false
	// true 2
	// ARCHIVED: the note is archived: it was converted already
	// NOT_FOUND: note not found
}
