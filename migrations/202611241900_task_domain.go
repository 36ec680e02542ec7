package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// taskDomain adds subtasks, recurring templates, reminders and the activity
// log, and makes a template's instance unique per due date.
var taskDomain = &gormigrate.Migration{
	ID: "202611241900_task_domain",
	Migrate: func(tx *gorm.DB) error {
		type subtask struct {
			ID          uuid.UUID  `gorm:"type:uuid;primaryKey"`
			TaskID      uuid.UUID  `gorm:"type:uuid;not null;index:idx_subtasks_task_order,priority:1"`
			UserID      uuid.UUID  `gorm:"type:uuid;not null;index:idx_subtasks_user_id"`
			Title       string     `gorm:"type:varchar(200);not null"`
			Completed   bool       `gorm:"not null;default:false"`
			CompletedAt *time.Time ``
			OrderIndex  int        `gorm:"not null;default:0;index:idx_subtasks_task_order,priority:2"`
			Source      string     `gorm:"type:varchar(10);not null;default:'user'"`
			CreatedAt   time.Time  `gorm:"not null"`
			UpdatedAt   time.Time  `gorm:"not null"`
		}
		type template struct {
			ID                uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID            uuid.UUID  `gorm:"type:uuid;not null;index:idx_task_templates_user_id"`
			Title             string     `gorm:"type:varchar(500);not null"`
			Description       string     `gorm:"type:text;not null;default:''"`
			Priority          string     `gorm:"type:varchar(10);not null;default:'medium'"`
			EstimatedDuration *int       ``
			RRule             string     `gorm:"column:rrule;type:text;not null"`
			StartsAt          time.Time  `gorm:"not null"`
			NextDue           *time.Time `gorm:"index:idx_task_templates_due,priority:2"`
			Active            bool       `gorm:"not null;default:true;index:idx_task_templates_due,priority:1"`
			SubtaskTitles     string     `gorm:"type:text;not null;default:'[]'"`
			Version           int        `gorm:"not null;default:1"`
			CreatedAt         time.Time  `gorm:"not null"`
			UpdatedAt         time.Time  `gorm:"not null"`
		}
		type reminder struct {
			ID            uuid.UUID  `gorm:"type:uuid;primaryKey"`
			TaskID        uuid.UUID  `gorm:"type:uuid;not null;index:idx_reminders_task_id"`
			UserID        uuid.UUID  `gorm:"type:uuid;not null;index:idx_reminders_user_scheduled,priority:1"`
			Type          string     `gorm:"type:varchar(10);not null"`
			OffsetMinutes *int       ``
			Method        string     `gorm:"type:varchar(10);not null;default:'in_app'"`
			ScheduledAt   time.Time  `gorm:"not null;index:idx_reminders_user_scheduled,priority:2"`
			Fired         bool       `gorm:"not null;default:false"`
			FiredAt       *time.Time ``
			CreatedAt     time.Time  `gorm:"not null"`
			UpdatedAt     time.Time  `gorm:"not null"`
		}
		type activity struct {
			ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID     uuid.UUID `gorm:"type:uuid;not null;index:idx_activity_user_created,priority:1;index:idx_activity_user_entity,priority:1"`
			EntityType string    `gorm:"type:varchar(30);not null;index:idx_activity_user_entity,priority:2"`
			EntityID   uuid.UUID `gorm:"type:uuid;not null;index:idx_activity_user_entity,priority:3"`
			Action     string    `gorm:"type:varchar(30);not null"`
			Source     string    `gorm:"type:varchar(10);not null"`
			ExtraData  string    `gorm:"type:text;not null;default:'{}'"`
			RequestID  *string   `gorm:"type:varchar(128)"`
			CreatedAt  time.Time `gorm:"not null;index:idx_activity_user_created,priority:2;index:idx_activity_created"`
		}
		for table, model := range map[string]any{"subtasks": &subtask{}, "task_templates": &template{},
			"reminders": &reminder{}, "activity_log": &activity{}} {
			if err := tx.Table(table).AutoMigrate(model); err != nil {
				return err
			}
		}
		return tx.Exec("CREATE UNIQUE INDEX idx_tasks_template_due ON tasks (template_id, due_date)").Error
	},
	Rollback: func(tx *gorm.DB) error {
		if err := tx.Exec("DROP INDEX idx_tasks_template_due").Error; err != nil {
			return err
		}
		return tx.Migrator().DropTable("activity_log", "reminders", "task_templates", "subtasks")
	},
}
