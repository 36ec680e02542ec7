package jobs

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/idempotency"
	"github.com/perpetuaflow/api/platform/ratelimit"
)

// IdempotencyPurgeArgs deletes stored Idempotency-Key answers past their TTL.
type IdempotencyPurgeArgs struct{}

// Kind implements river.JobArgs.
func (IdempotencyPurgeArgs) Kind() string { return "idempotency_purge" }

func idempotencyPurge(store *idempotency.Store, cfg Config, log *zap.Logger) (Worker, Periodic) {
	log = log.Named("jobs")
	return NewHousekeeping[IdempotencyPurgeArgs](cfg.IdempotencyPurgeInterval, func(ctx context.Context) error {
		n, err := store.Purge(ctx)
		if err != nil {
			return fmt.Errorf("purge idempotency keys: %w", err)
		}
		log.Debug("idempotency keys purged", zap.Int64("deleted", n))
		return nil
	})
}

// RateLimitPurgeArgs deletes rate-limit counters of past windows.
type RateLimitPurgeArgs struct{}

// Kind implements river.JobArgs.
func (RateLimitPurgeArgs) Kind() string { return "ratelimit_purge" }

func rateLimitPurge(store *ratelimit.DBStore, clk clock.Clock) (Worker, Periodic) {
	return NewHousekeeping[RateLimitPurgeArgs](10*time.Minute, func(ctx context.Context) error {
		if _, err := store.Purge(ctx, clk.Now().Add(-2*ratelimit.Window)); err != nil {
			return fmt.Errorf("purge rate-limit counters: %w", err)
		}
		return nil
	})
}
