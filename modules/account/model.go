package account

import (
	"time"

	"github.com/google/uuid"
)

// Export is one export of a user's data: asked for, then written by the
// account_export job into an archive that is kept a week.
type Export struct {
	ID     uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID uuid.UUID `gorm:"type:uuid;not null"`
	State  string    `gorm:"not null"`
	// Rows and Bytes describe the archive once ready.
	Rows  int64 `gorm:"not null"`
	Bytes int64 `gorm:"not null"`
	Error string
	// DownloadToken is the secret of the download URL (hex of 32 random
	// bytes), valid until DownloadUntil; asked for later, a new one is made
	// while the archive is kept.
	DownloadToken string
	DownloadUntil *time.Time
	ReadyAt       *time.Time
	// ExpiresAt is when the archive is deleted.
	ExpiresAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (Export) TableName() string { return "account_exports" }

// Export states.
const (
	statePending = "pending"
	stateReady   = "ready"
	stateFailed  = "failed"
	// stateExpired: the archive was deleted after its week.
	stateExpired = "expired"
)

// DeletedAccount is what is kept of an account after its deletion: who it
// was (the id, the hash of the email), when, and what the accounts need
// (Kept: ledger and payment totals, by eraser name, as JSON).
type DeletedAccount struct {
	UserID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	EmailHash string    `gorm:"not null"`
	Tier      string    `gorm:"not null"`
	DeletedAt time.Time `gorm:"not null"`
	ErasedAt  *time.Time
	Kept      string `gorm:"not null"`
	// Erased is how many rows the erasure deleted, by eraser name (JSON).
	Erased string `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (DeletedAccount) TableName() string { return "deleted_accounts" }
