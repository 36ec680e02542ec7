package ai

import (
	"context"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform/database"
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
	if _, err := database.DeleteInBatches[Session](ctx, s.db.Gorm, "session_id", "updated_at < ?", before); err != nil {
		return err
	}
	_, err := database.DeleteInBatches[Draft](ctx, s.db.Gorm, "note_id", "created_at < ?", before)
	return err
}
