package activity

import "github.com/perpetuaflow/api/modules/jobs"

// PurgeArgs deletes activity entries past their retention.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "activity_purge" }

func purgeJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[PurgeArgs](cfg.PurgeInterval, s.Purge)
}
