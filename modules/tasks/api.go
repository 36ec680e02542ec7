package tasks

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Perks reports the bonus a user's unlocked achievements add to a limit
// (perk types max_tasks, max_notes, daily_credits). The gamification module
// provides it; without it limits are the tier's base.
type Perks interface {
	PerkBonus(ctx context.Context, tx *gorm.DB, userID uuid.UUID, perkType string) (int, error)
}
