package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/events"
)

// The events the module publishes, and its subscribers.

// UserCreated is published, inside the sign-up transaction, when a user signs
// in for the first time (billing grants the kickstart credits on it).
type UserCreated struct {
	UserID uuid.UUID
	Email  string
	At     time.Time
}

// TierChanged is published, inside the transaction, when a user's tier
// changes.
type TierChanged struct {
	UserID uuid.UUID
	From   string
	To     string
	At     time.Time
}

// AccountClosed is published, inside the transaction that closes an
// account: every module drops what must stop at once (push
// subscriptions, pending reminders, a subscription's renewals); the
// account_erase job erases the rows afterwards.
type AccountClosed struct {
	UserID uuid.UUID
	// EmailHash is EmailHash of the account's email.
	EmailHash string
	Tier      string
	At        time.Time
}

// forgetClosedAccounts drops a closed account's cached sessions on this
// instance at once (the others forget them within session_cache_ttl).
func forgetClosedAccounts(cache *sessionCache) events.Subscription {
	return events.On("forget closed account", func(_ context.Context, _ *gorm.DB, e AccountClosed) error {
		cache.forgetUser(e.UserID)
		return nil
	})
}

// forgetChangedTiers makes a tier change apply to this instance's cached
// sessions at once.
func forgetChangedTiers(cache *sessionCache) events.Subscription {
	return events.On("forget cached sessions", func(_ context.Context, _ *gorm.DB, e TierChanged) error {
		cache.forgetUser(e.UserID)
		return nil
	})
}
