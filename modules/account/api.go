package account

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// This file and events.go are the module's public face.

// Error codes.
const (
	// CodeExportInProgress: the user has an export under way already.
	CodeExportInProgress = "EXPORT_IN_PROGRESS"
	// CodeExportExpired: the download link or the archive has expired.
	CodeExportExpired = "EXPORT_EXPIRED"
)

// Erasure is what erasing an account did: rows deleted by eraser name,
// and what was kept for the accounts.
type Erasure struct {
	UserID   uuid.UUID
	ErasedAt time.Time
	Erased   map[string]int64
	Kept     map[string]any
}

// Accounts are the operators' account commands (perpetua users erase).
type Accounts interface {
	// EraseNow closes the account (as DELETE /users/me does, without the
	// confirmation) unless it is closed already, and erases every row of
	// it at once rather than in a job.
	EraseNow(ctx context.Context, userID uuid.UUID) (*Erasure, error)
}
