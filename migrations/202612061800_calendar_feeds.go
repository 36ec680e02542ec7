package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// calendarFeeds adds each user's calendar feed: the SHA-256 of the secret
// in its URL (one feed per user; a new one replaces it).
var calendarFeeds = &gormigrate.Migration{
	ID: "202612061800_calendar_feeds",
	Migrate: func(tx *gorm.DB) error {
		type calendarFeed struct {
			UserID     uuid.UUID `gorm:"type:uuid;primaryKey"`
			SecretHash string    `gorm:"type:varchar(64);not null;uniqueIndex:idx_calendar_feeds_secret"`
			CreatedAt  time.Time `gorm:"not null"`
		}
		return tx.Table("calendar_feeds").AutoMigrate(&calendarFeed{})
	},
	Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("calendar_feeds") },
}
