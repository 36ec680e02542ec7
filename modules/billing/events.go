package billing

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/events"
)

// SubscriptionChanged is published, in the transaction of the change, when
// a subscription is activated, renewed, enters its grace period, is
// cancelled or ends (Action says which).
type SubscriptionChanged struct {
	UserID uuid.UUID
	Action string
	Status string
	// Until is when Pro access ends (period end, or grace end).
	Until *time.Time
}

// entitySubscription is the entity type of a subscription in the activity
// log.
const entitySubscription = "subscription"

// Subscription actions.
const (
	ActionActivated = "activated"
	ActionRenewed   = "renewed"
	ActionGrace     = "grace"
	ActionCancelled = "cancelled"
	ActionEnded     = "ended"
)

// ActivityEntry implements events.Recordable.
func (e SubscriptionChanged) ActivityEntry() events.Entry {
	extra := map[string]any{"status": e.Status}
	if e.Until != nil {
		extra["until"] = e.Until.UTC()
	}
	return events.Entry{UserID: e.UserID, EntityType: entitySubscription, EntityID: e.UserID, Action: e.Action,
		Source: events.SourceSystem, Extra: extra}
}

// CreditsGranted is published when credits are granted outside the daily
// rhythm (kickstart, purchase, subscription period). Credit movements are
// not activity: the credit history (the ledger) is their record.
type CreditsGranted struct {
	UserID uuid.UUID
	Kind   string
	Amount int
}

// grantKickstart grants the welcome credits in the sign-up transaction.
func grantKickstart(l *Ledger, bus *events.Bus) events.Subscription {
	return events.On("kickstart credits", func(ctx context.Context, tx *gorm.DB, e auth.UserCreated) error {
		if err := l.GrantKickstart(ctx, tx, e.UserID); err != nil {
			return err
		}
		return bus.Publish(ctx, tx, CreditsGranted{UserID: e.UserID, Kind: KindKickstart, Amount: l.cfg.KickstartCredits})
	})
}
