package events_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/events"
)

type happened struct{ N int }

type other struct{}

func TestSubscribersFromTheGroupRunInOrderAndStopAtTheFirstError(t *testing.T) {
	t.Parallel()
	var seen []string
	fail := false
	var bus *events.Bus
	app := fx.New(fx.NopLogger,
		fx.Provide(events.NewBus),
		fx.Provide(events.AsSubscriber(func() events.Subscription {
			return events.On("first", func(_ context.Context, _ *gorm.DB, e happened) error {
				seen = append(seen, "first")
				if fail {
					return errors.New("refused")
				}
				return nil
			})
		})),
		fx.Invoke(events.Register),
		fx.Populate(&bus),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	events.Subscribe(bus, "second", func(_ context.Context, _ *gorm.DB, e happened) error {
		seen = append(seen, "second")
		return nil
	})
	if err := bus.Publish(context.Background(), nil, happened{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), nil, other{}); err != nil {
		t.Fatal("an event nobody subscribes to is not an error")
	}
	fail = true
	err := bus.Publish(context.Background(), nil, happened{N: 2})
	if err == nil || err.Error() != "first on events_test.happened: refused" {
		t.Fatalf("error: %v", err)
	}
	if got := len(seen); got != 3 || seen[0] != "first" || seen[1] != "second" || seen[2] != "first" {
		t.Fatalf("seen %v", seen)
	}
}
