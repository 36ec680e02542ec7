package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// aiTables adds the AI requests counted per sign-in session (the session
// cap) and the task drafts made from notes.
var aiTables = &gormigrate.Migration{
	ID: "202612011200_ai",
	Migrate: func(tx *gorm.DB) error {
		type aiSession struct {
			SessionID uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID    uuid.UUID `gorm:"type:uuid;not null;index:idx_ai_sessions_user"`
			Requests  int       `gorm:"not null;default:0"`
			CreatedAt time.Time `gorm:"not null"`
			UpdatedAt time.Time `gorm:"not null"`
		}
		type aiNoteDraft struct {
			NoteID      uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID      uuid.UUID `gorm:"type:uuid;not null;index:idx_ai_note_drafts_user"`
			NoteVersion int       `gorm:"not null"`
			Task        string    `gorm:"type:text;not null"`
			CreatedAt   time.Time `gorm:"not null"`
		}
		if err := tx.Table("ai_sessions").AutoMigrate(&aiSession{}); err != nil {
			return err
		}
		return tx.Table("ai_note_drafts").AutoMigrate(&aiNoteDraft{})
	},
	Rollback: func(tx *gorm.DB) error { return tx.Migrator().DropTable("ai_note_drafts", "ai_sessions") },
}
