package auth_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

// A job works for a user outside any request: it loads the user as a
// Principal through the Users face, as a handler gets it from auth.Caller.
func ExampleUsers() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	var (
		users auth.Users
		tiers auth.Tiers
	)
	app := testkit.Start(tb, testkit.Modules(), testkit.WithFx(fx.Populate(&users, &tiers)))
	alice := app.SignIn(tb, "alice@example.com")
	ctx := context.Background()
	db := app.DB.Gorm.WithContext(ctx)

	p, err := users.Principal(ctx, db, alice.ID)
	fmt.Println(p.Email, p.Tier, p.Timezone, err)
	if err := tiers.SetTier(ctx, db, alice.ID, auth.TierPro); err != nil {
		panic(err)
	}
	p, _ = users.Principal(ctx, db, alice.ID)
	fmt.Println(p.Tier)
	_, err = users.Principal(ctx, db, uuid.New())
	fmt.Println(database.IsNotFound(err))
	// Output:
	// alice@example.com free UTC <nil>
	// pro
	// true
}
