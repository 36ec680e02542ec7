package tasks

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform/database"
)

// RecurringGenerateArgs makes the tasks of templates whose time has come.
type RecurringGenerateArgs struct{}

// Kind implements river.JobArgs.
func (RecurringGenerateArgs) Kind() string { return "recurring_task_generate" }

type recurringWorker struct {
	river.WorkerDefaults[RecurringGenerateArgs]
	svc *Service
	log *zap.Logger
}

func newRecurringWorker(svc *Service, log *zap.Logger) jobs.Worker {
	return jobs.NewWorker[RecurringGenerateArgs](&recurringWorker{svc: svc, log: log.Named("tasks")})
}

func (w *recurringWorker) Work(ctx context.Context, _ *river.Job[RecurringGenerateArgs]) error {
	n, err := w.svc.GenerateDue(ctx, w.svc.cfg.GenerateAhead)
	if n > 0 {
		w.log.Info("recurring tasks generated", zap.Int("count", n))
	}
	return err
}

func recurringSchedule(cfg Config) jobs.Periodic {
	return jobs.Periodic{ID: "recurring_task_generate", Schedule: jobs.Every(cfg.RecurringInterval),
		Args: func() river.JobArgs { return RecurringGenerateArgs{} }, RunOnStart: true}
}

// PurgeArgs deletes expired tombstones and old activity rows.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "tombstone_purge" }

type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	svc        *Service
	tombstones *tombstones
	db         *database.DB
}

func newPurgeWorker(svc *Service, ts *tombstones, db *database.DB) jobs.Worker {
	return jobs.NewWorker[PurgeArgs](&purgeWorker{svc: svc, tombstones: ts, db: db})
}

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	if _, err := w.tombstones.Purge(ctx, w.db.Gorm); err != nil {
		return fmt.Errorf("purge tombstones: %w", err)
	}
	return nil
}

func purgeSchedule(cfg Config) jobs.Periodic {
	return jobs.Periodic{ID: "tombstone_purge", Schedule: jobs.Every(cfg.PurgeInterval),
		Args: func() river.JobArgs { return PurgeArgs{} }, RunOnStart: true}
}

// ActivityPurgeArgs deletes activity rows past their retention.
type ActivityPurgeArgs struct{}

// Kind implements river.JobArgs.
func (ActivityPurgeArgs) Kind() string { return "activity_purge" }

type activityPurgeWorker struct {
	river.WorkerDefaults[ActivityPurgeArgs]
	svc *Service
}

func newActivityPurgeWorker(svc *Service) jobs.Worker {
	return jobs.NewWorker[ActivityPurgeArgs](&activityPurgeWorker{svc: svc})
}

func (w *activityPurgeWorker) Work(ctx context.Context, _ *river.Job[ActivityPurgeArgs]) error {
	if _, err := w.svc.PurgeActivity(ctx); err != nil {
		return fmt.Errorf("purge activity: %w", err)
	}
	return nil
}

func activityPurgeSchedule(cfg Config) jobs.Periodic {
	return jobs.Periodic{ID: "activity_purge", Schedule: jobs.Every(cfg.PurgeInterval),
		Args: func() river.JobArgs { return ActivityPurgeArgs{} }, RunOnStart: true}
}
