package recovery

import (
	"time"

	"github.com/google/uuid"
)

// Tombstone keeps a deleted item recoverable for a while: a full snapshot of
// it and of its children.
type Tombstone struct {
	ID               uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID           uuid.UUID `gorm:"type:uuid;not null"`
	EntityType       string    `gorm:"not null"`
	EntityID         uuid.UUID `gorm:"type:uuid;not null"`
	Title            string    `gorm:"not null"`
	Snapshot         string    `gorm:"not null"`
	DeletedAt        time.Time `gorm:"not null"`
	RecoverableUntil time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Tombstone) TableName() string { return "tombstones" }
