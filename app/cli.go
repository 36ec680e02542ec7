package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/observability"
	"github.com/perpetuaflow/api/platform/server"
)

// Build information, set at build time by the Makefile and the Dockerfile:
//
//	-ldflags "-X github.com/perpetuaflow/api/app.Version=1.0.0 -X …app.Commit=abc1234 -X …app.BuildDate=2026-12-06T12:00:00Z"
//
// A build without them reads the commit and its time from the Go build
// information when the source was a git checkout.
var (
	Version   = "dev"
	Commit    = ""
	BuildDate = ""
)

// VersionLine is what `perpetua version` and `--version` print:
// perpetua <semver> (<commit>, <build date>, <go version>).
func VersionLine() string {
	commit, date := Commit, BuildDate
	if info, ok := debug.ReadBuildInfo(); ok && (commit == "" || date == "") {
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value[:min(len(s.Value), 12)]
			case s.Key == "vcs.time" && date == "":
				date = s.Value
			}
		}
	}
	if commit == "" {
		commit = "unknown commit"
	}
	if date == "" {
		date = "unknown date"
	}
	return fmt.Sprintf("perpetua %s (%s, %s, %s)", Version, commit, date, runtime.Version())
}

// usageError is a command line that cannot be run as written: exit 2.
type usageError struct{ error }

// exitError carries an exit code chosen by a command (the server's signal).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// cli holds what every command shares: where to write and the flags.
type cli struct {
	stdout, stderr io.Writer
	configFile     string
	role           string
	asJSON         bool
	started        time.Time
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, started: time.Now()}
	root := c.commands()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintln(stderr, "perpetua: "+err.Error()+" (perpetua --help lists the commands and flags)")
		return 2
	default:
		fmt.Fprintln(stderr, "perpetua: "+err.Error())
		return 1
	}
}

// isCobraUsage recognises cobra's own complaints about a command line
// (unknown command or flag, wrong number of arguments).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "requires at most", "required flag"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

const rootLong = `Perpetua Flow API: one binary that runs the HTTP API, the job workers, or both.

Configuration: configs/default.yaml < --config file (or PERPETUA_CONFIG) < environment
variables (DATABASE_URL, PORT, …; every key also as PERPETUA_<SECTION>_<KEY>).
'perpetua config print' shows the effective configuration and where each value came from.`

func (c *cli) commands() *cobra.Command {
	root := &cobra.Command{
		Use:           "perpetua",
		Short:         "Perpetua Flow API server and operator commands",
		Long:          rootLong,
		Version:       VersionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(*cobra.Command, []string) error { return c.serve() },
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&c.configFile, "config", "", "YAML configuration file layered over the defaults")
	c.roleFlag(root, "deployment role: api, worker or all")
	root.CompletionOptions.DisableDefaultCmd = true

	serve := &cobra.Command{
		Use:     "serve",
		Short:   "Run the server (the default command)",
		Example: "  perpetua serve --role=api",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return c.serve() },
	}
	c.roleFlag(serve, "deployment role: api, worker or all")

	health := &cobra.Command{
		Use:     "healthcheck",
		Short:   "Exit 0 when the local process is ready (a container's HEALTHCHECK)",
		Example: "  perpetua healthcheck --role=worker",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return c.healthcheck() },
	}
	c.roleFlag(health, "the role of the process to ask: api, worker or all")

	version := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  noArgs,
		Run:   func(*cobra.Command, []string) { fmt.Fprintln(c.stdout, VersionLine()) },
	}

	root.AddCommand(serve, c.migrateCommand(), health, c.configCommand(), c.usersCommand(), version)
	return root
}

// roleFlag gives cmd the --role flag (all by default).
func (c *cli) roleFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&c.role, "role", string(platform.RoleAll), usage)
}

// refused is the error of a process that will not run with cfg: the first
// problem Check found, and where to see them all.
func refused(problems []error) error {
	return fmt.Errorf("%w (perpetua config check lists every problem)", problems[0])
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) > 0 && cmd.HasSubCommands():
		return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	case len(args) > 0:
		return usageError{fmt.Errorf("%s: unexpected argument %q", cmd.CommandPath(), args[0])}
	}
	return nil
}

// exactArgs wants n positional arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s: wants %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

// load reads and checks the platform part of the configuration.
func (c *cli) load() (*config.Config, error) {
	return config.Load(config.Options{File: c.configFile})
}

// serve runs the server until a signal: every module's configuration is
// built and checked before anything touches the database.
func (c *cli) serve() error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	r, err := ParseRole(c.role, cfg)
	if err != nil {
		return usageError{err}
	}
	// Every module's configuration is built and checked against a database
	// in memory first: a process that refuses to start has not created,
	// connected to or migrated its database.
	if problems := check(cfg, r, cfg.DataDir); len(problems) > 0 {
		return refused(problems)
	}
	if err := portsFree(cfg, r); err != nil {
		return err
	}
	if limit := cfg.MemoryLimitBytes(); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	// The serving process's lines are batched (log.flush_interval); every
	// way out of here writes what waits.
	log, stopLog, err := observability.NewBatchedLogger(cfg)
	if err != nil {
		return err
	}
	defer stopLog() //nolint:errcheck // standard error is all there is to report it on
	var ep endpoints
	app := fx.New(Options(cfg, r), fx.Replace(log), fx.Invoke(func(e endpoints) { ep = e }))
	if err := app.Err(); err != nil {
		return StartError(err)
	}
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return StartError(err)
	}
	fields := []zap.Field{zap.String("role", string(r)), zap.String("version", Version),
		zap.Duration("startup", time.Since(c.started))}
	if ep.API != nil {
		api := localURL(ep.API.Addr())
		fields = append(fields, zap.String("api", api))
		if cfg.Server.DocsEnabled {
			fields = append(fields, zap.String("docs", api+"/docs"))
		}
	}
	fields = append(fields, zap.String("ops", localURL(ep.Ops.Addr())+"/metrics"))
	log.Info("ready", fields...)
	sig := <-app.Wait()
	log.Info("shutting down", zap.String("signal", sig.Signal.String()))
	stopCtx, cancelStop := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if sig.ExitCode != 0 {
		return exitError{sig.ExitCode}
	}
	return nil
}

func (c *cli) healthcheck() error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	r, err := ParseRole(c.role, cfg)
	if err != nil {
		return usageError{err}
	}
	return healthcheck(cfg, r)
}

func (c *cli) migrateCommand() *cobra.Command {
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and exit",
		Long: "Apply pending database migrations and exit. The whole configuration is checked first:\n" +
			"a configuration the server would refuse migrates nothing.",
		Example: "  DATABASE_URL=postgres://… perpetua migrate\n  perpetua migrate status",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			if problems := Check(cfg, platform.RoleAll); len(problems) > 0 {
				return refused(problems)
			}
			if err := Migrate(context.Background(), cfg); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "migrations applied")
			return nil
		},
	}
	status := &cobra.Command{
		Use:     "status",
		Short:   "List applied and pending migrations",
		Example: "  perpetua migrate status --json",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return c.migrateStatus() },
	}
	status.Flags().BoolVar(&c.asJSON, "json", false, "print JSON")
	migrate.AddCommand(status)
	return migrate
}

func (c *cli) migrateStatus() error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	ctx := context.Background()
	db, err := database.Open(ctx, cfg, zap.NewNop(), clock.System{})
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := migrations.Status(ctx, db)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(map[string]any{"migrations": list})
	}
	pending := 0
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MIGRATION\tSTATE")
	for _, m := range list {
		state := "applied"
		if !m.Applied {
			state, pending = "pending", pending+1
		}
		fmt.Fprintf(w, "%s\t%s\n", m.ID, state)
	}
	_ = w.Flush()
	fmt.Fprintf(c.stdout, "%d applied, %d pending\n", len(list)-pending, pending)
	return nil
}

func (c *cli) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check or print the configuration", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	check := &cobra.Command{
		Use:   "check",
		Short: "Check the whole configuration (every module's); exit 1 naming each bad key",
		Long: "Check the whole configuration the server would run with — the platform's keys and every\n" +
			"module's — without touching the database. Exits 0 when it would start, 1 naming each bad key.",
		Example: "  ENVIRONMENT=production perpetua config check --config prod.yaml",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			problems, err := CheckFile(c.configFile, c.role)
			if err != nil {
				return err
			}
			if len(problems) == 0 {
				fmt.Fprintln(c.stdout, "configuration ok")
				return nil
			}
			for _, p := range problems {
				fmt.Fprintln(c.stderr, p.Error())
			}
			return exitError{1}
		},
	}
	c.roleFlag(check, "the role to check for: api, worker or all")
	print := &cobra.Command{
		Use:     "print",
		Short:   "Print the effective configuration, the source of each value, secrets redacted",
		Example: "  perpetua config print --json | jq '.[] | select(.source != \"default\")'",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			settings := cfg.Settings()
			if c.asJSON {
				return c.printJSON(settings)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tVALUE\tSOURCE")
			for _, s := range settings {
				v, _ := json.Marshal(s.Value)
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Key, v, s.Source)
			}
			return w.Flush()
		},
	}
	print.Flags().BoolVar(&c.asJSON, "json", false, "print JSON")
	cmd.AddCommand(check, print)
	return cmd
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// CheckFile checks the configuration read from file and the environment
// for role (see Check). Its error is one that stops reading altogether (a
// file that cannot be read).
func CheckFile(file, role string) ([]error, error) {
	overrides := map[string]any{}
	var problems []error
	tries := map[string]int{}
	for range 100 {
		cfg, err := config.Load(config.Options{File: file, Overrides: maps.Clone(overrides)})
		if err == nil {
			r, rerr := ParseRole(role, cfg)
			if rerr != nil {
				return append(problems, rerr), nil
			}
			if found := Check(cfg, r); len(found) > 0 {
				err = found[0]
			}
		}
		if err == nil {
			return problems, nil
		}
		var ke *config.KeyError
		if !errors.As(err, &ke) {
			return append(problems, err), nil
		}
		tries[ke.Key]++
		if tries[ke.Key] == 1 {
			problems = append(problems, err)
		}
		// Check the rest with this key at its default, else (the default is
		// refused too: a value required in production) at a stand-in.
		switch tries[ke.Key] {
		case 1:
			overrides[ke.Key] = config.DefaultValue(ke.Key)
		case 2:
			stand, err := standIn(ke.Key)
			if err != nil {
				return problems, nil
			}
			overrides[ke.Key] = stand
		default:
			return problems, nil // nothing more can be learnt past this key
		}
	}
	return problems, nil
}

// standIn is a well-formed value for a key that must be set, so that
// config check can go on past it: a fresh RSA key for a signing key, else a
// word.
func standIn(key string) (string, error) {
	if strings.HasSuffix(key, "jwt_private_key") {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})), nil
	}
	return "config-check-stand-in", nil
}

// Check builds the whole composition for role — every module's
// configuration and constructor — against a database in memory, without
// starting anything or touching the configured database, and returns the
// first problem (a module stops at its first).
func Check(cfg *config.Config, role platform.Role) []error {
	// Development key files are generated into a scratch data directory.
	tmp, err := os.MkdirTemp("", "perpetua-check-")
	if err != nil {
		return []error{err}
	}
	defer os.RemoveAll(tmp)
	return check(cfg, role, tmp)
}

// check is Check with the data directory development keys go to.
func check(cfg *config.Config, role platform.Role, dataDir string) []error {
	scratch := *cfg
	scratch.DataDir = dataDir
	tmp, err := os.MkdirTemp("", "perpetua-check-")
	if err != nil {
		return []error{err}
	}
	defer os.RemoveAll(tmp)
	memCfg, err := config.Load(config.Options{LookupEnv: func(string) (string, bool) { return "", false },
		Overrides: map[string]any{"database.url": "sqlite::memory:", "data_dir": tmp}})
	if err != nil {
		return []error{err}
	}
	db, err := database.Open(context.Background(), memCfg, zap.NewNop(), clock.System{})
	if err != nil {
		return []error{err}
	}
	defer db.Close()
	opts := []fx.Option{fx.Replace(db)}
	if cfg.Log.Level != "debug" {
		opts = append(opts, fx.Replace(zap.NewNop()), fx.NopLogger)
	}
	app := fx.New(Compose(&scratch, role, nil, opts...))
	if err := app.Err(); err != nil {
		return []error{StartError(err)}
	}
	return nil
}

// portsFree fails, before anything starts, when a port the process will
// listen on is taken: the failure is then one line, not the end of a
// start that migrated and logged first. (A port taken in between still
// fails the start.)
func portsFree(cfg *config.Config, r platform.Role) error {
	ports := map[string]int{"server.ops_port (OPS_PORT)": cfg.Server.OpsPort}
	if r.ServesAPI() {
		ports["server.port (PORT)"] = cfg.Server.Port
	}
	for key, port := range ports {
		if port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return server.ListenError(key, port, err)
		}
		_ = ln.Close()
	}
	return nil
}

// endpoints are the listeners of the process, for its start line.
type endpoints struct {
	fx.In
	API *server.Server `optional:"true"`
	Ops *server.Ops
}

// localURL is the URL a person on this machine opens for a listener.
func localURL(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return fmt.Sprintf("http://localhost:%d", tcp.Port)
	}
	return "http://" + a.String()
}
