package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// taskTables creates tasks and the tombstones that keep deleted items
// recoverable.
var taskTables = &gormigrate.Migration{
	ID: "202611240003_tasks",
	Migrate: func(tx *gorm.DB) error {
		type task struct {
			ID                    uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID                uuid.UUID  `gorm:"type:uuid;not null;index:idx_tasks_user_created,priority:1;index:idx_tasks_user_due,priority:1;index:idx_tasks_user_state,priority:1"`
			TemplateID            *uuid.UUID `gorm:"type:uuid;index:idx_tasks_template_id"`
			Title                 string     `gorm:"type:varchar(500);not null"`
			Description           string     `gorm:"type:text;not null;default:''"`
			Priority              string     `gorm:"type:varchar(10);not null;default:'medium'"`
			DueDate               *time.Time `gorm:"index:idx_tasks_user_due,priority:2"`
			EstimatedDuration     *int       ``
			FocusTimeSeconds      int        `gorm:"not null;default:0"`
			Completed             bool       `gorm:"not null;default:false;index:idx_tasks_user_state,priority:2"`
			CompletedAt           *time.Time ``
			CompletedBy           *string    `gorm:"type:varchar(10)"`
			Hidden                bool       `gorm:"not null;default:false"`
			Archived              bool       `gorm:"not null;default:false;index:idx_tasks_user_state,priority:3"`
			SubtaskCount          int        `gorm:"not null;default:0"`
			SubtaskCompletedCount int        `gorm:"not null;default:0"`
			Version               int        `gorm:"not null;default:1"`
			CreatedAt             time.Time  `gorm:"not null;index:idx_tasks_user_created,priority:2"`
			UpdatedAt             time.Time  `gorm:"not null"`
		}
		type tombstone struct {
			ID               uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID           uuid.UUID `gorm:"type:uuid;not null;index:idx_tombstones_user_deleted,priority:1"`
			EntityType       string    `gorm:"type:varchar(10);not null"`
			EntityID         uuid.UUID `gorm:"type:uuid;not null"`
			Title            string    `gorm:"type:text;not null;default:''"`
			Snapshot         string    `gorm:"type:text;not null"`
			DeletedAt        time.Time `gorm:"not null;index:idx_tombstones_user_deleted,priority:2"`
			RecoverableUntil time.Time `gorm:"not null;index:idx_tombstones_recoverable_until"`
		}
		if err := tx.Table("tasks").AutoMigrate(&task{}); err != nil {
			return err
		}
		return tx.Table("tombstones").AutoMigrate(&tombstone{})
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("tombstones", "tasks")
	},
}
