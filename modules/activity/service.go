package activity

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
)

// Service reads and purges the log (events write it, see events.go).
type Service struct {
	db    *database.DB
	clock clock.Clock
	cfg   Config
}

func newService(db *database.DB, clk clock.Clock, cfg Config) *Service {
	return &Service{db: db, clock: clk, cfg: cfg}
}

// Filter selects entries; nil fields do not filter.
type Filter struct {
	EntityType *string
	EntityID   *uuid.UUID
	From       *time.Time
	To         *time.Time
	Window     database.Window
}

// List returns one page of the user's entries, newest first, and the total.
func (s *Service) List(ctx context.Context, p auth.Principal, f Filter) (database.Paged[Entry], error) {
	q := s.db.WithContext(ctx).Model(&Entry{}).Where("user_id = ?", p.UserID)
	var kept *database.Kept // the whole log's total is kept; a filtered one is counted
	if f.EntityType == nil && f.EntityID == nil && f.From == nil && f.To == nil {
		kept = &database.Kept{UserID: p.UserID, Plus: []string{"activity"}}
	}
	if f.EntityType != nil {
		q = q.Where("entity_type = ?", *f.EntityType)
	}
	if f.EntityID != nil {
		q = q.Where("entity_id = ?", *f.EntityID)
	}
	if f.From != nil {
		q = q.Where("created_at >= ?", f.From.UTC())
	}
	if f.To != nil {
		q = q.Where("created_at <= ?", f.To.UTC())
	}
	return database.Page(q, entryOrder, f.Window, kept)
}

// entryOrder is the log's order, newest first.
var entryOrder = database.Keyset[Entry]{List: "activity", Column: "created_at",
	Key: func(e *Entry) (time.Time, uuid.UUID) { return e.CreatedAt, e.ID }}

// Purge deletes entries older than the retention.
func (s *Service) Purge(ctx context.Context) error {
	_, err := database.DeleteInBatches[Entry](ctx, s.db.Gorm, "id", "created_at < ?", s.clock.Now().Add(-s.cfg.Retention))
	return err
}
