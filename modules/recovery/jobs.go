package recovery

import "github.com/perpetuaflow/api/modules/jobs"

// PurgeArgs deletes tombstones past their recovery window.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "tombstone_purge" }

func purgeJob(b *bin, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[PurgeArgs](cfg.PurgeInterval, b.Purge)
}
