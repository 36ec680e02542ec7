package live

import (
	"time"

	"github.com/google/uuid"
)

// Change is one row of the change log: an entity of the user was created,
// updated or deleted. Seq is the user's sequence number, set when the
// transaction commits (nil until then, and never seen).
type Change struct {
	ID       int64     `gorm:"primaryKey"`
	UserID   uuid.UUID `gorm:"type:uuid;not null"`
	Seq      *int64
	Entity   string `gorm:"not null"`
	EntityID string `gorm:"not null"`
	Action   string `gorm:"not null"`
	At       time.Time
}

// TableName implements gorm's Tabler.
func (Change) TableName() string { return "changes" }

// Head is a user's last sequence number.
type Head struct {
	UserID uuid.UUID `gorm:"type:uuid;primaryKey"`
	Seq    int64     `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Head) TableName() string { return "sync_heads" }

// Ticket opens one live stream, once, for a short while.
type Ticket struct {
	Hash   string    `gorm:"primaryKey"`
	UserID uuid.UUID `gorm:"type:uuid;not null"`
	// SessionID is the sign-in that asked for it: the stream ends when it
	// does.
	SessionID uuid.UUID `gorm:"type:uuid;not null"`
	ExpiresAt time.Time `gorm:"not null"`
	UsedAt    *time.Time
	CreatedAt time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Ticket) TableName() string { return "event_tickets" }

// Change actions.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = "deleted"
)
