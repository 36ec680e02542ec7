package billing

import (
	"context"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/jobs"
)

// CreditExpireArgs writes off the credits whose time has passed (the day's
// credits at UTC midnight) and grants the new day's to daily users.
type CreditExpireArgs struct{}

// Kind implements river.JobArgs.
func (CreditExpireArgs) Kind() string { return "credit_expire" }

func creditExpireJob(l *Ledger, log *zap.Logger) (jobs.Worker, jobs.Periodic) {
	log = log.Named("billing")
	return jobs.NewScheduled[CreditExpireArgs](jobs.DailyAt(0, 0), func(ctx context.Context) error {
		n, err := l.ExpireDue(ctx)
		if n > 0 {
			log.Info("credits expired and granted", zap.Int("users", n))
		}
		return err
	})
}

// SubscriptionCheckArgs ends the subscriptions whose period or grace is
// over.
type SubscriptionCheckArgs struct{}

// Kind implements river.JobArgs.
func (SubscriptionCheckArgs) Kind() string { return "subscription_check" }

func subscriptionCheckJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[SubscriptionCheckArgs](cfg.SubscriptionCheckInterval, func(ctx context.Context) error {
		_, err := s.EndLapsed(ctx)
		return err
	})
}

// CreditHoldReleaseArgs gives back the credit holds still open after their
// time (their request's process died holding them).
type CreditHoldReleaseArgs struct{}

// Kind implements river.JobArgs.
func (CreditHoldReleaseArgs) Kind() string { return "credit_hold_release" }

func creditHoldReleaseJob(l *Ledger, cfg Config, log *zap.Logger) (jobs.Worker, jobs.Periodic) {
	log = log.Named("billing")
	return jobs.NewHousekeeping[CreditHoldReleaseArgs](cfg.HoldReleaseInterval, func(ctx context.Context) error {
		n, err := l.ReleaseLapsed(ctx)
		if n > 0 {
			log.Warn("lapsed credit holds released", zap.Int("holds", n))
		}
		return err
	})
}
