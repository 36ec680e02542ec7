package ai

import (
	"context"

	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/jobs"
)

// PurgeArgs drops the request counts of sign-in sessions and the task drafts
// of notes that have not been touched for ai.retention: a session whose
// refresh token has long expired asks nothing more, and a draft that old is
// not what the user remembers.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "ai_purge" }

func purgeJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[PurgeArgs](cfg.PurgeInterval, s.purge)
}

func (s *Service) purge(ctx context.Context) error {
	before := s.clock.Now().Add(-s.cfg.Retention)
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("updated_at < ?", before).Delete(&Session{}).Error; err != nil {
			return err
		}
		return tx.Where("created_at < ?", before).Delete(&Draft{}).Error
	})
}
