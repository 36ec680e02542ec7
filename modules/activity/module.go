// Package activity owns the activity log: every change a user makes (or the
// system or the AI makes for them) becomes one row, written in the
// transaction of the change from the events every module publishes
// (events.Recordable), so no module calls the log. It serves GET /activity
// and purges rows past their retention.
package activity

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the activity module.
var Module = platform.Module{
	Name: "activity",
	Option: fx.Module("activity",
		userdata.Contribute(
			userdata.Table("activity", "activity_log", "user_id"),
		),
		fx.Provide(
			newConfig,
			newService,
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			events.AsSubscriber(record),
			jobs.AsHousekeeping(purgeJob),
		),
	),
}

// Config is the activity section of the configuration.
type Config struct {
	Retention     time.Duration `mapstructure:"retention"`
	PurgeInterval time.Duration `mapstructure:"purge_interval"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.Retention <= 0:
		return config.Invalid("retention", "must be positive")
	case c.PurgeInterval <= 0:
		return config.Invalid("purge_interval", "must be positive")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	return c, cfg.Section("activity", &c)
}

func models() platform.Models {
	return platform.Models{Module: "activity", List: []any{&Entry{}}}
}
