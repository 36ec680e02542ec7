// Package perks is the part of the gamification module's face that the
// modules whose limits achievements raise (tasks, notes, billing) use. Those
// modules sit below gamification in the import graph (it listens to their
// events), so this part lives in a package of its own: one interface, owned
// by the module that provides it, and the one rule of an effective limit.
package perks

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// The limits a perk raises.
const (
	MaxTasks     = "max_tasks"
	MaxNotes     = "max_notes"
	DailyCredits = "daily_credits"
)

// Kinds are the limits a perk may raise.
var Kinds = []string{MaxTasks, MaxNotes, DailyCredits}

// Bonus reports what a user's unlocked achievements add to the limit kind,
// in the caller's transaction. The gamification module provides it; without
// that module the limits are the tiers' bases.
type Bonus interface {
	PerkBonus(ctx context.Context, tx *gorm.DB, userID uuid.UUID, kind string) (int, error)
}

// Limit is a user's effective limit of kind: the tier's base plus the
// bonus of the user's perks (b may be nil: the base alone).
func Limit(ctx context.Context, tx *gorm.DB, b Bonus, userID uuid.UUID, kind string, base int) (int, error) {
	if b == nil {
		return base, nil
	}
	bonus, err := b.PerkBonus(ctx, tx, userID, kind)
	if err != nil {
		return 0, err
	}
	return base + bonus, nil
}
