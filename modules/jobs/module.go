// Package jobs owns the job queue: the River client on the application
// database, the worker pool and periodic schedules (in the worker role), job
// metrics, and the platform's housekeeping jobs. Domain modules contribute
// their workers and schedules through the "workers" and "periodic" groups.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/riverqueue/rivercontrib/otelriver"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/observability"
)

// Module is the jobs module: every module's workers run on it.
var Module = platform.Module{
	Name: "jobs",
	Core: true,
	Option: fx.Module("jobs",
		fx.Provide(
			newConfig,
			newQueue,
			func(q *Queue) Enqueuer { return q },
			AsHousekeeping(idempotencyPurge),
			AsHousekeeping(rateLimitPurge),
		),
		fx.Invoke(func(lc fx.Lifecycle, q *Queue) {
			lc.Append(fx.Hook{OnStart: q.start, OnStop: q.stop})
		}),
	),
}

// Config is the jobs section of the configuration.
type Config struct {
	Workers                  int           `mapstructure:"workers"`
	MaxAttempts              int           `mapstructure:"max_attempts"`
	PollInterval             time.Duration `mapstructure:"poll_interval"`
	IdempotencyPurgeInterval time.Duration `mapstructure:"idempotency_purge_interval"`
	JobTimeout               time.Duration `mapstructure:"job_timeout"`
	RescueAfter              time.Duration `mapstructure:"rescue_after"`
	ScheduleInterval         time.Duration `mapstructure:"schedule_interval"`
	FetchCooldown            time.Duration `mapstructure:"fetch_cooldown"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.Workers < 1:
		return config.Invalid("workers", "must be at least 1")
	case c.MaxAttempts < 1:
		return config.Invalid("max_attempts", "must be at least 1")
	case c.PollInterval <= 0:
		return config.Invalid("poll_interval", "must be positive")
	case c.IdempotencyPurgeInterval <= 0:
		return config.Invalid("idempotency_purge_interval", "must be positive")
	case c.JobTimeout <= 0:
		return config.Invalid("job_timeout", "must be positive")
	case c.RescueAfter <= c.JobTimeout:
		return config.Invalid("rescue_after", "must be longer than job_timeout (%s)", c.JobTimeout)
	case c.FetchCooldown < time.Millisecond || c.FetchCooldown > c.PollInterval:
		return config.Invalid("fetch_cooldown", "must be between 1ms and poll_interval (%s)", c.PollInterval)
	case c.ScheduleInterval < 10*time.Millisecond || c.ScheduleInterval > 5*time.Second:
		return config.Invalid("schedule_interval", "must be between 10ms and 5s")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	return c, cfg.Section("jobs", &c)
}

// Queue is the River client of this process.
type Queue struct {
	client   *river.Client[*sql.Tx]
	driver   riverdriver.Driver[*sql.Tx]
	role     platform.Role
	log      *zap.Logger
	workers  []string
	interval time.Duration
	promoted prometheus.Counter
	stopping context.CancelFunc
	stopped  chan struct{}
}

type queueParams struct {
	fx.In

	Config   Config
	Role     platform.Role
	DB       *database.DB
	Log      *zap.Logger
	Registry *prometheus.Registry
	Tracing  *observability.Tracing
	Workers  []Worker   `group:"workers"`
	Periodic []Periodic `group:"periodic"`
}

// middleware wraps every insert and run: a span per job when tracing is on
// (River's OpenTelemetry middleware: the trace of the request or job that
// enqueued it rides in the job's metadata, and the run's span links to
// it), then the metrics.
func middleware(m *metrics, tracing *observability.Tracing) []rivertype.Middleware {
	if !tracing.Enabled() {
		return []rivertype.Middleware{m}
	}
	return []rivertype.Middleware{otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
		EnableTracePropagation:      true,
		EnableWorkSpanJobKindSuffix: true,
		TracerProvider:              tracing.Provider,
	}), m}
}

func newQueue(p queueParams) (*Queue, error) {
	var driver riverdriver.Driver[*sql.Tx]
	switch {
	case p.DB.Dialect == database.SQLite:
		driver = riversqlite.New(p.DB.SQL)
	case p.Role.RunsWorkers() && p.DB.Sessions != nil:
		// LISTEN/NOTIFY through a pgx connection (straight to PostgreSQL,
		// behind a pooler) wakes workers as soon as a job commits;
		// everything else goes through the shared database/sql pool, so
		// that inserts can join GORM transactions.
		driver = riverdatabasesql.NewWithPgxListener(p.DB.SQL, p.DB.Sessions)
	default:
		driver = riverdatabasesql.New(p.DB.SQL)
	}

	log := p.Log.Named("jobs")
	workers := river.NewWorkers()
	kinds := make([]string, 0, len(p.Workers))
	for _, w := range p.Workers {
		if err := w.add(workers); err != nil {
			return nil, fmt.Errorf("register worker %s: %w", w.Kind, err)
		}
		kinds = append(kinds, w.Kind)
	}
	metrics := newMetrics(p.Registry)
	metrics.log = log
	// River reports its own life at info; only its warnings and errors are ours.
	core, err := zapcore.NewIncreaseLevelCore(log.Core(), zapcore.WarnLevel)
	if err != nil {
		core = log.Core()
	}
	rc := &river.Config{
		Logger:            slog.New(zapslog.NewHandler(core)),
		MaxAttempts:       p.Config.MaxAttempts,
		FetchPollInterval: p.Config.PollInterval,
		FetchCooldown:     p.Config.FetchCooldown,
		Workers:           workers,
		Middleware:        middleware(metrics, p.Tracing),
		ErrorHandler:      &errorHandler{log: log},
		JobTimeout:        p.Config.JobTimeout,
		// A job still "running" this long after it started belonged to a worker
		// that died (kill -9, lost machine): it is run again. Every job is
		// idempotent, so a rescue never does a thing twice.
		RescueStuckJobsAfter: p.Config.RescueAfter,
	}
	if p.DB.Dialect == database.SQLite || p.DB.Sessions == nil {
		// No session to LISTEN on (SQLite; a pooler without
		// database.direct_url): workers find jobs every poll_interval.
		rc.PollOnly = true
	}
	if p.Role.RunsWorkers() {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: p.Config.Workers}}
		for _, per := range p.Periodic {
			args := per.Args
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(per.Schedule,
				func() (river.JobArgs, *river.InsertOpts) { return args(), nil },
				&river.PeriodicJobOpts{ID: per.ID, RunOnStart: per.RunOnStart}))
		}
	}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return &Queue{client: client, driver: driver, role: p.Role, log: log, workers: kinds,
		interval: p.Config.ScheduleInterval, promoted: metrics.promoted}, nil
}

func (q *Queue) start(ctx context.Context) error {
	if !q.role.RunsWorkers() {
		return nil
	}
	// fx cancels the start context once start-up is over, and River stops when
	// the context it was started with ends.
	if err := q.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	promoting, stop := context.WithCancel(context.Background())
	q.stopping, q.stopped = stop, make(chan struct{})
	go q.promoteEvery(promoting)
	q.log.Info("job workers started", zap.Strings("kinds", q.workers))
	return nil
}

// promoteEvery makes scheduled jobs (reminders, retries) available as soon
// as they are due, every schedule_interval: River's own scheduler looks only
// every 5 seconds, which would make a reminder up to 5 seconds late.
func (q *Queue) promoteEvery(ctx context.Context) {
	defer close(q.stopped)
	t := time.NewTicker(q.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := q.PromoteDue(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			q.log.Warn("promoting due jobs failed", zap.Error(err))
			failing = true
		case err == nil && failing:
			q.log.Info("promoting due jobs works again")
			failing = false
		}
	}
}

// promoteBatch bounds the jobs one promotion moves.
const promoteBatch = 5000

// PromoteDue makes the scheduled and retryable jobs whose time has come
// available (River's scheduling statement: unique jobs keep their rules)
// and wakes the workers of every process. It returns how many it moved.
func (q *Queue) PromoteDue(ctx context.Context) (int, error) {
	exec := q.driver.GetExecutor()
	res, err := exec.JobSchedule(ctx, &riverdriver.JobScheduleParams{Max: promoteBatch})
	if err != nil || len(res) == 0 {
		return 0, err
	}
	q.promoted.Add(float64(len(res)))
	if q.driver.SupportsListenNotify() {
		queues := map[string]bool{}
		var payloads []string
		for _, r := range res {
			if !queues[r.Job.Queue] {
				queues[r.Job.Queue] = true
				payloads = append(payloads, fmt.Sprintf(`{"queue": %q}`, r.Job.Queue))
			}
		}
		if err := exec.NotifyMany(ctx, &riverdriver.NotifyManyParams{Payload: payloads, Topic: "river_insert"}); err != nil {
			return len(res), fmt.Errorf("wake workers: %w", err)
		}
	}
	return len(res), nil
}

// stop lets running jobs finish; when the stop deadline passes it cancels
// them (they are retried later).
func (q *Queue) stop(ctx context.Context) error {
	if !q.role.RunsWorkers() {
		return nil
	}
	q.stopping()
	<-q.stopped
	err := q.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		q.log.Warn("jobs still running at shutdown deadline; cancelling them")
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return q.client.StopAndCancel(hard)
	}
	if err == nil {
		q.log.Info("job workers stopped")
	}
	return err
}

// InsertTx enqueues a job inside the GORM transaction tx.
func (q *Queue) InsertTx(ctx context.Context, tx *gorm.DB, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	sqlTx, err := database.SQLTx(tx)
	if err != nil {
		return nil, err
	}
	res, err := q.client.InsertTx(ctx, sqlTx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return res, nil
}

// CancelTx cancels a pending job inside tx.
func (q *Queue) CancelTx(ctx context.Context, tx *gorm.DB, jobID int64) error {
	sqlTx, err := database.SQLTx(tx)
	if err != nil {
		return err
	}
	if _, err := q.client.JobCancelTx(ctx, sqlTx, jobID); err != nil && !errors.Is(err, rivertype.ErrNotFound) {
		return fmt.Errorf("cancel job %d: %w", jobID, err)
	}
	return nil
}

// Insert enqueues a job on its own.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.client.Insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return res, nil
}

// Client exposes the River client (for tests and operational tooling).
func (q *Queue) Client() *river.Client[*sql.Tx] { return q.client }

type errorHandler struct{ log *zap.Logger }

func (h *errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.log.Warn("job failed", zap.String("kind", job.Kind), zap.Int64("job_id", job.ID),
		zap.Int("attempt", job.Attempt), zap.Error(err), traceField(ctx))
	return nil
}

func (h *errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	h.log.Error("job panicked", zap.String("kind", job.Kind), zap.Int64("job_id", job.ID),
		zap.Int("attempt", job.Attempt), zap.Any("panic", panicVal), zap.String("stack", trace), traceField(ctx))
	return nil
}

// traceField names the trace of a job's run (nothing when tracing is off).
func traceField(ctx context.Context) zap.Field {
	if id := observability.TraceID(ctx); id != "" {
		return zap.String("trace_id", id)
	}
	return zap.Skip()
}
