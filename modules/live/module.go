// Package live sends each change of a user's data to their open apps as it
// commits (server-sent events, across instances), and lets an app that was
// offline catch up with only what changed (sync tokens). Both read the
// per-user change log that database triggers write in the writer's
// transaction (migrations/202612062000_changes.go); the modules that own
// the entities turn ids into their API shapes (changes.Entity).
package live

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the live module.
var Module = platform.Module{
	Name: "live",
	Option: fx.Module("live",
		userdata.Contribute(
			userdata.Derived("the order of the user's changes, for live updates and sync: derived from the exported rows",
				"changes", "user_id"),
			userdata.Derived("the user's position in that order", "sync_heads", "user_id"),
			userdata.Secret("single-use tickets that open a live stream: secrets that live 30 s", "event_tickets", "user_id"),
			userdata.Secret("which instances hold a live stream of the user now (leased for a minute)", "live_listeners", "user_id"),
		),
		fx.Provide(
			newConfig,
			newMetrics,
			newFanout,
			newHub,
			newService,
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			jobs.AsHousekeeping(purgeJob),
		),
		fx.Invoke(startHub, startFanout),
	),
}

// Config is the live section of the configuration.
type Config struct {
	// Retention is how long changes are kept: a stream resumes, and a sync
	// token works, within it.
	Retention     time.Duration `mapstructure:"retention"`
	MaxStreams    int           `mapstructure:"max_streams_per_user"`
	Heartbeat     time.Duration `mapstructure:"heartbeat"`
	TicketTTL     time.Duration `mapstructure:"ticket_ttl"`
	WriteTimeout  time.Duration `mapstructure:"write_timeout"`
	PollInterval  time.Duration `mapstructure:"poll_interval"`
	PurgeInterval time.Duration `mapstructure:"purge_interval"`
	// MaxSyncChanges bounds one incremental sync answer (has_more says
	// there is more).
	MaxSyncChanges int `mapstructure:"max_sync_changes"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.Retention < time.Minute:
		return config.Invalid("retention", "must be at least 1m")
	case c.MaxStreams < 1 || c.MaxStreams > 100:
		return config.Invalid("max_streams_per_user", "must be 1-100")
	case c.Heartbeat < time.Second || c.Heartbeat > 5*time.Minute:
		return config.Invalid("heartbeat", "must be between 1s and 5m")
	case c.TicketTTL < time.Second || c.TicketTTL > 10*time.Minute:
		return config.Invalid("ticket_ttl", "must be between 1s and 10m")
	case c.WriteTimeout < 100*time.Millisecond:
		return config.Invalid("write_timeout", "must be at least 100ms")
	case c.PollInterval < 10*time.Millisecond:
		return config.Invalid("poll_interval", "must be at least 10ms")
	case c.PurgeInterval <= 0:
		return config.Invalid("purge_interval", "must be positive")
	case c.MaxSyncChanges < 100:
		return config.Invalid("max_sync_changes", "must be at least 100")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	return c, cfg.Section("live", &c)
}

func models() platform.Models {
	return platform.Models{Module: "live", List: []any{&Change{}, &Head{}, &Ticket{}}}
}
