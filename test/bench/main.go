// Command bench measures the request hot path against the database's own
// ceiling, in one run, so that a noisy machine cancels out of the ratios:
//
//	go run ./test/bench -binary bin/perpetua          # make bench
//	go run ./test/bench -binary bin/perpetua jobs     # make bench-jobs
//	go run ./test/bench -binary bin/perpetua growth   # the growth rows alone
//	go run ./test/bench -binary bin/perpetua plans    # every statement's plan (make bench-plans)
//	go run ./test/bench -binary bin/perpetua streams  # the assistant's stream rows alone
//
// The HTTP bench starts the server (--role=api) on a scratch PostgreSQL
// database, seeds users and tasks through the API, drives GET /tasks and
// POST /tasks with a closed-loop load, runs pgbench with the statements that
// are those requests' work on the same data, and does the same on the
// embedded SQLite (against a Go loop over the same file and driver). It
// prints one table. The jobs bench measures reminder lag and trivial-job
// throughput of the worker role.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

type options struct {
	binary      string
	adminURL    string
	users       int
	tasks       int
	concurrency int
	duration    time.Duration
	rounds      int
	pgbenchTime time.Duration
	clients     []int
	sqlite      bool
	reminders   int
	spread      time.Duration
	jobs        int
	work        string
	profile     string
	env         envFlags
	// growth: the long-time user's rows (growth.go); growthDuration is one
	// path's run for one user.
	growth         bool
	growthDuration time.Duration
	// streams, processes: also measure the assistant's streams and more
	// processes (off to iterate on the request paths alone).
	streams, processes bool
}

// envFlags collects -env KEY=VALUE flags.
type envFlags []string

func (e *envFlags) String() string     { return fmt.Sprint(*e) }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	o := options{}
	flag.StringVar(&o.binary, "binary", "bin/perpetua", "the server binary (make build)")
	flag.StringVar(&o.adminURL, "db", envOr("BENCH_DATABASE_URL", envOr("TEST_DATABASE_URL",
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable")), "a PostgreSQL database to create the scratch database from")
	flag.IntVar(&o.users, "users", 100, "users")
	flag.IntVar(&o.tasks, "tasks", 200, "tasks per user")
	flag.IntVar(&o.concurrency, "concurrency", 64, "connections of the load")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one load round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (the table shows medians)")
	flag.DurationVar(&o.pgbenchTime, "pgbench-time", 4*time.Second, "length of one pgbench run")
	flag.BoolVar(&o.sqlite, "sqlite", true, "also measure the embedded SQLite")
	flag.IntVar(&o.reminders, "reminders", 100_000, "jobs bench: reminders due within -spread")
	flag.DurationVar(&o.spread, "spread", 10*time.Minute, "jobs bench: the reminders are due evenly over this long")
	flag.IntVar(&o.jobs, "jobs", 20000, "jobs bench: trivial jobs")
	flag.BoolVar(&o.growth, "growth", true, "also measure a long-time user against a new one (both databases)")
	flag.DurationVar(&o.growthDuration, "growth-duration", 4*time.Second, "growth bench: length of one path's run for one user")
	flag.BoolVar(&o.streams, "streams", true, "also measure the assistant's streams")
	flag.BoolVar(&o.processes, "processes", true, "also measure two api processes, and api beside a worker")
	flag.Var(&o.env, "env", "KEY=VALUE for the server's environment (repeatable), to try a setting")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of the server's first rounds into this folder")
	flag.Parse()
	var err error
	if o.binary, err = filepath.Abs(o.binary); err != nil {
		fail(err)
	}
	if _, err := os.Stat(o.binary); err != nil {
		fail(fmt.Errorf("%s: %w (run make build first)", o.binary, err))
	}
	o.clients = []int{4, 8, 16, 64}
	if o.work, err = os.MkdirTemp("", "perpetua-bench-"); err != nil {
		fail(err)
	}
	defer os.RemoveAll(o.work)
	switch flag.Arg(0) {
	case "", "http":
		err = benchHTTP(o)
	case "jobs":
		err = benchJobs(o)
	case "growth":
		err = benchGrowthOnly(o)
	case "plans":
		err = benchPlans(o)
	case "streams":
		var f streamFigures
		if f, err = benchStreams(o); err == nil {
			printStreams(f)
		}
	default:
		err = fmt.Errorf("unknown bench %q (http, jobs, growth, plans or streams)", flag.Arg(0))
	}
	if err != nil {
		fail(err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
