package tasks

import (
	"time"

	"github.com/google/uuid"
)

// TaskCompleted is published inside the transaction that completes a task
// (manually, by force, or automatically by its last subtask). Subscribers
// that reward the completion (streaks, achievements) report what they
// granted in Rewards, which the completion's answer returns.
type TaskCompleted struct {
	UserID      uuid.UUID
	Timezone    string
	Task        Task
	CompletedBy string
	At          time.Time
	Rewards     *Rewards
}

// Rewards collects what a completion earned.
type Rewards struct {
	Unlocked []UnlockedAchievement
	Streak   int
}

// UnlockedAchievement is one achievement a completion unlocked.
type UnlockedAchievement struct {
	AchievementID   string `json:"achievement_id"`
	AchievementName string `json:"achievement_name"`
	Perk            *Perk  `json:"perk" doc:"null when the achievement has no perk"`
}

// Perk is what an achievement adds to a limit.
type Perk struct {
	Type  string `json:"type" enum:"max_tasks,max_notes,daily_credits"`
	Value int    `json:"value"`
}

// TaskDeleted is published inside the transaction that deletes a task
// (after its tombstone is written).
type TaskDeleted struct {
	UserID      uuid.UUID
	TaskID      uuid.UUID
	TombstoneID uuid.UUID
	At          time.Time
}
