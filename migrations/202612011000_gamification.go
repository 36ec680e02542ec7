package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// gamificationTables adds per-user stats and streaks, unlocked
// achievements, the completions already counted, and focus sessions (at
// most one running per user).
var gamificationTables = &gormigrate.Migration{
	ID: "202612011000_gamification",
	Migrate: func(tx *gorm.DB) error {
		type userStats struct {
			UserID                 uuid.UUID `gorm:"type:uuid;primaryKey"`
			LifetimeTasksCompleted int       `gorm:"not null;default:0"`
			CurrentStreak          int       `gorm:"not null;default:0;index:idx_user_stats_streak"`
			LongestStreak          int       `gorm:"not null;default:0"`
			LastCompletionDate     *string   `gorm:"type:varchar(10)"`
			StreakCheckedOn        *string   `gorm:"type:varchar(10)"`
			FocusCompletions       int       `gorm:"not null;default:0"`
			NotesConverted         int       `gorm:"not null;default:0"`
			Version                int       `gorm:"not null;default:1"`
			CreatedAt              time.Time `gorm:"not null"`
			UpdatedAt              time.Time `gorm:"not null"`
		}
		type userAchievement struct {
			UserID          uuid.UUID `gorm:"type:uuid;primaryKey"`
			AchievementCode string    `gorm:"type:varchar(40);primaryKey"`
			UnlockedAt      time.Time `gorm:"not null"`
		}
		type countedCompletion struct {
			TaskID    uuid.UUID `gorm:"type:uuid;primaryKey"`
			LocalDate string    `gorm:"type:varchar(10);primaryKey"`
			UserID    uuid.UUID `gorm:"type:uuid;not null;index:idx_counted_completions_user"`
			CreatedAt time.Time `gorm:"not null"`
		}
		type focusSession struct {
			ID              uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID          uuid.UUID  `gorm:"type:uuid;not null;index:idx_focus_sessions_user_started,priority:1"`
			TaskID          uuid.UUID  `gorm:"type:uuid;not null;index:idx_focus_sessions_task"`
			StartedAt       time.Time  `gorm:"not null;index:idx_focus_sessions_user_started,priority:2"`
			EndedAt         *time.Time ``
			DurationSeconds *int       ``
			CreatedAt       time.Time  `gorm:"not null"`
			UpdatedAt       time.Time  `gorm:"not null"`
		}
		for table, model := range map[string]any{"user_stats": &userStats{}, "user_achievements": &userAchievement{},
			"counted_completions": &countedCompletion{}, "focus_sessions": &focusSession{}} {
			if err := tx.Table(table).AutoMigrate(model); err != nil {
				return err
			}
		}
		// One running session per user, whoever starts the second.
		return tx.Exec("CREATE UNIQUE INDEX idx_focus_sessions_running ON focus_sessions (user_id) WHERE ended_at IS NULL").Error
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("focus_sessions", "counted_completions", "user_achievements", "user_stats")
	},
}
