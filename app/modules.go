package app

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/modules/account"
	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/ai"
	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/gamification"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/live"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/idempotency"
	"github.com/perpetuaflow/api/platform/observability"
	"github.com/perpetuaflow/api/platform/ratelimit"
	"github.com/perpetuaflow/api/platform/server"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Catalog is every domain module of the binary. They meet only through fx
// groups, events and their public faces.
func Catalog() []platform.Module {
	return []platform.Module{
		auth.Module,
		jobs.Module,
		account.Module,
		recovery.Module,
		activity.Module,
		tasks.Module,
		notes.Module,
		notifications.Module,
		gamification.Module,
		billing.Module,
		ai.Module,
		live.Module,
	}
}

// Select returns the modules to compose: wanted (nil means the whole
// catalog) with the modules they need and the core ones, less those
// disabled. It refuses to disable a core module or one that a composed
// module needs, and names it.
func Select(wanted []platform.Module, disabled []string) ([]platform.Module, error) {
	byName := map[string]platform.Module{}
	for _, m := range Catalog() {
		byName[m.Name] = m
	}
	off := map[string]bool{}
	for _, name := range disabled {
		m, ok := byName[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%q is not a module (the modules are %s)", name, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		case m.Core:
			return nil, fmt.Errorf("%s cannot be left out: every deployment needs it", name)
		}
		off[name] = true
	}
	if wanted == nil {
		for _, m := range Catalog() {
			if !off[m.Name] {
				wanted = append(wanted, m)
			}
		}
	}
	for _, m := range Catalog() {
		if m.Core {
			wanted = append(wanted, m)
		}
	}
	chosen := map[string]platform.Module{}
	neededBy := map[string][]string{}
	var add func(m platform.Module, by string)
	add = func(m platform.Module, by string) {
		if by != "" {
			neededBy[m.Name] = append(neededBy[m.Name], by)
		}
		if _, ok := chosen[m.Name]; ok {
			return
		}
		chosen[m.Name] = m
		for _, need := range m.Needs {
			if dep, ok := byName[need]; ok {
				add(dep, m.Name)
			}
		}
	}
	for _, m := range wanted {
		add(m, "")
	}
	var out []platform.Module
	for _, m := range Catalog() {
		if _, ok := chosen[m.Name]; !ok {
			continue
		}
		if off[m.Name] {
			by := slices.Compact(slices.Sorted(slices.Values(neededBy[m.Name])))
			return nil, fmt.Errorf("%s cannot be left out: it is needed by %s (leave them out too)", m.Name, strings.Join(by, ", "))
		}
		out = append(out, m)
	}
	for _, m := range wanted {
		if _, known := byName[m.Name]; !known {
			out = append(out, m) // a module of a test, outside the catalog
		}
	}
	return out, nil
}

// Options composes the process for role with every module the
// configuration does not leave out. Tests add options (a fake clock, config
// overrides) and use the same composition.
func Options(cfg *config.Config, role platform.Role, extra ...fx.Option) fx.Option {
	return Compose(cfg, role, nil, extra...)
}

// Compose composes the process for role with the given modules (nil: the
// whole catalog), what they need, and the platform.
func Compose(cfg *config.Config, role platform.Role, modules []platform.Module, extra ...fx.Option) fx.Option {
	selected, err := Select(modules, cfg.Modules.Disabled)
	if err != nil {
		return fx.Error(cfg.Refuse("modules.disabled", "%v", err))
	}
	opts := []fx.Option{
		fx.Supply(cfg, role),
		fx.StartTimeout(60 * time.Second),
		fx.StopTimeout(cfg.Server.ShutdownTimeout + 15*time.Second),
		// The framework's account of the composition (and of a failure, which
		// the command line prints as one line itself) is for LOG_LEVEL=debug.
		fx.WithLogger(func(log *zap.Logger) fxevent.Logger {
			l := &fxevent.ZapLogger{Logger: log.Named("fx")}
			l.UseLogLevel(zapcore.DebugLevel)
			l.UseErrorLevel(zapcore.DebugLevel)
			return l
		}),
		platformModule,
	}
	for _, m := range selected {
		opts = append(opts, m.Option)
	}
	if role.ServesAPI() {
		opts = append(opts, server.Module)
	}
	opts = append(opts, server.OpsModule)
	opts = append(opts, extra...)
	return fx.Options(opts...)
}

// platformModule provides the building blocks every module uses.
var platformModule = fx.Module("platform",
	fx.Provide(
		observability.NewLogger,
		observability.NewRegistry,
		newTracing,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		func() clock.Clock { return clock.System{} },
		openDatabase,
		events.NewBus,
		idempotency.NewStore,
		ratelimit.NewDBStore,
		rateLimitStore,
		ratelimit.NewLimiter,
		platform.AsCheck(databaseCheck),
	),
	fx.Invoke(autoMigrate, events.Register, registerBuildInfo),
	userdata.Contribute(
		userdata.Derived("counts and sums per user kept by triggers, derived from the exported rows", "row_counts", "user_id"),
		userdata.Secret("answers kept 24 h to replay retried requests: copies of exported rows", "idempotency_keys", "subject"),
	),
)

// registerBuildInfo exports perpetua_build_info{version, commit,
// go_version, role} = 1: dashboards join it on the instance to split any
// metric by role.
func registerBuildInfo(reg *prometheus.Registry, role platform.Role) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: observability.Namespace, Name: "build_info",
		Help: "The build and deployment role of this process (always 1).",
	}, []string{"version", "commit", "go_version", "role"})
	g.WithLabelValues(Version, Commit, runtime.Version(), string(role)).Set(1)
	reg.MustRegister(g)
}

type tracingIn struct {
	fx.In
	Lifecycle fx.Lifecycle
	Role      platform.Role
	Log       *zap.Logger
	// Exporter is given by tests; otherwise the environment decides.
	Exporter *observability.TraceExporter `optional:"true"`
}

// newTracing starts OpenTelemetry tracing when an OTLP endpoint is
// configured (see observability.Tracing), and flushes it last at stop.
func newTracing(in tracingIn) (*observability.Tracing, error) {
	t, err := observability.NewTracing(context.Background(), string(in.Role), Version, in.Exporter, in.Log)
	if err != nil {
		return nil, err
	}
	in.Lifecycle.Append(fx.Hook{OnStop: t.Shutdown})
	return t, nil
}

func openDatabase(lc fx.Lifecycle, cfg *config.Config, log *zap.Logger, clk clock.Clock, reg *prometheus.Registry,
	tracing *observability.Tracing) (*database.DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var opts []database.Option
	if tracing.Enabled() {
		opts = append(opts, database.WithTracing(tracing.Provider))
	}
	db, err := database.Open(ctx, cfg, log, clk, opts...)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(db.Collectors()...)
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return db.Close() }})
	return db, nil
}

// rateLimitStores is the rate limits' store and, with Redis, its
// readiness check.
type rateLimitStores struct {
	fx.Out
	Store  ratelimit.Store
	Checks []platform.Check `group:"checks,flatten"`
}

// rateLimitStore picks Redis when configured (then /health/ready checks
// that it answers), else the database.
func rateLimitStore(lc fx.Lifecycle, cfg *config.Config, db *ratelimit.DBStore, log *zap.Logger) (rateLimitStores, error) {
	if cfg.Redis.URL == "" {
		return rateLimitStores{Store: db}, nil
	}
	rs, err := ratelimit.NewRedisStore(cfg.Redis.URL, log)
	if err != nil {
		return rateLimitStores{}, err
	}
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return rs.Close() }})
	return rateLimitStores{Store: rs, Checks: []platform.Check{{Name: "redis", Run: rs.Ping}}}, nil
}

func databaseCheck(db *database.DB) platform.Check {
	return platform.Check{Name: "database", Run: db.Ping}
}

// autoMigrate applies pending migrations when database.auto_migrate says
// so: first thing at start, once the whole composition (every module's
// configuration) has been built and checked, so that a process that
// refuses to start has not touched the schema; before any component starts.
func autoMigrate(lc fx.Lifecycle, cfg *config.Config, db *database.DB, log *zap.Logger) {
	if !cfg.AutoMigrate() {
		return
	}
	lc.Append(fx.Hook{OnStart: func(context.Context) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		if err := db.Migrate(ctx, migrations.All(), migrations.River); err != nil {
			return fmt.Errorf("auto-migrate: %w", err)
		}
		log.Info("migrations applied", zap.Duration("took", time.Since(start)))
		return nil
	}})
}
