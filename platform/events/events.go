// Package events is the in-process event bus. Publishing happens inside the
// publisher's database transaction and subscribers run synchronously with the
// same transaction, so a side effect commits with the change that caused it or
// not at all. Anything slow or external is never done in a subscriber: the
// subscriber enqueues a job in the same transaction instead.
package events

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"gorm.io/gorm"
)

// Bus dispatches events to the subscribers of their type.
type Bus struct {
	mu   sync.RWMutex
	subs map[reflect.Type][]subscriber
}

type subscriber struct {
	name string
	fn   func(ctx context.Context, tx *gorm.DB, event any) error
}

// NewBus returns an empty bus. Modules subscribe from an fx.Invoke, which
// keeps the graph free of cycles between publishers and subscribers.
func NewBus() *Bus { return &Bus{subs: map[reflect.Type][]subscriber{}} }

// Subscribe registers fn for events of type E, under a name used in errors.
func Subscribe[E any](b *Bus, name string, fn func(ctx context.Context, tx *gorm.DB, event E) error) {
	t := reflect.TypeFor[E]()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[t] = append(b.subs[t], subscriber{name: name, fn: func(ctx context.Context, tx *gorm.DB, e any) error {
		return fn(ctx, tx, e.(E))
	}})
}

// Publish delivers event to every subscriber of its type, in subscription
// order, inside tx. The first error aborts the delivery and should abort the
// transaction.
func (b *Bus) Publish(ctx context.Context, tx *gorm.DB, event any) error {
	b.mu.RLock()
	subs := b.subs[reflect.TypeOf(event)]
	b.mu.RUnlock()
	for _, s := range subs {
		if err := s.fn(ctx, tx, event); err != nil {
			return fmt.Errorf("%s on %T: %w", s.name, event, err)
		}
	}
	return nil
}
