package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// notificationTables adds in-app notifications (one per fired reminder at
// most: reminder_id is unique) and WebPush subscriptions.
var notificationTables = &gormigrate.Migration{
	ID: "202611241901_notifications",
	Migrate: func(tx *gorm.DB) error {
		type notification struct {
			ID         uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID     uuid.UUID  `gorm:"type:uuid;not null;index:idx_notifications_user_created,priority:1"`
			Type       string     `gorm:"type:varchar(20);not null"`
			Title      string     `gorm:"type:varchar(200);not null"`
			Message    string     `gorm:"type:text;not null;default:''"`
			Read       bool       `gorm:"not null;default:false"`
			TaskID     *uuid.UUID `gorm:"type:uuid"`
			ReminderID *uuid.UUID `gorm:"type:uuid;uniqueIndex:idx_notifications_reminder_id"`
			CreatedAt  time.Time  `gorm:"not null;index:idx_notifications_user_created,priority:2"`
			UpdatedAt  time.Time  `gorm:"not null"`
		}
		type pushSubscription struct {
			ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID    uuid.UUID `gorm:"type:uuid;not null;index:idx_push_subscriptions_user_id"`
			Endpoint  string    `gorm:"type:varchar(1000);not null;uniqueIndex:idx_push_subscriptions_endpoint"`
			P256dhKey string    `gorm:"type:varchar(200);not null"`
			AuthKey   string    `gorm:"type:varchar(100);not null"`
			Active    bool      `gorm:"not null;default:true"`
			CreatedAt time.Time `gorm:"not null"`
			UpdatedAt time.Time `gorm:"not null"`
		}
		if err := tx.Table("notifications").AutoMigrate(&notification{}); err != nil {
			return err
		}
		return tx.Table("push_subscriptions").AutoMigrate(&pushSubscription{})
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("push_subscriptions", "notifications")
	},
}
