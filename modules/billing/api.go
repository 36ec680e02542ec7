package billing

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// This file and events.go are the module's public face.

// CodeInsufficientCredits is the error code of a spend the balance does not
// cover (402).
const CodeInsufficientCredits = "INSUFFICIENT_CREDITS"

// Balance is a user's credits by kind.
type Balance struct {
	Daily        int
	Subscription int
	Purchased    int
	Kickstart    int
	Granted      int
}

// Total is the credits a user can spend.
func (b Balance) Total() int { return b.Daily + b.Subscription + b.Purchased + b.Kickstart + b.Granted }

// Credits spends AI credits inside the caller's transaction, so that the
// spend commits with the answer it pays for (or not at all). Every method
// first grants the day's credits when the day has none yet. A request that
// calls an outside service holds its cost before the call, in the
// transaction that admits it, and settles or releases the hold after: so
// concurrent requests can never be answered beyond the balance.
type Credits interface {
	// Hold sets amount credits aside under holdID (once per id; 402 when the
	// balance is short): they leave the balance at once. A hold neither
	// settled nor released by until is released by credit_hold_release.
	Hold(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID, amount int, reason string, until time.Time) (Balance, error)
	// Settle spends the hold as amount credits: more than was held takes the
	// rest from the balance (402 when short), less gives the difference back.
	// A hold that is no longer open (released after its time) is spent anew.
	Settle(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID, amount int, reason string) (Balance, error)
	// Release gives an open hold's credits back; false when it was settled or
	// released already.
	Release(ctx context.Context, tx *gorm.DB, userID, holdID uuid.UUID) (bool, error)
	// Balance returns the user's balance.
	Balance(ctx context.Context, tx *gorm.DB, userID uuid.UUID) (Balance, error)
}

// Plan is a user's tier and subscription, as operators see it.
type Plan struct {
	Tier   string
	Status string // the subscription's, "" without one
	// Until is when Pro access ends (nil: no end, or not Pro).
	Until   *time.Time
	Balance Balance
}

// Plans are the operators' changes to a user's plan and credits (perpetua
// users set-tier and grant-credits), with the rules, events and activity
// (source system) of the routes that make the same changes.
type Plans interface {
	// Plan is the user's plan and balance.
	Plan(ctx context.Context, userID uuid.UUID) (*Plan, error)
	// SetTier puts the user on Pro until a time (nil: no end), or back on
	// free at once (until must then be nil).
	SetTier(ctx context.Context, userID uuid.UUID, tier string, until *time.Time) (*Plan, error)
	// GrantCredits gives credits of their own kind (granted, never
	// expiring; 1 to MaxGrant) with the reason in the credit history.
	GrantCredits(ctx context.Context, userID uuid.UUID, credits int, reason string) (Balance, error)
}
