package activity

import (
	"time"

	"github.com/google/uuid"
)

// Entry is one row of the activity log.
type Entry struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID     uuid.UUID `gorm:"type:uuid;not null"`
	EntityType string    `gorm:"not null"`
	EntityID   uuid.UUID `gorm:"type:uuid;not null"`
	Action     string    `gorm:"not null"`
	Source     string    `gorm:"not null"`
	ExtraData  string    `gorm:"not null"`
	RequestID  *string
	CreatedAt  time.Time
}

// TableName implements gorm's Tabler.
func (Entry) TableName() string { return "activity_log" }
