package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// noteTables adds text and voice notes.
var noteTables = &gormigrate.Migration{
	ID: "202611241902_notes",
	Migrate: func(tx *gorm.DB) error {
		type note struct {
			ID                   uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID               uuid.UUID  `gorm:"type:uuid;not null;index:idx_notes_user_created,priority:1"`
			TaskID               *uuid.UUID `gorm:"type:uuid;index:idx_notes_task_id"`
			Content              string     `gorm:"type:text;not null;default:''"`
			Archived             bool       `gorm:"not null;default:false"`
			VoiceURL             *string    `gorm:"type:text"`
			VoiceDurationSeconds *int       ``
			TranscriptionStatus  *string    `gorm:"type:varchar(10)"`
			Version              int        `gorm:"not null;default:1"`
			CreatedAt            time.Time  `gorm:"not null;index:idx_notes_user_created,priority:2"`
			UpdatedAt            time.Time  `gorm:"not null"`
		}
		return tx.Table("notes").AutoMigrate(&note{})
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("notes")
	},
}
