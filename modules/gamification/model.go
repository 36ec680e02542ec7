package gamification

import (
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/database"
)

// Stats are one user's counters. Dates are calendar days in the user's
// time zone (YYYY-MM-DD).
type Stats struct {
	UserID                 uuid.UUID `gorm:"type:uuid;primaryKey"`
	LifetimeTasksCompleted int       `gorm:"not null"`
	Streak
	FocusCompletions int `gorm:"not null"`
	NotesConverted   int `gorm:"not null"`
	Version          int `gorm:"not null"`
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// TableName implements gorm's Tabler.
func (Stats) TableName() string { return "user_stats" }

// Versioned implements database.VersionedRow.
func (st *Stats) Versioned() database.Versioned {
	return database.Versioned{Version: &st.Version, UpdatedAt: &st.UpdatedAt}
}

// Streak is a user's run of local days (YYYY-MM-DD, in the user's time
// zone) with at least one completion. Its methods are its transitions;
// the service loads it, calls them and saves it.
type Streak struct {
	CurrentStreak      int `gorm:"not null"`
	LongestStreak      int `gorm:"not null"`
	LastCompletionDate *string
	// StreakCheckedOn is the local day the streak job last looked at the
	// user: it looks once per day.
	StreakCheckedOn *string
}

// Complete counts a completion on the local day today: the streak goes on
// from yesterday, starts again at 1 after a gap, and stays the same for a
// second completion of the day. A day before the last one (the user moved
// to a zone behind) changes nothing: that day is counted already.
func (s *Streak) Complete(today string) {
	switch {
	case s.LastCompletionDate == nil || *s.LastCompletionDate < dayBefore(today):
		s.CurrentStreak = 1
	case *s.LastCompletionDate == dayBefore(today):
		s.CurrentStreak++
	case *s.LastCompletionDate > today:
		return
	}
	s.LongestStreak = max(s.LongestStreak, s.CurrentStreak)
	s.LastCompletionDate = &today
}

// Stale reports whether the streak is over on the local day today: no
// completion yesterday or today.
func (s *Streak) Stale(today string) bool {
	return s.LastCompletionDate == nil || *s.LastCompletionDate < dayBefore(today)
}

// Check is the daily look at the streak on the local day today: it breaks
// a stale streak (to 0) and records the look. It reports whether anything
// is to be saved (false when today was looked at already) and whether the
// streak broke.
func (s *Streak) Check(today string) (changed, broke bool) {
	if s.StreakCheckedOn != nil && *s.StreakCheckedOn == today {
		return false, false
	}
	s.StreakCheckedOn = &today
	if s.Stale(today) {
		broke = s.CurrentStreak > 0
		s.CurrentStreak = 0
	}
	return true, broke
}

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
