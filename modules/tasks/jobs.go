package tasks

import (
	"context"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/jobs"
)

// RecurringGenerateArgs makes the tasks of templates whose time has come.
type RecurringGenerateArgs struct{}

// Kind implements river.JobArgs.
func (RecurringGenerateArgs) Kind() string { return "recurring_task_generate" }

func recurringJob(s *Service, cfg Config, log *zap.Logger) (jobs.Worker, jobs.Periodic) {
	log = log.Named("tasks")
	return jobs.NewHousekeeping[RecurringGenerateArgs](cfg.RecurringInterval, func(ctx context.Context) error {
		n, err := s.GenerateDue(ctx, cfg.GenerateAhead)
		if n > 0 {
			log.Info("recurring tasks generated", zap.Int("count", n))
		}
		return err
	})
}
