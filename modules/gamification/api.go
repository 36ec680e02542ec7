package gamification

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// This file and events.go are the module's public face.

// Perks reports the bonus a user's unlocked achievements add to a limit
// (perk types max_tasks, max_notes, daily_credits), in the caller's
// transaction. It is also provided as tasks.Perks.
type Perks interface {
	PerkBonus(ctx context.Context, tx *gorm.DB, userID uuid.UUID, perkType string) (int, error)
}
