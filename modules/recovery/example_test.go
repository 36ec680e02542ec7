package recovery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/test/testkit"
)

// bookmark is an example module's restored item.
type bookmark struct{ Title string }

func (bookmark) RestoredEntity() string { return "bookmark" }

// A module buries what it deletes, in the transaction that deletes it; the
// user's bin lists it until it is recovered (through the Recoverer the
// module gives for its entity type) or purged.
func ExampleBin() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	var bin recovery.Bin
	bookmarks := recovery.AsRecoverer(func() recovery.Recoverer {
		return recovery.Recoverer{EntityType: "bookmark",
			Recover: func(ctx context.Context, tx *gorm.DB, p auth.Principal, from recovery.Restore) (recovery.Restored, error) {
				var b bookmark
				err := json.Unmarshal(from.Snapshot, &b) // ... and insert the row again
				return b, err
			}}
	})
	app := testkit.Start(tb, testkit.Modules(recovery.Module), testkit.WithFx(fx.Provide(bookmarks), fx.Populate(&bin)))
	alice := app.SignIn(tb, "alice@example.com")
	ctx := context.Background()
	var tombstone uuid.UUID
	err := app.DB.Tx(ctx, func(tx *gorm.DB) error {
		// ... delete the row, then:
		b, err := bin.Bury(ctx, tx, recovery.Item{UserID: alice.ID, EntityType: "bookmark", EntityID: uuid.New(),
			Title: "Read later", Snapshot: bookmark{Title: "Read later"}})
		if err != nil {
			return err
		}
		tombstone = b.TombstoneID
		fmt.Println(b.RecoverableUntil.Sub(app.Clock.Now()))
		return nil
	})
	if err != nil {
		panic(err)
	}
	for _, item := range app.Do(tb, alice, http.MethodGet, "/api/v1/recovery", nil).Expect(tb, http.StatusOK).List(tb) {
		fmt.Println(item["entity_type"], item["title"])
	}
	res := app.Do(tb, alice, http.MethodPost, "/api/v1/recovery/"+tombstone.String()+"/recover", nil)
	fmt.Println(res.Status, len(app.Do(tb, alice, http.MethodGet, "/api/v1/recovery", nil).List(tb)))
	// Output:
	// 168h0m0s
	// bookmark Read later
	// 201 0
}
