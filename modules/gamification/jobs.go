package gamification

import (
	"context"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/jobs"
)

// StreakCalculateArgs breaks the streaks of users whose local day moved
// past a day without completions.
type StreakCalculateArgs struct{}

// Kind implements river.JobArgs.
func (StreakCalculateArgs) Kind() string { return "streak_calculate" }

// It runs every streak_check_interval, so each user is looked at shortly
// after their own local midnight, whatever their zone.
func streakJob(s *Service, cfg Config, log *zap.Logger) (jobs.Worker, jobs.Periodic) {
	log = log.Named("gamification")
	return jobs.NewHousekeeping[StreakCalculateArgs](cfg.StreakCheckInterval, func(ctx context.Context) error {
		n, err := s.BreakStaleStreaks(ctx)
		if n > 0 {
			log.Info("stale streaks broken", zap.Int("count", n))
		}
		return err
	})
}

// FocusAutoEndArgs ends focus sessions that ran for the maximum duration.
type FocusAutoEndArgs struct{}

// Kind implements river.JobArgs.
func (FocusAutoEndArgs) Kind() string { return "focus_autoend" }

func focusAutoEndJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[FocusAutoEndArgs](cfg.FocusAutoEndInterval, func(ctx context.Context) error {
		_, err := s.AutoEndFocus(ctx)
		return err
	})
}
