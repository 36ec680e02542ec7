package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// reminderDeliveries remembers the pending delivery job of each reminder, so
// that moving or deleting a reminder (or its task) cancels it.
var reminderDeliveries = &gormigrate.Migration{
	ID: "202611241903_reminder_deliveries",
	Migrate: func(tx *gorm.DB) error {
		type reminderDelivery struct {
			ReminderID  uuid.UUID `gorm:"type:uuid;primaryKey"`
			TaskID      uuid.UUID `gorm:"type:uuid;not null;index:idx_reminder_deliveries_task_id"`
			JobID       int64     `gorm:"not null"`
			ScheduledAt time.Time `gorm:"not null"`
			CreatedAt   time.Time `gorm:"not null"`
		}
		return tx.Table("reminder_deliveries").AutoMigrate(&reminderDelivery{})
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("reminder_deliveries")
	},
}
