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

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"
)

// Bus dispatches events to the subscribers of their type, then to the
// subscribers of every event.
type Bus struct {
	mu   sync.RWMutex
	subs map[reflect.Type][]subscriber
	all  []subscriber
}

type subscriber struct {
	name string
	fn   func(ctx context.Context, tx *gorm.DB, event any) error
}

// NewBus returns an empty bus. Subscriptions join it after construction (see
// Register), so a service may both publish (it needs the bus) and subscribe
// (its subscription needs the service) without a cycle in the graph.
func NewBus() *Bus { return &Bus{subs: map[reflect.Type][]subscriber{}} }

// Subscription is one handler for one event type, contributed by a module
// to the "subscribers" group.
type Subscription struct {
	event reflect.Type
	sub   subscriber
}

// On makes a Subscription of fn to events of type E.
func On[E any](name string, fn func(ctx context.Context, tx *gorm.DB, event E) error) Subscription {
	return Subscription{event: reflect.TypeFor[E](), sub: subscriber{name: name,
		fn: func(ctx context.Context, tx *gorm.DB, e any) error { return fn(ctx, tx, e.(E)) }}}
}

// AsSubscriber annotates a constructor returning a Subscription so that it
// joins the "subscribers" group.
func AsSubscriber(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"subscribers"`)) }

// Registration is the input of Register.
type Registration struct {
	fx.In

	Bus  *Bus
	Subs []Subscription `group:"subscribers"`
}

// Register subscribes every contributed Subscription (an fx.Invoke).
func Register(r Registration) {
	r.Bus.mu.Lock()
	defer r.Bus.mu.Unlock()
	for _, s := range r.Subs {
		if s.event == nil {
			r.Bus.all = append(r.Bus.all, s.sub)
			continue
		}
		r.Bus.subs[s.event] = append(r.Bus.subs[s.event], s.sub)
	}
}

// Subscribe registers fn for events of type E directly, under a name used
// in errors (tests; modules contribute Subscriptions).
func Subscribe[E any](b *Bus, name string, fn func(ctx context.Context, tx *gorm.DB, event E) error) {
	s := On(name, fn)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[s.event] = append(b.subs[s.event], s.sub)
}

// OnEvery makes a Subscription to every event, whatever its type (the
// activity log uses it).
func OnEvery(name string, fn func(ctx context.Context, tx *gorm.DB, event any) error) Subscription {
	return Subscription{sub: subscriber{name: name, fn: fn}}
}

// Publish delivers event to every subscriber of its type, in subscription
// order, then to the subscribers of every event, inside tx. The first error
// aborts the delivery and should abort the transaction.
func (b *Bus) Publish(ctx context.Context, tx *gorm.DB, event any) error {
	b.mu.RLock()
	subs := append(append([]subscriber(nil), b.subs[reflect.TypeOf(event)]...), b.all...)
	b.mu.RUnlock()
	for _, s := range subs {
		if err := s.fn(ctx, tx, event); err != nil {
			return fmt.Errorf("%s on %T: %w", s.name, event, err)
		}
	}
	return nil
}

// Sources of a change.
const (
	SourceUser   = "user"
	SourceAI     = "ai"
	SourceSystem = "system"
)

// Entry is how an event appears in the activity log.
type Entry struct {
	UserID     uuid.UUID
	EntityType string
	EntityID   uuid.UUID
	Action     string
	Source     string
	Extra      map[string]any
}

// Recordable is an event that describes itself for the activity log: every
// published Recordable event becomes one activity row in the publisher's
// transaction, whichever module published it.
type Recordable interface {
	ActivityEntry() Entry
}

type sourceKey struct{}

// WithSource marks the changes made under ctx as coming from source (the AI
// module and jobs act on the user's behalf).
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// SourceOf returns the source of changes made under ctx: "user" unless
// marked otherwise.
func SourceOf(ctx context.Context) string {
	if s, ok := ctx.Value(sourceKey{}).(string); ok {
		return s
	}
	return SourceUser
}
