package activity

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// record writes one entry for every Recordable event, in the publisher's
// transaction, whichever module published it.
func record(clk clock.Clock) events.Subscription {
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
		row := Entry{ID: id.New(), UserID: en.UserID, EntityType: en.EntityType, EntityID: en.EntityID,
			Action: en.Action, Source: source, ExtraData: string(data), CreatedAt: clk.Now()}
		if rid := observability.RequestID(ctx); rid != "" {
			row.RequestID = &rid
		}
		// Nothing reads the row back in this transaction: in a request's
		// Unit it goes out with the next statement (the idempotency record).
		return database.InsertLater(tx, &row)
	})
}
