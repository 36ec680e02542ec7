package tasks

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
)

// Perks reports the bonus a user's unlocked achievements add to a limit
// (perk types max_tasks, max_notes, daily_credits). The gamification module
// provides it; without it limits are the tier's base.
type Perks interface {
	PerkBonus(ctx context.Context, tx *gorm.DB, userID uuid.UUID, perkType string) (int, error)
}

// ReminderDelivery is what the delivery of a reminder (the notifications
// module's reminder_fire job) needs from tasks.
type ReminderDelivery interface {
	FireReminder(ctx context.Context, tx *gorm.DB, reminderID uuid.UUID, scheduledAt time.Time) (*FiredReminder, error)
}

// Tombstones keeps deleted items of other modules (notes) recoverable.
type Tombstones interface {
	Bury(ctx context.Context, tx *gorm.DB, userID uuid.UUID, entityType string, entityID uuid.UUID,
		title string, snapshot any) (*Deleted, error)
}

// Lookup lets other modules check a task's ownership in their transaction.
type Lookup interface {
	// OwnedTask fails with TASK_NOT_FOUND unless the user owns the task.
	OwnedTask(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) (*Task, error)
	// LockTask is OwnedTask that also locks the task's row until tx ends:
	// a module changing something that hangs on a task (an attached note)
	// takes it first, as the task's own changes do, so that the two never
	// interleave.
	LockTask(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) (*Task, error)
}

// Recoverer gives back items of one entity type from their tombstone
// snapshot, inside the recovery's transaction, and returns the object the
// recovery answers with. Modules contribute it to the "recoverers" group.
type Recoverer struct {
	EntityType string
	Recover    func(ctx context.Context, tx *gorm.DB, p auth.Principal, snapshot []byte) (any, error)
}

// AsRecoverer annotates a constructor returning a Recoverer so that it joins
// the "recoverers" group.
func AsRecoverer(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"recoverers"`)) }

type recoverersIn struct {
	fx.In
	Recoverers []Recoverer `group:"recoverers"`
}
