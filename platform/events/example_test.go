package events_test

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/events"
)

type taskCompleted struct{ Title string }

// A module contributes Subscriptions (events.AsSubscriber in its fx
// options); the app registers them on the bus, and a service publishes
// inside the transaction of its change, so that every subscriber's writes
// commit or roll back with it.
func ExampleBus_Publish() {
	bus := events.NewBus()
	events.Register(events.Registration{Bus: bus, Subs: []events.Subscription{
		events.On("count completions", func(ctx context.Context, tx *gorm.DB, e taskCompleted) error {
			fmt.Printf("completed %q (source %s)\n", e.Title, events.SourceOf(ctx))
			return nil
		}),
		events.OnEvery("log activity", func(_ context.Context, _ *gorm.DB, e any) error {
			fmt.Printf("logged %T\n", e)
			return nil
		}),
	}})
	ctx := events.WithSource(context.Background(), events.SourceAI)
	var tx *gorm.DB // the change's transaction: db.Tx(ctx, func(tx *gorm.DB) error { ... })
	if err := bus.Publish(ctx, tx, taskCompleted{Title: "Pay rent"}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// completed "Pay rent" (source ai)
	// logged events_test.taskCompleted
}
