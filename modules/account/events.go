package account

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform/events"
)

// ExportRequested is published, inside the transaction that records it,
// when a user asks for an export (the account_export job is queued on it).
type ExportRequested struct {
	UserID   uuid.UUID
	ExportID uuid.UUID
}

// ExportReady is published, inside the transaction that records it, when
// an export's archive is written (notifications tells the user).
type ExportReady struct {
	UserID    uuid.UUID
	ExportID  uuid.UUID
	ExpiresAt time.Time
}

// ExportFailed is published when an export could not be written after its
// attempts.
type ExportFailed struct {
	UserID   uuid.UUID
	ExportID uuid.UUID
}

// queueExports queues the writing of an export's archive with the request
// that asked for it.
func queueExports(q jobs.Enqueuer, cfg Config) events.Subscription {
	return events.On("queue export", func(ctx context.Context, tx *gorm.DB, e ExportRequested) error {
		_, err := q.InsertTx(ctx, tx, ExportArgs{ExportID: e.ExportID}, &river.InsertOpts{MaxAttempts: cfg.ExportAttempts})
		return err
	})
}

// ErasureQueued is published, inside the transaction that closes an account
// through the API, to queue its erasure.
type ErasureQueued struct {
	UserID uuid.UUID
}

// queueErasures queues the erasure of an account with its closing.
func queueErasures(q jobs.Enqueuer) events.Subscription {
	return events.On("queue erasure", func(ctx context.Context, tx *gorm.DB, e ErasureQueued) error {
		_, err := q.InsertTx(ctx, tx, EraseArgs(e), nil)
		return err
	})
}
