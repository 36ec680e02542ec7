package live

import "github.com/perpetuaflow/api/modules/jobs"

// PurgeArgs drops changes older than the retained window, and used or
// expired tickets.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "live_purge" }

func purgeJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[PurgeArgs](cfg.PurgeInterval, s.Purge)
}
