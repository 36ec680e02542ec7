// Package recovery owns the recycle bin: deleted items of any module wait
// in a tombstone (a full snapshot) for a while, a few per user, and come
// back through the module that owns them (a Recoverer). It knows no entity
// of its own: tasks, notes and the modules to come bury and recover theirs.
package recovery

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the recovery module.
var Module = platform.Module{
	Name: "recovery",
	Option: fx.Module("recovery",
		userdata.Contribute(
			userdata.Table("recycle_bin", "tombstones", "user_id"),
		),
		fx.Provide(
			newConfig,
			newBin,
			newService,
			func(b *bin) Bin { return b },
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			jobs.AsHousekeeping(purgeJob),
		),
	),
}

// Config is the recovery section of the configuration.
type Config struct {
	TTL           time.Duration `mapstructure:"ttl"`
	MaxItems      int           `mapstructure:"max_items"`
	PurgeInterval time.Duration `mapstructure:"purge_interval"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.TTL <= 0:
		return config.Invalid("ttl", "must be positive")
	case c.MaxItems < 1:
		return config.Invalid("max_items", "must be at least 1")
	case c.PurgeInterval <= 0:
		return config.Invalid("purge_interval", "must be positive")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	return c, cfg.Section("recovery", &c)
}

func models() platform.Models {
	return platform.Models{Module: "recovery", List: []any{&Tombstone{}}}
}
