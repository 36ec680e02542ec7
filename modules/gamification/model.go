package gamification

import (
	"time"

	"github.com/google/uuid"
)

// Stats are one user's counters. Dates are calendar days in the user's
// time zone (YYYY-MM-DD).
type Stats struct {
	UserID                 uuid.UUID `gorm:"type:uuid;primaryKey"`
	LifetimeTasksCompleted int       `gorm:"not null"`
	CurrentStreak          int       `gorm:"not null"`
	LongestStreak          int       `gorm:"not null"`
	LastCompletionDate     *string
	// StreakCheckedOn is the local day the streak job last looked at the
	// user: it looks once per day.
	StreakCheckedOn  *string
	FocusCompletions int `gorm:"not null"`
	NotesConverted   int `gorm:"not null"`
	Version          int `gorm:"not null"`
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// TableName implements gorm's Tabler.
func (Stats) TableName() string { return "user_stats" }

// UserAchievement is an achievement a user unlocked (once).
type UserAchievement struct {
	UserID          uuid.UUID `gorm:"type:uuid;primaryKey"`
	AchievementCode string    `gorm:"primaryKey"`
	UnlockedAt      time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (UserAchievement) TableName() string { return "user_achievements" }

// CountedCompletion records that a task's completion counted on a local
// day: completing it again that day (after reopening it) counts nothing.
type CountedCompletion struct {
	TaskID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	LocalDate string    `gorm:"primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;not null"`
	CreatedAt time.Time
}

// TableName implements gorm's Tabler.
func (CountedCompletion) TableName() string { return "counted_completions" }

// FocusSession is time spent focused on a task. At most one per user runs
// (EndedAt nil).
type FocusSession struct {
	ID              uuid.UUID  `gorm:"type:uuid;primaryKey"`
	UserID          uuid.UUID  `gorm:"type:uuid;not null"`
	TaskID          uuid.UUID  `gorm:"type:uuid;not null"`
	StartedAt       time.Time  `gorm:"not null"`
	EndedAt         *time.Time ``
	DurationSeconds *int       ``
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName implements gorm's Tabler.
func (FocusSession) TableName() string { return "focus_sessions" }
