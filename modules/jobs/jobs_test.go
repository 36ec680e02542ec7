package jobs_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/test/testkit"
)

type probeArgs struct {
	N int `json:"n"`
}

func (probeArgs) Kind() string { return "test_probe" }

// probe is a worker the test controls: it records runs and, when hold is
// set, waits for release before finishing.
type probe struct {
	river.WorkerDefaults[probeArgs]
	runs    atomic.Int32
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (p *probe) Work(ctx context.Context, job *river.Job[probeArgs]) error {
	if p.hold.Load() {
		p.entered <- struct{}{}
		<-p.release
	}
	p.runs.Add(1)
	return nil
}

func withProbe(p *probe) testkit.Option {
	return testkit.WithFx(fx.Provide(jobs.AsWorker(func() jobs.Worker { return jobs.NewWorker[probeArgs](p) })))
}

func newProbe() *probe { return &probe{entered: make(chan struct{}, 1), release: make(chan struct{})} }

func TestInsertTxCommitsAndRollsBackWithTheTransaction(t *testing.T) {
	t.Parallel()
	p := newProbe()
	var q jobs.Enqueuer
	app := testkit.Start(t, testkit.Modules(jobs.Module), withProbe(p), testkit.WithFx(fx.Populate(&q)))
	ctx := context.Background()

	err := app.DB.Tx(ctx, func(tx *gorm.DB) error {
		if _, err := q.InsertTx(ctx, tx, probeArgs{N: 1}, nil); err != nil {
			return err
		}
		return context.Canceled // roll back
	})
	if err != context.Canceled {
		t.Fatalf("tx: %v", err)
	}
	if n := app.Count(t, "river_job", "kind = ?", "test_probe"); n != 0 {
		t.Fatalf("a rolled-back insert left %d jobs", n)
	}
	err = app.DB.Tx(ctx, func(tx *gorm.DB) error {
		_, err := q.InsertTx(ctx, tx, probeArgs{N: 2}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the job to run", func() bool { return p.runs.Load() == 1 })
	testkit.Eventually(t, 10*time.Second, "the job to complete", func() bool {
		return app.Count(t, "river_job", "kind = ? AND state = ?", "test_probe", "completed") == 1
	})
}

func TestInsertTxNeedsATransaction(t *testing.T) {
	t.Parallel()
	var q jobs.Enqueuer
	app := testkit.Start(t, testkit.Modules(jobs.Module), withProbe(newProbe()), testkit.WithFx(fx.Populate(&q)))
	if _, err := q.InsertTx(context.Background(), app.DB.Gorm, probeArgs{}, nil); err == nil {
		t.Fatal("InsertTx outside a transaction succeeded")
	}
}

func TestHousekeepingRunsAtStartAndIsMeasured(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(jobs.Module))
	past := app.Clock.Now().Add(-time.Hour)
	err := app.DB.Gorm.Exec(`INSERT INTO idempotency_keys (subject, idem_key, request_hash, method, path, state,
		response_status, content_type, created_at, expires_at) VALUES ('u', 'k', 'h', 'POST', '/x', 'done', 200, '', ?, ?)`,
		past, past).Error
	if err != nil {
		t.Fatal(err)
	}
	// The purge runs on start; run it again now that the expired key exists.
	if _, err := app.Queue.Insert(context.Background(), jobs.IdempotencyPurgeArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "expired keys to be purged", func() bool {
		return app.Count(t, "idempotency_keys", "") == 0
	})
	testkit.Eventually(t, 10*time.Second, "job metrics", func() bool {
		res, err := http.Get(app.OpsURL + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return strings.Contains(string(b), `perpetua_jobs_processed_total{kind="idempotency_purge",outcome="completed"}`) &&
			strings.Contains(string(b), `perpetua_job_duration_seconds_count{kind="idempotency_purge"}`) &&
			strings.Contains(string(b), `perpetua_jobs_inserted_total{kind="idempotency_purge"}`)
	})
}

func TestWorkerFinishesItsCurrentJobOnShutdown(t *testing.T) {
	t.Parallel()
	p := newProbe()
	p.hold.Store(true)
	app := testkit.Start(t, testkit.Modules(jobs.Module), withProbe(p))
	if _, err := app.Queue.Insert(context.Background(), probeArgs{N: 1}, nil); err != nil {
		t.Fatal(err)
	}
	<-p.entered
	stopped := make(chan error)
	go func() { stopped <- app.Stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("stopped (%v) with a job running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(p.release)
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if p.runs.Load() != 1 {
		t.Fatalf("runs = %d", p.runs.Load())
	}
}

func TestAPIRoleInsertsAndWorkerRoleWorks(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("separate api and worker processes need PostgreSQL")
	}
	db := testkit.NewDatabase(t)
	apiProbe, workerProbe := newProbe(), newProbe()
	api := testkit.Start(t, testkit.Modules(jobs.Module), testkit.WithDatabase(db), testkit.WithRole(platform.RoleAPI), withProbe(apiProbe))
	if _, err := api.Queue.Insert(context.Background(), probeArgs{N: 1}, nil); err != nil {
		t.Fatal(err)
	}
	worker := testkit.Start(t, testkit.Modules(jobs.Module), testkit.WithDatabase(db), testkit.WithRole(platform.RoleWorker), withProbe(workerProbe))
	testkit.Eventually(t, 10*time.Second, "the worker to run the job", func() bool { return workerProbe.runs.Load() == 1 })
	if apiProbe.runs.Load() != 0 {
		t.Fatal("the api role worked a job")
	}
	// The worker's ops listener answers health and metrics.
	for _, path := range []string{"/health/live", "/health/ready", "/metrics"} {
		res, err := http.Get(worker.URL + path)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", path, err, res)
		}
		res.Body.Close()
	}
	if res, err := http.Get(worker.URL + "/api/v1/tasks"); err == nil && res.StatusCode != http.StatusNotFound {
		t.Fatalf("the worker serves the API: %d", res.StatusCode)
	}
}

func TestDueJobsArePromotedWithoutWaitingForRiversScheduler(t *testing.T) {
	t.Parallel()
	// The api role starts no River maintenance: only PromoteDue moves jobs.
	app := testkit.Start(t, testkit.Modules(jobs.Module), testkit.WithRole(platform.RoleAPI), withProbe(newProbe()))
	ctx := context.Background()
	soon, err := app.Queue.Insert(ctx, probeArgs{N: 1}, &river.InsertOpts{ScheduledAt: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	later, err := app.Queue.Insert(ctx, probeArgs{N: 2}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	state := func(id int64) string {
		var s string
		if err := app.DB.Gorm.Raw("SELECT state FROM river_job WHERE id = ?", id).Scan(&s).Error; err != nil {
			t.Fatal(err)
		}
		return s
	}
	if state(soon.Job.ID) != "scheduled" {
		t.Fatalf("state %q before it is due", state(soon.Job.ID))
	}
	testkit.Eventually(t, 10*time.Second, "the due job to be promoted", func() bool {
		n, err := app.Queue.PromoteDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	if s := state(soon.Job.ID); s != "available" {
		t.Fatalf("due job: state %q, want available", s)
	}
	if s := state(later.Job.ID); s != "scheduled" {
		t.Fatalf("job due in an hour: state %q, want scheduled", s)
	}
}
