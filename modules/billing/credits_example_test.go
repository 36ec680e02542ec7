package billing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/test/testkit"
)

// A module that calls an outside service for the user holds its cost
// before the call, then settles what the answer cost (or releases the hold
// when it failed), each inside its own transaction.
func ExampleCredits() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	var credits billing.Credits
	app := testkit.Start(tb, testkit.Modules(billing.Module), testkit.WithFx(fx.Populate(&credits)))
	alice := app.SignIn(tb, "alice@example.com")
	ctx := context.Background()
	step := func(what string, f func(tx *gorm.DB) (billing.Balance, error)) {
		var bal billing.Balance
		err := app.DB.Tx(ctx, func(tx *gorm.DB) (err error) {
			bal, err = f(tx)
			return err
		})
		if err != nil {
			fmt.Println(what, err)
			return
		}
		fmt.Println(what, bal.Total())
	}
	step("balance", func(tx *gorm.DB) (billing.Balance, error) { return credits.Balance(ctx, tx, alice.ID) })
	hold := uuid.New()
	step("held 3", func(tx *gorm.DB) (billing.Balance, error) {
		return credits.Hold(ctx, tx, alice.ID, hold, 3, "example", app.Clock.Now().Add(time.Hour))
	})
	step("settled for 1", func(tx *gorm.DB) (billing.Balance, error) {
		return credits.Settle(ctx, tx, alice.ID, hold, 1, "example")
	})
	step("held 1000", func(tx *gorm.DB) (billing.Balance, error) {
		return credits.Hold(ctx, tx, alice.ID, uuid.New(), 1000, "example", app.Clock.Now().Add(time.Hour))
	})
	// Output:
	// balance 15
	// held 3 12
	// settled for 1 14
	// held 1000 INSUFFICIENT_CREDITS: this needs 1000 credits and 14 are left
}
