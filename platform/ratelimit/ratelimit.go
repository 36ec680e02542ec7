// Package ratelimit enforces fixed-window request budgets per user or per IP.
// Counters live in a store shared by every API instance (the database, or
// Redis when configured) and are incremented atomically there, so N instances
// together allow the budget, not N times it.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/observability"
)

// Window is the length of one counting window: budgets are per minute.
const Window = time.Minute

// Store counts hits per key and window.
type Store interface {
	// Hit records one request for key in the window starting at start and
	// returns the number of requests in that window so far.
	Hit(ctx context.Context, key string, start time.Time) (int64, error)
}

// DBStore keeps counters in the rate_limit_counters table.
type DBStore struct{ db *database.DB }

// NewDBStore returns a store over the application database.
func NewDBStore(db *database.DB) *DBStore { return &DBStore{db: db} }

// Hit increments the counter with one upsert, atomic on both dialects.
func (s *DBStore) Hit(ctx context.Context, key string, start time.Time) (int64, error) {
	var hits int64
	err := s.db.WithContext(ctx).Raw(`INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES (?, ?, 1)
		ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
		RETURNING hits`, key, start).Scan(&hits).Error
	return hits, err
}

// Purge deletes the counters of windows that started before t.
func (s *DBStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM rate_limit_counters WHERE window_start < ?`, before)
	return res.RowsAffected, res.Error
}

// RedisStore keeps counters in Redis keys that expire with their window.
type RedisStore struct{ c *redis.Client }

// NewRedisStore connects to url (redis://...).
func NewRedisStore(url string) (*RedisStore, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	return &RedisStore{c: redis.NewClient(opts)}, nil
}

// Hit increments the counter and sets its expiry in one round trip.
func (s *RedisStore) Hit(ctx context.Context, key string, start time.Time) (int64, error) {
	k := "ratelimit:" + key + ":" + strconv.FormatInt(start.Unix(), 10)
	pipe := s.c.TxPipeline()
	incr := pipe.Incr(ctx, k)
	pipe.Expire(ctx, k, 2*Window)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return incr.Val(), nil
}

// Ping checks the connection.
func (s *RedisStore) Ping(ctx context.Context) error { return s.c.Ping(ctx).Err() }

// Close closes the connection.
func (s *RedisStore) Close() error { return s.c.Close() }

// Limiter applies the configured budgets.
type Limiter struct {
	store   Store
	budgets map[string]int
	clock   clock.Clock
	log     *zap.Logger
	limited *prometheus.CounterVec
	errors  prometheus.Counter
}

// NewLimiter returns a limiter over store with the budgets of cfg.
func NewLimiter(store Store, cfg *config.Config, clk clock.Clock, log *zap.Logger, reg prometheus.Registerer) *Limiter {
	l := &Limiter{
		store: store,
		budgets: map[string]int{
			httpx.RateGeneral: cfg.RateLimit.GeneralPerMinute,
			httpx.RateAI:      cfg.RateLimit.AIPerMinute,
			httpx.RateAuth:    cfg.RateLimit.AuthPerMinute,
		},
		clock: clk,
		log:   log.Named("ratelimit"),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "rate_limited_requests_total",
			Help: "Requests refused with 429, by rate-limit class.",
		}, []string{"class"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "rate_limit_store_errors_total",
			Help: "Rate-limit store failures (the request is let through).",
		}),
	}
	reg.MustRegister(l.limited, l.errors)
	return l
}

// Result is the outcome of one check.
type Result struct {
	Limit     int
	Remaining int
	Reset     time.Time
	Allowed   bool
}

// Allow counts one request of class for subject.
func (l *Limiter) Allow(ctx context.Context, class, subject string) (Result, error) {
	budget, ok := l.budgets[class]
	if !ok {
		return Result{Allowed: true}, nil
	}
	now := l.clock.Now()
	start := now.Truncate(Window)
	hits, err := l.store.Hit(ctx, class+":"+subject, start)
	if err != nil {
		return Result{Allowed: true}, err
	}
	remaining := budget - int(hits)
	if remaining < 0 {
		remaining = 0
	}
	return Result{Limit: budget, Remaining: remaining, Reset: start.Add(Window), Allowed: hits <= int64(budget)}, nil
}

// Middleware is the Huma middleware: it runs after authentication, so that
// per-user classes key on the user; the auth class keys on the client IP.
func (l *Limiter) Middleware(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		op := hctx.Operation()
		class := httpx.MetaString(op, httpx.MetaRateLimit)
		if class == "" {
			class = httpx.RateGeneral
		}
		if class == httpx.RateNone {
			next(hctx)
			return
		}
		subject := httpx.Subject(hctx.Context())
		if class == httpx.RateAuth || subject == "" {
			subject = "ip:" + httpx.ClientIP(hctx.Context())
		}
		res, err := l.Allow(hctx.Context(), class, subject)
		if err != nil {
			// Fail open: an unavailable counter store must not take the API down.
			l.errors.Inc()
			observability.Logger(hctx.Context(), l.log).Warn("rate limit store failed", zap.Error(err))
			next(hctx)
			return
		}
		hctx.SetHeader("X-RateLimit-Limit", strconv.Itoa(res.Limit))
		hctx.SetHeader("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
		hctx.SetHeader("X-RateLimit-Reset", strconv.FormatInt(res.Reset.Unix(), 10))
		if !res.Allowed {
			l.limited.WithLabelValues(class).Inc()
			e := apperr.New(apperr.KindTooManyRequests, apperr.CodeRateLimited,
				"rate limit of %d requests per minute exceeded", res.Limit)
			e.RetryAfter = res.Reset.Sub(l.clock.Now())
			httpx.WriteError(api, hctx, e)
			return
		}
		next(hctx)
	}
}
