package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/idempotency"
	"github.com/perpetuaflow/api/platform/ratelimit"
)

// IdempotencyPurgeArgs deletes stored Idempotency-Key answers past their TTL.
type IdempotencyPurgeArgs struct{}

// Kind implements river.JobArgs.
func (IdempotencyPurgeArgs) Kind() string { return "idempotency_purge" }

type idempotencyPurgeWorker struct {
	river.WorkerDefaults[IdempotencyPurgeArgs]
	store *idempotency.Store
	log   *zap.Logger
}

func newIdempotencyPurgeWorker(store *idempotency.Store, log *zap.Logger) Worker {
	return NewWorker[IdempotencyPurgeArgs](&idempotencyPurgeWorker{store: store, log: log.Named("jobs")})
}

func (w *idempotencyPurgeWorker) Work(ctx context.Context, _ *river.Job[IdempotencyPurgeArgs]) error {
	n, err := w.store.Purge(ctx)
	if err != nil {
		return fmt.Errorf("purge idempotency keys: %w", err)
	}
	w.log.Debug("idempotency keys purged", zap.Int64("deleted", n))
	return nil
}

func idempotencyPurgeSchedule(cfg Config) Periodic {
	return Periodic{ID: "idempotency_purge", Schedule: Every(cfg.IdempotencyPurgeInterval),
		Args: func() river.JobArgs { return IdempotencyPurgeArgs{} }, RunOnStart: true}
}

// RateLimitPurgeArgs deletes rate-limit counters of past windows.
type RateLimitPurgeArgs struct{}

// Kind implements river.JobArgs.
func (RateLimitPurgeArgs) Kind() string { return "ratelimit_purge" }

type rateLimitPurgeWorker struct {
	river.WorkerDefaults[RateLimitPurgeArgs]
	store *ratelimit.DBStore
	clock clock.Clock
}

func newRateLimitPurgeWorker(store *ratelimit.DBStore, clk clock.Clock) Worker {
	return NewWorker[RateLimitPurgeArgs](&rateLimitPurgeWorker{store: store, clock: clk})
}

func (w *rateLimitPurgeWorker) Work(ctx context.Context, _ *river.Job[RateLimitPurgeArgs]) error {
	if _, err := w.store.Purge(ctx, w.clock.Now().Add(-2*ratelimit.Window)); err != nil {
		return fmt.Errorf("purge rate-limit counters: %w", err)
	}
	return nil
}

func rateLimitPurgeSchedule() Periodic {
	return Periodic{ID: "ratelimit_purge", Schedule: Every(10 * time.Minute),
		Args: func() river.JobArgs { return RateLimitPurgeArgs{} }}
}
