package account

import (
	"context"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/jobs"
)

// ExportArgs writes the archive of one export.
type ExportArgs struct {
	ExportID uuid.UUID `json:"export_id"`
}

// Kind implements river.JobArgs.
func (ExportArgs) Kind() string { return "account_export" }

type exportWorker struct {
	river.WorkerDefaults[ExportArgs]
	svc *Service
}

func newExportWorker(s *Service) jobs.Worker {
	return jobs.NewWorker[ExportArgs](&exportWorker{svc: s})
}

func (w *exportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	err := w.svc.runExport(ctx, job.Args.ExportID)
	if err != nil && job.Attempt >= job.MaxAttempts {
		w.svc.log.Error("export failed after its last attempt", zap.String("export_id", job.Args.ExportID.String()),
			zap.Error(err))
		if ferr := w.svc.failExport(ctx, job.Args.ExportID, err); ferr != nil {
			return ferr
		}
	}
	return err
}

// EraseArgs erases every row of a closed account.
type EraseArgs struct {
	UserID uuid.UUID `json:"user_id"`
}

// Kind implements river.JobArgs.
func (EraseArgs) Kind() string { return "account_erase" }

type eraseWorker struct {
	river.WorkerDefaults[EraseArgs]
	svc *Service
}

func newEraseWorker(s *Service) jobs.Worker {
	return jobs.NewWorker[EraseArgs](&eraseWorker{svc: s})
}

func (w *eraseWorker) Work(ctx context.Context, job *river.Job[EraseArgs]) error {
	_, err := w.svc.Erase(ctx, job.Args.UserID)
	return err
}

// ExportPurgeArgs deletes the archives whose week is over.
type ExportPurgeArgs struct{}

// Kind implements river.JobArgs.
func (ExportPurgeArgs) Kind() string { return "account_export_purge" }

func exportPurgeJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[ExportPurgeArgs](cfg.PurgeInterval, s.PurgeExports)
}
