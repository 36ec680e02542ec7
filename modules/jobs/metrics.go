package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/observability"
)

// metrics counts inserted and worked jobs by kind, and times the work.
type metrics struct {
	river.MiddlewareDefaults

	inserted  *prometheus.CounterVec
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	lag       *prometheus.HistogramVec
	promoted  prometheus.Counter
	// log, when set, is given to traced runs as their context's logger,
	// naming the trace.
	log *zap.Logger
}

var (
	_ rivertype.JobInsertMiddleware = (*metrics)(nil)
	_ rivertype.WorkerMiddleware    = (*metrics)(nil)
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "jobs_inserted_total",
			Help: "Jobs enqueued, by kind.",
		}, []string{"kind"}),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "jobs_processed_total",
			Help: "Job runs, by kind and outcome (completed, failed, snoozed, cancelled).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: observability.Namespace, Name: "job_duration_seconds",
			Help:    "Job run time, by kind.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
		}, []string{"kind"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: observability.Namespace, Name: "job_lag_seconds",
			Help:    "How late a job's run began after it was due (its scheduled time), by kind.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
		}, []string{"kind"}),
		promoted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "jobs_promoted_total",
			Help: "Scheduled and retryable jobs made available when due.",
		}),
	}
	reg.MustRegister(m.inserted, m.processed, m.duration, m.lag, m.promoted)
	return m
}

func (m *metrics) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error),
) ([]*rivertype.JobInsertResult, error) {
	res, err := doInner(ctx)
	if err == nil {
		for _, p := range params {
			m.inserted.WithLabelValues(p.Kind).Inc()
		}
	}
	return res, err
}

func (m *metrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	if id := observability.TraceID(ctx); id != "" && m.log != nil {
		ctx = observability.WithLogger(ctx, m.log.With(zap.String("kind", job.Kind), zap.Int64("job_id", job.ID),
			zap.String("trace_id", id)))
	}
	if job.Attempt <= 1 {
		// A retry's wait is its backoff, not lag.
		m.lag.WithLabelValues(job.Kind).Observe(max(0, start.Sub(job.ScheduledAt).Seconds()))
	}
	err := doInner(ctx)
	m.duration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
	outcome := "completed"
	var snooze *river.JobSnoozeError
	var cancel *river.JobCancelError
	switch {
	case err == nil:
	case errors.As(err, &snooze):
		outcome = "snoozed"
	case errors.As(err, &cancel):
		outcome = "cancelled"
	default:
		outcome = "failed"
	}
	m.processed.WithLabelValues(job.Kind, outcome).Inc()
	return err
}
