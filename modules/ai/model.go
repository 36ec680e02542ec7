package ai

import (
	"time"

	"github.com/google/uuid"
)

// Session counts the AI requests of one sign-in (a refresh-token family):
// at most Config.SessionRequests each.
type Session struct {
	SessionID uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;not null"`
	Requests  int       `gorm:"not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (Session) TableName() string { return "ai_sessions" }

// Draft is the last task the assistant drafted from a note, kept so that
// confirming the conversion uses what the user saw (and is not charged
// again). It holds while the note is at NoteVersion.
type Draft struct {
	NoteID      uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID      uuid.UUID `gorm:"type:uuid;not null"`
	NoteVersion int       `gorm:"not null"`
	Task        string    `gorm:"not null"` // the TaskDraft as JSON
	CreatedAt   time.Time
}

// TableName implements gorm's Tabler.
func (Draft) TableName() string { return "ai_note_drafts" }
