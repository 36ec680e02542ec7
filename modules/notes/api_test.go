package notes_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/test/testkit"
)

func TestNotesFaceReadsAndConvertsOnce(t *testing.T) {
	t.Parallel()
	var face notes.Notes
	app := testkit.Start(t, testkit.Modules(notes.Module, activity.Module), testkit.WithFx(fx.Populate(&face)))
	alice := app.SignIn(t, "alice@example.com")
	id := uuid.MustParse(app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "buy milk"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string))
	ctx := context.Background()
	p := auth.Principal{UserID: alice.ID, Tier: auth.TierFree}

	var n *notes.NoteInfo
	err := app.DB.Tx(ctx, func(tx *gorm.DB) (err error) {
		if n, err = face.Note(ctx, tx, alice.ID, id); err != nil {
			return err
		}
		n, err = face.ConvertTx(ctx, tx, p, id)
		return err
	})
	if err != nil || n.Content != "buy milk" || !n.Archived || n.Version != 2 {
		t.Fatalf("note %+v, %v", n, err)
	}
	// A note is converted once.
	err = app.DB.Tx(ctx, func(tx *gorm.DB) error { _, err := face.ConvertTx(ctx, tx, p, id); return err })
	if !apperr.Is(err, "ARCHIVED") {
		t.Fatalf("second conversion: %v", err)
	}
	if c := app.Count(t, "activity_log", "entity_id = ? AND action = ?", id, "converted"); c != 1 {
		t.Fatalf("%d converted rows", c)
	}
	bob := app.SignIn(t, "bob@example.com")
	err = app.DB.Tx(ctx, func(tx *gorm.DB) error { _, err := face.Note(ctx, tx, bob.ID, id); return err })
	if !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("another user's note: %v", err)
	}
}
