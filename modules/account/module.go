// Package account owns the user's data as a whole: the export of every row
// we hold about a user into one archive, and the deletion of an account
// (closed at once, erased by a job). It knows no table but its own: every
// module hands over its tables' rows through userdata Parts (exporters and
// erasers in fx value groups), so a module added later is exported and
// erased with the rest.
package account

import (
	"path/filepath"
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the account module. Privacy law expects every deployment to
// export and erase a user's data: it cannot be left out.
var Module = platform.Module{
	Name: "account",
	Core: true,
	Option: fx.Module("account",
		fx.Provide(
			newConfig,
			newService,
			func(s *Service) Accounts { return s },
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			userdata.AsExporter(exportsExporter),
			userdata.AsEraser(exportsEraser),
			jobs.AsWorker(newExportWorker),
			jobs.AsWorker(newEraseWorker),
			jobs.AsHousekeeping(exportPurgeJob),
			events.AsSubscriber(queueExports),
			events.AsSubscriber(queueErasures),
		),
		userdata.Contribute(userdata.Kept("the record that the account was deleted: the id, the hash of the email, "+
			"when, and the totals the accounts need", "deleted_accounts")),
	),
}

// Config is the account section of the configuration.
type Config struct {
	// ExportDir is where archives are written (default DATA_DIR/exports).
	ExportDir     string        `mapstructure:"export_dir"`
	ExportTTL     time.Duration `mapstructure:"export_ttl"`
	DownloadTTL   time.Duration `mapstructure:"download_ttl"`
	PurgeInterval time.Duration `mapstructure:"purge_interval"`
	// ExportAttempts is how many times the job tries to write an archive
	// before the export is marked failed (and the user may ask again).
	ExportAttempts int `mapstructure:"export_attempts"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.ExportTTL < time.Hour:
		return config.Invalid("export_ttl", "must be at least 1h")
	case c.DownloadTTL < time.Minute || c.DownloadTTL > c.ExportTTL:
		return config.Invalid("download_ttl", "must be between 1m and export_ttl")
	case c.PurgeInterval <= 0:
		return config.Invalid("purge_interval", "must be positive")
	case c.ExportAttempts < 1 || c.ExportAttempts > 25:
		return config.Invalid("export_attempts", "must be 1-25")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	if err := cfg.Section("account", &c); err != nil {
		return c, err
	}
	if c.ExportDir == "" {
		c.ExportDir = filepath.Join(cfg.DataDir, "exports")
	}
	return c, nil
}

func models() platform.Models {
	return platform.Models{Module: "account", List: []any{&Export{}, &DeletedAccount{}}}
}
