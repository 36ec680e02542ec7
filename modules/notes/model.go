package notes

import (
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/database"
)

// Note is a text (or voice) note, free or attached to a task.
type Note struct {
	ID                   uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	UserID               uuid.UUID  `gorm:"type:uuid;not null" json:"user_id"`
	TaskID               *uuid.UUID `gorm:"type:uuid" json:"task_id"`
	Content              string     `gorm:"not null" json:"content"`
	Archived             bool       `gorm:"not null" json:"archived"`
	VoiceURL             *string    `json:"voice_url"`
	VoiceDurationSeconds *int       `json:"voice_duration_seconds"`
	TranscriptionStatus  *string    `json:"transcription_status"`
	Version              int        `gorm:"not null" json:"version"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

// Versioned implements database.VersionedRow.
func (n *Note) Versioned() database.Versioned {
	return database.Versioned{Version: &n.Version, UpdatedAt: &n.UpdatedAt}
}

// TableName implements gorm's Tabler.
func (Note) TableName() string { return "notes" }
