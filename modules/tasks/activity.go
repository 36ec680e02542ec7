package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// recordActivity writes one activity row for every Recordable event, in the
// publisher's transaction: no module calls the log, they publish events.
func recordActivity(clk clock.Clock) events.Subscription {
	return events.OnEvery("activity", func(ctx context.Context, tx *gorm.DB, e any) error {
		r, ok := e.(events.Recordable)
		if !ok {
			return nil
		}
		en := r.ActivityEntry()
		source := en.Source
		if source == "" {
			source = events.SourceOf(ctx)
		}
		extra := en.Extra
		if extra == nil {
			extra = map[string]any{}
		}
		data, err := json.Marshal(extra)
		if err != nil {
			return fmt.Errorf("activity extra: %w", err)
		}
		row := Activity{ID: id.New(), UserID: en.UserID, EntityType: en.EntityType, EntityID: en.EntityID,
			Action: en.Action, Source: source, ExtraData: string(data), CreatedAt: clk.Now()}
		if rid := observability.RequestID(ctx); rid != "" {
			row.RequestID = &rid
		}
		return tx.Create(&row).Error
	})
}

// ActivityFilter selects activity rows; nil fields do not filter.
type ActivityFilter struct {
	EntityType *string
	EntityID   *uuid.UUID
	From       *time.Time
	To         *time.Time
	Offset     int
	Limit      int
}

// Activity lists the user's activity, newest first.
func (s *Service) Activity(ctx context.Context, p auth.Principal, f ActivityFilter) ([]Activity, int64, error) {
	q := s.db.WithContext(ctx).Model(&Activity{}).Where("user_id = ?", p.UserID)
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
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, err
	}
	var out []Activity
	err := q.Order("created_at DESC, id DESC").Offset(f.Offset).Limit(f.Limit).Find(&out).Error
	return out, total, err
}

// PurgeActivity deletes activity rows older than the retention.
func (s *Service) PurgeActivity(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Where("created_at < ?", s.clock.Now().Add(-s.cfg.ActivityRetention)).Delete(&Activity{})
	return res.RowsAffected, res.Error
}
