// Package app composes the platform and the domain modules into one process
// for a deployment role, and is the command line of the binary:
//
//	perpetua [serve] [--role=api|worker|all] [--config=file.yaml]
//	perpetua migrate [--config=file.yaml]
//	perpetua healthcheck [--role=...] [--config=file.yaml]
//	perpetua version
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/observability"
)

// Version is set at build time (-ldflags "-X github.com/perpetuaflow/api/app.Version=...").
var Version = "dev"

const usage = `Usage:
  perpetua [serve] [--role=api|worker|all] [--config=FILE]   run the server (default role: all)
  perpetua migrate [--config=FILE]                          apply database migrations and exit
  perpetua healthcheck [--role=ROLE] [--config=FILE]        exit 0 when the local process is ready (for containers)
  perpetua version                                          print the version

Configuration: configs/default.yaml < --config file < environment (see README).
`

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	started := time.Now()
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("perpetua", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	role := fs.String("role", string(platform.RoleAll), "deployment role: api, worker or all")
	file := fs.String("config", "", "YAML configuration file layered over the defaults")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "perpetua: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, Version)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve", "migrate", "healthcheck":
	default:
		fmt.Fprintf(stderr, "perpetua: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}

	cfg, err := config.Load(config.Options{File: *file})
	if err != nil {
		fmt.Fprintln(stderr, "perpetua: "+err.Error())
		return 1
	}
	if cmd == "migrate" {
		if err := Migrate(context.Background(), cfg); err != nil {
			fmt.Fprintln(stderr, "perpetua: "+err.Error())
			return 1
		}
		fmt.Fprintln(stdout, "migrations applied")
		return 0
	}

	r, err := ParseRole(*role, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "perpetua: "+err.Error())
		return 2
	}
	if cmd == "healthcheck" {
		return healthcheck(cfg, r, stderr)
	}
	if limit := cfg.MemoryLimitBytes(); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	var log *zap.Logger
	app := fx.New(Options(cfg, r), fx.Populate(&log))
	if err := app.Err(); err != nil {
		fmt.Fprintln(stderr, "perpetua: "+StartError(err).Error())
		return 1
	}
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		fmt.Fprintln(stderr, "perpetua: "+StartError(err).Error())
		return 1
	}
	log.Info("ready", zap.String("role", string(r)), zap.String("version", Version),
		zap.Duration("startup", time.Since(started)))
	sig := <-app.Wait()
	log.Info("shutting down", zap.String("signal", sig.Signal.String()))
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		fmt.Fprintln(stderr, "perpetua: shutdown: "+err.Error())
		return 1
	}
	return sig.ExitCode
}

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
func healthcheck(cfg *config.Config, r platform.Role, stderr io.Writer) int {
	port := cfg.Server.Port
	if !r.ServesAPI() {
		port = cfg.Server.OpsPort
	}
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health/ready", port))
	if err != nil {
		fmt.Fprintln(stderr, "perpetua: healthcheck: "+err.Error())
		return 1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "perpetua: healthcheck: status %d\n", res.StatusCode)
		return 1
	}
	return 0
}
