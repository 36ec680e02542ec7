package gamification

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/events"
)

// entityAchievement is the entity type of an unlocked achievement in the
// activity log.
const entityAchievement = "achievement"

// AchievementUnlocked is published, inside the transaction of the change
// that reached the threshold, when a user unlocks an achievement (once).
type AchievementUnlocked struct {
	UserID    uuid.UUID
	Code      string
	Name      string
	Message   string
	PerkType  string
	PerkValue int
}

// ActivityEntry implements events.Recordable.
func (e AchievementUnlocked) ActivityEntry() events.Entry {
	extra := map[string]any{"achievement_id": e.Code, "name": e.Name}
	if e.PerkType != "" {
		extra["perk"] = map[string]any{"type": e.PerkType, "value": e.PerkValue}
	}
	return events.Entry{UserID: e.UserID, EntityType: entityAchievement, EntityID: e.UserID, Action: "unlocked",
		Source: events.SourceSystem, Extra: extra}
}

// rewardCompletions counts a completed task in its transaction: stats,
// streak, achievements; what it earned goes back into the completion's
// answer through e.Rewards.
func rewardCompletions(s *Service) events.Subscription {
	return events.On("reward completion", func(ctx context.Context, tx *gorm.DB, e tasks.TaskCompleted) error {
		return s.rewardCompletion(ctx, tx, e)
	})
}

// countConversions counts a note that became a task.
func countConversions(s *Service) events.Subscription {
	return events.On("count conversion", func(ctx context.Context, tx *gorm.DB, e notes.NoteChanged) error {
		if e.Action != notes.ActionConverted {
			return nil
		}
		return s.countConversion(ctx, tx, e.UserID)
	})
}

// FocusChanged is published when a focus session starts or ends.
type FocusChanged struct {
	UserID          uuid.UUID
	SessionID       uuid.UUID
	TaskID          uuid.UUID
	Action          string
	DurationSeconds int
}

// ActivityEntry implements events.Recordable: a focus session is logged
// under its task (focus_started, focus_ended), as the web client knows no
// focus entity.
func (e FocusChanged) ActivityEntry() events.Entry {
	extra := map[string]any{"session_id": e.SessionID.String()}
	if e.Action == "ended" {
		extra["duration_seconds"] = e.DurationSeconds
	}
	return events.Entry{UserID: e.UserID, EntityType: tasks.EntityTask, EntityID: e.TaskID, Action: "focus_" + e.Action, Extra: extra}
}
