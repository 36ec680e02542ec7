package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/database"
)

// Enqueuer inserts jobs. InsertTx joins the caller's GORM transaction, so a
// job exists exactly when the change that asked for it commits.
type Enqueuer interface {
	InsertTx(ctx context.Context, tx *gorm.DB, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	// CancelTx cancels a job that has not run yet, inside tx (a job that
	// finished already is left as it is).
	CancelTx(ctx context.Context, tx *gorm.DB, jobID int64) error
}

// Worker is one job kind's worker, contributed by a module.
type Worker struct {
	Kind string
	add  func(*river.Workers) error
}

// NewWorker wraps a River worker for the "workers" group.
func NewWorker[T river.JobArgs](w river.Worker[T]) Worker {
	var args T
	return Worker{Kind: args.Kind(), add: func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }}
}

// AsWorker annotates a constructor returning a Worker so that it joins the
// "workers" group.
func AsWorker(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"workers"`)) }

// Periodic is a job enqueued on a schedule. With several worker processes
// only the elected leader schedules it, so each run happens once.
type Periodic struct {
	// ID identifies the schedule; it must be unique.
	ID string
	// Schedule says when; use Every for a fixed interval.
	Schedule river.PeriodicSchedule
	// Args builds the job's arguments at each run.
	Args func() river.JobArgs
	// RunOnStart also runs it when the leader starts.
	RunOnStart bool
}

// Every returns a fixed-interval schedule.
func Every(d time.Duration) river.PeriodicSchedule { return river.PeriodicInterval(d) }

// CompleteTx marks the running job completed inside the GORM transaction
// tx, so that the job's effects and its completion commit together: a crash
// after the commit cannot run it again.
func CompleteTx[T river.JobArgs](ctx context.Context, tx *gorm.DB, job *river.Job[T]) error {
	sqlTx, err := database.SQLTx(tx)
	if err != nil {
		return err
	}
	// The driver type parameter only types the call; the client in ctx
	// (PostgreSQL or SQLite) does the work.
	_, err = river.JobCompleteTx[*riverdatabasesql.Driver](ctx, sqlTx, job)
	return err
}

// NewHousekeeping makes the worker and the schedule of a periodic job whose
// whole work is run (a purge, a sweep): A names the kind. The job also runs
// when the leader starts. Contribute both with AsHousekeeping.
func NewHousekeeping[A river.JobArgs](every time.Duration, run func(ctx context.Context) error) (Worker, Periodic) {
	return NewScheduled[A](Every(every), run)
}

// NewScheduled is NewHousekeeping on any schedule (DailyAt, say).
func NewScheduled[A river.JobArgs](schedule river.PeriodicSchedule, run func(ctx context.Context) error) (Worker, Periodic) {
	var args A
	return NewWorker(river.WorkFunc(func(ctx context.Context, _ *river.Job[A]) error { return run(ctx) })),
		Periodic{ID: args.Kind(), Schedule: schedule, Args: func() river.JobArgs { return args }, RunOnStart: true}
}

// DailyAt is a schedule at hour:minute UTC every day.
func DailyAt(hour, minute int) river.PeriodicSchedule { return dailyAt{hour: hour, minute: minute} }

type dailyAt struct{ hour, minute int }

// Next implements river.PeriodicSchedule.
func (d dailyAt) Next(t time.Time) time.Time {
	u := t.UTC()
	next := time.Date(u.Year(), u.Month(), u.Day(), d.hour, d.minute, 0, 0, time.UTC)
	if !next.After(u) {
		next = next.AddDate(0, 0, 1)
	}
	return next
}

// AsHousekeeping annotates a constructor returning (Worker, Periodic) so that
// they join the "workers" and "periodic" groups.
func AsHousekeeping(f any) any {
	return fx.Annotate(f, fx.ResultTags(`group:"workers"`, `group:"periodic"`))
}
