package billing

import (
	"context"

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
}

// Total is the credits a user can spend.
func (b Balance) Total() int { return b.Daily + b.Subscription + b.Purchased + b.Kickstart }

// Credits spends AI credits inside the caller's transaction, so that the
// spend commits with the answer it pays for (or not at all). Spend grants
// the day's credits first when the day has none yet, and fails with 402
// INSUFFICIENT_CREDITS, changing nothing, when the balance is short.
type Credits interface {
	Spend(ctx context.Context, tx *gorm.DB, userID uuid.UUID, amount int, reason string) (Balance, error)
	// Balance returns the user's balance (granting the day's credits).
	Balance(ctx context.Context, tx *gorm.DB, userID uuid.UUID) (Balance, error)
}
