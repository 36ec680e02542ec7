// Package ratelimit enforces fixed-window request budgets per user or per IP.
// Counters live in a store shared by every API instance (the database, or
// Redis when configured) and are incremented atomically there, so N instances
// together allow the budget, not N times it.
//
// An instance does not write to the store for every request: it reserves a
// lease of several requests at once (a twentieth of the budget, at most
// 1,000, and never more than the budget has left as far as it knows) and
// spends the lease locally. The store's counter is the sum of all leases, and
// a request is allowed only when its place in a lease is within the budget,
// so the instances together never exceed the budget. The cost: a lease that
// one instance has not spent is unavailable to the others, so with N
// instances a client may be refused up to (N-1)×(lease-1) requests before
// the budget is reached (none with one instance; none with budgets under 40,
// whose leases are one request).
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Store counts reserved requests per key and window.
type Store interface {
	// Reserve adds n requests to key's count in the window starting at start
	// and returns the count after the addition.
	Reserve(ctx context.Context, key string, start time.Time, n int64) (int64, error)
}

// DBStore keeps counters in the rate_limit_counters table.
type DBStore struct{ db *database.DB }

// NewDBStore returns a store over the application database.
func NewDBStore(db *database.DB) *DBStore { return &DBStore{db: db} }

// Reserve adds to the counter with one upsert, atomic on both dialects.
func (s *DBStore) Reserve(ctx context.Context, key string, start time.Time, n int64) (int64, error) {
	var hits int64
	err := s.db.WithContext(ctx).Raw(`INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES (?, ?, ?)
		ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + excluded.hits
		RETURNING hits`, key, start, n).Scan(&hits).Error
	return hits, err
}

// Purge deletes the counters of windows that started before t.
func (s *DBStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM rate_limit_counters WHERE window_start < ?`, before)
	return res.RowsAffected, res.Error
}

// RedisStore keeps counters in Redis keys that expire with their window.
type RedisStore struct{ c *redis.Client }

// NewRedisStore connects to url (redis://...). The Redis client's own
// messages go to log at debug level: the limiter says once when the store
// becomes unreachable and once when it is back.
func NewRedisStore(url string, log *zap.Logger) (*RedisStore, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	redis.SetLogger(redisLogger{log.Named("redis")})
	// Every request waits for its counter: one dial and one quick retry at
	// most (the client's defaults, five dials 100 ms apart and three retries
	// backing off up to half a second, cost each request 0.4 s while Redis
	// is down), so that an unreachable Redis costs a request milliseconds.
	opts.DialerRetries = 1
	if !strings.Contains(url, "max_retries=") {
		opts.MaxRetries = 1
	}
	if !strings.Contains(url, "max_retry_backoff=") {
		opts.MaxRetryBackoff = 20 * time.Millisecond
	}
	return &RedisStore{c: redis.NewClient(opts)}, nil
}

// redisLogger writes the Redis client's messages through zap.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}

// Reserve adds to the counter and sets its expiry in one round trip.
func (s *RedisStore) Reserve(ctx context.Context, key string, start time.Time, n int64) (int64, error) {
	k := "ratelimit:" + key + ":" + strconv.FormatInt(start.Unix(), 10)
	pipe := s.c.TxPipeline()
	incr := pipe.IncrBy(ctx, k, n)
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

	mu     sync.Mutex
	leases map[string]*lease
	swept  time.Time // the window the leases are of

	// storeDown: the store's last answer was an error (logged once per
	// change of state, not per request).
	storeDown atomic.Bool
}

// lease is the part of a key's count in one window that this instance
// reserved and spends locally: the requests numbered first..last of the
// window, of which next is the next to hand out.
type lease struct {
	mu         sync.Mutex
	start      time.Time
	next, last int64
	exhausted  bool  // the store's count is past the budget: refuse locally
	storeCount int64 // the store's count after this instance's last reservation
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
		clock:  clk,
		log:    log.Named("ratelimit"),
		leases: map[string]*lease{},
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
	start := l.clock.Now().Truncate(Window)
	key := class + ":" + subject
	ls := l.lease(key, start)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !ls.start.Equal(start) {
		// A lease of a past window (the map is swept only on the next new
		// window): start over, keeping the lock held.
		ls.start, ls.next, ls.last, ls.exhausted, ls.storeCount = start, 1, 0, false, 0
	}
	limit := int64(budget)
	if !ls.exhausted && ls.next > ls.last {
		n := leaseSize(limit, ls.storeCount)
		count, err := l.store.Reserve(ctx, key, start, n)
		l.noteStore(ctx, err)
		if err != nil {
			return Result{Allowed: true}, err
		}
		ls.next, ls.last, ls.storeCount = count-n+1, count, count
	}
	// The request's place in the window, among all instances' requests.
	place := ls.next
	if ls.exhausted || place > limit {
		ls.exhausted = true
		return Result{Limit: budget, Remaining: 0, Reset: start.Add(Window)}, nil
	}
	ls.next++
	return Result{Limit: budget, Remaining: int(limit - place), Reset: start.Add(Window), Allowed: true}, nil
}

// noteStore logs the store's answers once per change: unreachable (then
// requests are let through, and /health/ready reports it), and back.
func (l *Limiter) noteStore(ctx context.Context, err error) {
	switch {
	case err != nil && l.storeDown.CompareAndSwap(false, true):
		observability.Logger(ctx, l.log).Error(
			"rate limit store unreachable: requests are let through unlimited until it is back", zap.Error(err))
	case err == nil && l.storeDown.CompareAndSwap(true, false):
		l.log.Info("rate limit store reachable again: limits apply")
	}
}

// leaseSize is how many requests to reserve at once: a twentieth of the
// budget (at most 1,000), and no more than the budget had left at this
// instance's last reservation.
func leaseSize(budget, storeCount int64) int64 {
	n := min(max(budget/20, 1), 1000)
	if left := budget - storeCount; left < n {
		n = max(left, 1)
	}
	return n
}

// lease returns key's lease. A new window starts with no leases (those of
// the past window are worth nothing).
func (l *Limiter) lease(key string, start time.Time) *lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	if start.After(l.swept) {
		l.leases = make(map[string]*lease, len(l.leases))
		l.swept = start
	}
	ls, ok := l.leases[key]
	if !ok {
		ls = &lease{start: start, next: 1}
		l.leases[key] = ls
	}
	return ls
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
			// Fail open: an unavailable counter store must not take the API
			// down (and /health/ready says it is unreachable).
			l.errors.Inc()
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
