package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/app"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
)

// jobFigures are what the jobs bench measures.
type jobFigures struct {
	reminders          int
	spread             time.Duration
	p50, p99, maxLag   time.Duration
	fired, notified    int
	duplicate          int
	trivial            int
	trivialPerSecond   float64
	workerRSS          float64
	workers            int
	scheduleInterval   string
	remindersCreatedIn time.Duration
}

// benchJobs: reminders due within -spread (100,000 over ten minutes by
// default), fired by a --role=worker process (lag = the notification's
// created_at less the reminder's scheduled_at), then trivial jobs through
// the same queue machinery.
func benchJobs(o options) error {
	dbURL, drop, err := scratchDB(o.adminURL)
	if err != nil {
		return err
	}
	defer drop()
	env, err := migrate(o, dbURL, fmt.Sprintf("PERPETUA_LIMITS_FREE_MAX_REMINDERS=%d", o.reminders))
	if err != nil {
		return err
	}
	api, err := start(o, "api", env, "serve", "--role=api")
	if err != nil {
		return err
	}
	defer api.stop()
	worker, err := start(o, "worker", env, "serve", "--role=worker")
	if err != nil {
		return err
	}
	defer worker.stop()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()

	f := jobFigures{reminders: o.reminders, spread: o.spread}
	if err := reminderLag(o, api, db, &f); err != nil {
		return err
	}
	f.workerRSS = worker.peakRSS()
	worker.stop()
	if err := trivialJobs(o, dbURL, &f); err != nil {
		return err
	}
	printJobs(o, f)
	return nil
}

// reminderLag creates o.reminders absolute in-app reminders through the
// API, due evenly over o.spread, which starts once they all exist, and
// waits for their notifications.
func reminderLag(o options, api *server, db *sql.DB, f *jobFigures) error {
	c := newClient(api.base, 32)
	users, err := seed(c, o.users, 0, 1, "jobs")
	if err != nil {
		return err
	}
	tasks := make([]string, len(users))
	for i, u := range users {
		var ans struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		status, err := c.do(http.MethodPost, "/api/v1/tasks", u.Token, map[string]any{"title": "Reminded"}, &ans)
		if err != nil || status != http.StatusCreated {
			return fmt.Errorf("create task: %d %v", status, err)
		}
		tasks[i] = ans.Data.ID
	}
	// Creating them takes a while (about 1–2.5 ms each through the API on a
	// 2-core machine); the minute starts after a margin for the slow case.
	lead := 15*time.Second + time.Duration(o.reminders)*4*time.Millisecond
	first := time.Now().Add(lead).Truncate(time.Second)
	step := f.spread / time.Duration(o.reminders)
	logf("creating %d reminders due from %s over %s", o.reminders, first.Format("15:04:05"), f.spread)
	began := time.Now()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.reminders {
					return
				}
				u := i % len(users)
				at := first.Add(time.Duration(i) * step).UTC().Format(time.RFC3339Nano)
				status, err := c.do(http.MethodPost, "/api/v1/tasks/"+tasks[u]+"/reminders", users[u].Token,
					map[string]any{"type": "absolute", "scheduled_at": at, "method": "in_app"}, nil)
				if err != nil || status != http.StatusCreated {
					failed.Store(fmt.Errorf("create reminder: %d %v", status, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	f.remindersCreatedIn = time.Since(began)
	if time.Now().After(first) {
		return fmt.Errorf("creating the reminders took %s, past the first one's time; use fewer -reminders", f.remindersCreatedIn)
	}
	logf("created in %s; waiting for them to fire", f.remindersCreatedIn.Round(time.Millisecond))
	deadline := first.Add(f.spread + 60*time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM notifications WHERE reminder_id IS NOT NULL").Scan(&n); err != nil {
			return err
		}
		if n >= o.reminders {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d reminders fired by %s", n, o.reminders, deadline.Format("15:04:05"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	rows, err := db.Query(`SELECT extract(epoch FROM n.created_at - r.scheduled_at)
		FROM notifications n JOIN reminders r ON r.id = n.reminder_id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var lags []time.Duration
	for rows.Next() {
		var s float64
		if err := rows.Scan(&s); err != nil {
			return err
		}
		lags = append(lags, time.Duration(s*float64(time.Second)))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	f.p50, f.p99, f.maxLag = lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
	f.notified = len(lags)
	if err := db.QueryRow("SELECT count(*) FROM reminders WHERE fired").Scan(&f.fired); err != nil {
		return err
	}
	return db.QueryRow(`SELECT count(*) - count(DISTINCT reminder_id) FROM notifications WHERE reminder_id IS NOT NULL`).
		Scan(&f.duplicate)
}

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// trivialJobs enqueues o.jobs jobs that do nothing, then runs the worker
// role's queue (as configured by default, in this process) over them:
// jobs/s is their number over the time from the first start to the last
// completion.
func trivialJobs(o options, dbURL string, f *jobFigures) error {
	cfg, err := config.Load(config.Options{Overrides: map[string]any{
		"database.url": dbURL, "database.auto_migrate": "false", "environment": "development",
		"data_dir": o.work, "log.level": "warn", "server.ops_port": 0,
	}})
	if err != nil {
		return err
	}
	var jc jobs.Config
	if err := cfg.Section("jobs", &jc); err != nil {
		return err
	}
	f.workers, f.scheduleInterval = jc.Workers, jc.ScheduleInterval.String()
	f.trivial = o.jobs
	var q *jobs.Queue
	fxApp := fx.New(app.Compose(cfg, platform.RoleWorker, []platform.Module{jobs.Module},
		fx.Provide(jobs.AsWorker(func() jobs.Worker { return jobs.NewWorker[noopArgs](noopWorker{}) })),
		fx.Populate(&q), fx.NopLogger))
	if err := fxApp.Err(); err != nil {
		return app.StartError(err)
	}
	// Enqueue before the workers start: the figure is the work, not the inserts.
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	logf("enqueueing %d trivial jobs", o.jobs)
	for done := 0; done < o.jobs; {
		n := min(5000, o.jobs-done)
		params := make([]river.InsertManyParams, n)
		for i := range params {
			params[i] = river.InsertManyParams{Args: noopArgs{N: done + i}}
		}
		if _, err := q.Client().InsertMany(context.Background(), params); err != nil {
			return fmt.Errorf("insert jobs: %w", err)
		}
		done += n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logf("working them off")
	if err := fxApp.Start(ctx); err != nil {
		return app.StartError(err)
	}
	defer func() {
		stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = fxApp.Stop(stop)
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM river_job WHERE kind = 'bench_noop' AND state = 'completed'").Scan(&n); err != nil {
			return err
		}
		if n == o.jobs {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d trivial jobs done after 5 minutes", n, o.jobs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var seconds float64
	if err := db.QueryRow(`SELECT extract(epoch FROM max(finalized_at) - min(attempted_at))
		FROM river_job WHERE kind = 'bench_noop'`).Scan(&seconds); err != nil {
		return err
	}
	f.trivialPerSecond = float64(o.jobs) / seconds
	return nil
}

func printJobs(o options, f jobFigures) {
	host, _ := os.Hostname()
	fmt.Printf("\nPerpetua Flow API jobs bench, %s, %s, %d CPUs, PostgreSQL, jobs.workers %d, jobs.schedule_interval %s\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), f.workers, f.scheduleInterval)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	lagOK := f.p99 <= 2*time.Second
	once := f.notified == f.reminders && f.fired == f.reminders && f.duplicate == 0
	fmt.Printf("  reminders due within %s: %d (created through the API in %s)\n", f.spread, f.reminders, f.remindersCreatedIn.Round(time.Millisecond))
	fmt.Printf("  lag p50 %s, p99 %s, max %s   (goal p99 ≤ 2 s: %s)\n",
		f.p50.Round(time.Millisecond), f.p99.Round(time.Millisecond), f.maxLag.Round(time.Millisecond), verdict(lagOK))
	fmt.Printf("  fired %d, notifications %d, duplicates %d   (exactly once: %s)\n", f.fired, f.notified, f.duplicate, verdict(once))
	fmt.Printf("  worker process peak RSS %.0f MB   (goal ≤ 80 MB: %s)\n", f.workerRSS, verdict(f.workerRSS <= 80))
	fmt.Printf("  trivial jobs: %d at %.0f jobs/s   (goal ≥ 2,000: %s)\n", f.trivial, f.trivialPerSecond, verdict(f.trivialPerSecond >= 2000))
}
