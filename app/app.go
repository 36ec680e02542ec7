// Package app composes the platform and the domain modules into one process
// for a deployment role, and is the command line of the binary (perpetua
// --help lists the commands: serve, migrate [status], healthcheck, config
// check|print, users …, version).
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/dig"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/observability"
)

// ParseRole validates the role against the configuration: the embedded
// SQLite can only be used by one process, so it runs with role all.
func ParseRole(s string, cfg *config.Config) (platform.Role, error) {
	r := platform.Role(s)
	switch r {
	case platform.RoleAPI, platform.RoleWorker, platform.RoleAll:
	default:
		return "", fmt.Errorf("--role: must be api, worker or all, got %q", s)
	}
	if cfg.IsSQLite() && r != platform.RoleAll {
		return "", fmt.Errorf("--role=%s needs PostgreSQL (DATABASE_URL=postgres://...): the embedded SQLite serves one process, run --role=all", s)
	}
	return r, nil
}

// StartError reduces an fx start-up failure to its root cause, so the
// process stops with one line (a configuration error names its key).
func StartError(err error) error {
	var ke *config.KeyError
	if errors.As(err, &ke) {
		return ke
	}
	return dig.RootCause(err)
}

// Migrate applies the migrations and exits (the migrate command).
func Migrate(ctx context.Context, cfg *config.Config) error {
	log, err := observability.NewLogger(cfg)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	db, err := database.Open(ctx, cfg, log, clock.System{})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx, migrations.All(), migrations.River)
}

// healthcheck asks the local process whether it is ready: the API port for
// roles that serve it, the ops port for the worker. Container images have no
// curl; this is their HEALTHCHECK.
func healthcheck(cfg *config.Config, r platform.Role) error {
	port := cfg.Server.Port
	if !r.ServesAPI() {
		port = cfg.Server.OpsPort
	}
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health/ready", port))
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", res.StatusCode)
	}
	return nil
}
