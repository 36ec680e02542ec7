package idempotency_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/idempotency"
	"github.com/perpetuaflow/api/test/testkit"
)

func withKey(key string, method, path string, body any) testkit.Request {
	return testkit.Request{Method: method, Path: path, Body: body, Headers: map[string]string{"Idempotency-Key": key}}
}

func TestReplayReturnsTheStoredAnswer(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	key := uuid.NewString()
	first := app.Send(t, alice, withKey(key, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "once"})).
		Expect(t, http.StatusCreated)
	if first.Header.Get("X-Idempotent-Replayed") != "" {
		t.Fatal("first execution marked as replayed")
	}
	second := app.Send(t, alice, withKey(key, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "once"})).
		Expect(t, http.StatusCreated)
	if second.Header.Get("X-Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	if string(second.Body) != string(first.Body) {
		t.Fatalf("replayed body differs:\n%s\n%s", first.Body, second.Body)
	}
	if n := app.Count(t, "tasks", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("tasks = %d, want 1", n)
	}

	// Same key, another body: refused.
	app.Send(t, alice, withKey(key, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "twice"})).
		ExpectError(t, http.StatusConflict, "IDEMPOTENCY_KEY_REUSED")
	// Same key on another route: refused too.
	app.Send(t, alice, withKey(key, http.MethodPatch, "/api/v1/users/me", map[string]any{"title": "once"})).
		ExpectError(t, http.StatusConflict, "IDEMPOTENCY_KEY_REUSED")

	// Keys are scoped per user.
	bob := app.SignIn(t, "bob@example.com")
	app.Send(t, bob, withKey(key, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "once"})).
		Expect(t, http.StatusCreated)
	if n := app.Count(t, "tasks", "user_id = ?", bob.ID); n != 1 {
		t.Fatalf("bob's tasks = %d", n)
	}
}

func TestFailuresBelow500AreReplayedToo(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	key := uuid.NewString()
	missing := "/api/v1/tasks/" + uuid.NewString() + "/complete"
	app.Send(t, alice, withKey(key, http.MethodPost, missing, nil)).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	res := app.Send(t, alice, withKey(key, http.MethodPost, missing, nil)).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	if res.Header.Get("X-Idempotent-Replayed") != "true" {
		t.Fatal("a stored 404 was executed again")
	}
}

func TestKeysExpire(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	key := uuid.NewString()
	req := withKey(key, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "daily"})
	app.Send(t, alice, req).Expect(t, http.StatusCreated)
	app.Clock.Advance(24*time.Hour + time.Second)
	// The refresh token outlives the clock jump; the access token does not.
	fresh := app.SignIn(t, "alice@example.com")
	res := app.Send(t, fresh, req).Expect(t, http.StatusCreated)
	if res.Header.Get("X-Idempotent-Replayed") != "" {
		t.Fatal("an expired key was replayed")
	}
	if n := app.Count(t, "tasks", "user_id = ?", alice.ID); n != 2 {
		t.Fatalf("tasks = %d, want 2", n)
	}
}

func TestServerErrorsAreNotStored(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	app := testkit.Start(t, testkit.WithFx(fx.Invoke(func(bus *events.Bus) {
		events.Subscribe(bus, "test", func(context.Context, *gorm.DB, tasks.TaskCompleted) error {
			if fail.Load() {
				return errors.New("downstream failure")
			}
			return nil
		})
	})))
	alice := app.SignIn(t, "alice@example.com")
	id := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).Data(t)["id"].(string)
	key := uuid.NewString()
	fail.Store(true)
	app.Send(t, alice, withKey(key, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil)).
		ExpectError(t, http.StatusInternalServerError, "INTERNAL_ERROR")
	fail.Store(false)
	res := app.Send(t, alice, withKey(key, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil)).Expect(t, http.StatusOK)
	if res.Header.Get("X-Idempotent-Replayed") != "" || res.Data(t)["task"].(map[string]any)["completed"] != true {
		t.Fatalf("retry after a 500 did not execute: %s", res.Body)
	}
}

// gate is a route whose handler waits until the test opens it, so that
// duplicates can arrive while the first request still runs.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	runs    atomic.Int32
}

func (g *gate) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/test/slow", "test-slow", "waits for the test", "Test"),
		func(ctx context.Context, _ *struct{ Body map[string]any }) (*httpx.DataOutput[map[string]int32], error) {
			n := g.runs.Add(1)
			g.entered <- struct{}{}
			<-g.open
			return httpx.Reply(map[string]int32{"run": n}), nil
		})
}

func TestConcurrentDuplicatesExecuteOnce(t *testing.T) {
	t.Parallel()
	g := &gate{entered: make(chan struct{}, 8), open: make(chan struct{})}
	app := testkit.Start(t, testkit.WithFx(fx.Provide(platform.AsRoutes(func() *gate { return g }))))
	alice := app.SignIn(t, "alice@example.com")
	key := uuid.NewString()
	req := withKey(key, http.MethodPost, "/api/v1/test/slow", map[string]any{"x": 1})

	results := make(chan *testkit.Response, 4)
	errs := make(chan error, 4)
	send := func() {
		res, err := app.Call(alice, req)
		errs <- err
		results <- res
	}
	go send()
	<-g.entered // the first request is inside its handler
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send()
		}()
	}
	// The first holds its key as pending; duplicates that arrive now wait for
	// it, later ones find its answer. Neither kind executes.
	if n := app.Count(t, "idempotency_keys", "idem_key = ? AND state = ?", key, "pending"); n != 1 {
		t.Fatalf("pending keys = %d", n)
	}
	close(g.open)
	wg.Wait()
	replayed := 0
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		res := <-results
		res.Expect(t, http.StatusOK)
		if res.Data(t)["run"] != float64(1) {
			t.Fatalf("a duplicate executed: %s", res.Body)
		}
		if res.Header.Get("X-Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if g.runs.Load() != 1 || replayed != 3 {
		t.Fatalf("handler ran %d times, %d replays", g.runs.Load(), replayed)
	}
}

func TestDuplicateGivesUpWithConflictWhenTheFirstRunsTooLong(t *testing.T) {
	t.Parallel()
	g := &gate{entered: make(chan struct{}, 8), open: make(chan struct{})}
	app := testkit.Start(t, testkit.WithConfig("idempotency.wait_timeout", "100ms"),
		testkit.WithFx(fx.Provide(platform.AsRoutes(func() *gate { return g }))))
	alice := app.SignIn(t, "alice@example.com")
	req := withKey(uuid.NewString(), http.MethodPost, "/api/v1/test/slow", map[string]any{"x": 1})
	done := make(chan *testkit.Response, 1)
	failed := make(chan error, 1)
	go func() {
		res, err := app.Call(alice, req)
		failed <- err
		done <- res
	}()
	<-g.entered
	app.Send(t, alice, req).ExpectError(t, http.StatusConflict, "CONFLICT")
	close(g.open)
	if err := <-failed; err != nil {
		t.Fatal(err)
	}
	(<-done).Expect(t, http.StatusOK)
	if g.runs.Load() != 1 {
		t.Fatalf("runs = %d", g.runs.Load())
	}
}

type required struct{}

func (required) Register(api huma.API) {
	op := httpx.Route(http.MethodPost, "/api/v1/test/required", "test-required", "needs a key", "Test")
	op.Metadata[httpx.MetaIdempotency] = "required"
	huma.Register(api, op, func(ctx context.Context, _ *struct{}) (*httpx.DataOutput[bool], error) {
		return httpx.Reply(true), nil
	})
}

func TestRequiredKeyIsEnforced(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithFx(fx.Provide(platform.AsRoutes(func() required { return required{} }))))
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodPost, "/api/v1/test/required", nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	app.Send(t, alice, withKey(uuid.NewString(), http.MethodPost, "/api/v1/test/required", nil)).Expect(t, http.StatusOK)
}

// The task create is a one-transaction route: its key is recorded in the
// create's own transaction. Duplicates released together commit one task,
// one activity row and one record; every answer is the first one's.
func TestOneTransactionDuplicatesCommitOnce(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	key := uuid.NewString()
	racers := make([]testkit.Racer, 8)
	for i := range racers {
		racers[i] = testkit.Racer{User: alice, Request: withKey(key, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "once"})}
	}
	rs := app.Burst(t, racers)
	replayed := 0
	for _, r := range rs {
		r.Expect(t, http.StatusCreated)
		if string(r.Body) != string(rs[0].Body) {
			t.Fatalf("answers differ:\n%s\n%s", rs[0].Body, r.Body)
		}
		if r.Header.Get("X-Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != len(rs)-1 {
		t.Fatalf("%d of %d answers replayed, want %d", replayed, len(rs), len(rs)-1)
	}
	for table, where := range map[string]string{"tasks": "user_id = ?", "activity_log": "user_id = ? AND entity_type = 'task'",
		"idempotency_keys": "subject = ? AND state = 'done'"} {
		if n := app.Count(t, table, where, alice.ID); n != 1 {
			t.Fatalf("%s rows = %d, want 1", table, n)
		}
	}
}

// A task's change and its completion are one-transaction routes too:
// duplicates released together apply once (one version step, one activity
// row, one record), and every answer is the first one's.
func TestOneTransactionChangesAndCompletionsApplyOnce(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	task := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "draft"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	for _, c := range []struct {
		method, path, action string
		body                 map[string]any
	}{
		{http.MethodPatch, "/api/v1/tasks/" + task, "updated", map[string]any{"title": "renamed"}},
		{http.MethodPost, "/api/v1/tasks/" + task + "/complete", "completed", map[string]any{}},
	} {
		key := uuid.NewString()
		racers := make([]testkit.Racer, 8)
		for i := range racers {
			racers[i] = testkit.Racer{User: alice, Request: withKey(key, c.method, c.path, c.body)}
		}
		rs := app.Burst(t, racers)
		replayed := 0
		for _, r := range rs {
			r.Expect(t, http.StatusOK)
			if string(r.Body) != string(rs[0].Body) {
				t.Fatalf("%s: answers differ:\n%s\n%s", c.action, rs[0].Body, r.Body)
			}
			if r.Header.Get("X-Idempotent-Replayed") == "true" {
				replayed++
			}
		}
		if replayed != len(rs)-1 {
			t.Fatalf("%s: %d of %d answers replayed, want %d", c.action, replayed, len(rs), len(rs)-1)
		}
		if n := app.Count(t, "activity_log", "user_id = ? AND entity_type = 'task' AND action = ?", alice.ID, c.action); n != 1 {
			t.Fatalf("%s: %d activity rows, want 1", c.action, n)
		}
		if n := app.Count(t, "idempotency_keys", "subject = ? AND idem_key = ? AND state = 'done'", alice.ID, key); n != 1 {
			t.Fatalf("%s: %d stored answers, want 1", c.action, n)
		}
	}
	if n := app.Count(t, "tasks", "id = ? AND version = 3 AND completed", task); n != 1 {
		t.Fatal("the task is not at version 3 and completed: a duplicate applied again, or none applied")
	}
}

// A refusal is stored like any answer below 500, and what the refused
// request wrote before it failed is not kept.
func TestOneTransactionRefusalIsStoredAndItsWritesAreNot(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("limits.free.max_tasks", 1))
	alice := app.SignIn(t, "alice@example.com")
	first := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "fills the list"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	req := withKey(uuid.NewString(), http.MethodPost, "/api/v1/tasks", map[string]any{"title": "one too many"})
	app.Send(t, alice, req).ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+first, map[string]any{"archived": true}).Expect(t, http.StatusOK)
	res := app.Send(t, alice, req).ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	if res.Header.Get("X-Idempotent-Replayed") != "true" {
		t.Fatal("the stored refusal was not replayed")
	}
	if n := app.Count(t, "tasks", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("tasks = %d, want 1", n)
	}
}

// A server error rolls the change back with its record: the retry executes.
func TestOneTransactionServerErrorKeepsNothing(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	app := testkit.Start(t, testkit.WithFx(fx.Invoke(func(bus *events.Bus) {
		events.Subscribe(bus, "test", func(context.Context, *gorm.DB, tasks.TaskCreated) error {
			if fail.Load() {
				return errors.New("downstream failure")
			}
			return nil
		})
	})))
	alice := app.SignIn(t, "alice@example.com")
	req := withKey(uuid.NewString(), http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"})
	fail.Store(true)
	app.Send(t, alice, req).ExpectError(t, http.StatusInternalServerError, "INTERNAL_ERROR")
	for table, where := range map[string]string{"tasks": "user_id = ?", "activity_log": "user_id = ? AND entity_type = 'task'"} {
		if n := app.Count(t, table, where, alice.ID); n != 0 {
			t.Fatalf("%s rows after a 500 = %d", table, n)
		}
	}
	if n := app.Count(t, "idempotency_keys", "subject = ?", alice.ID); n != 0 {
		t.Fatalf("a 500 left %d records", n)
	}
	fail.Store(false)
	res := app.Send(t, alice, req).Expect(t, http.StatusCreated)
	if res.Header.Get("X-Idempotent-Replayed") != "" {
		t.Fatal("retry after a 500 was replayed")
	}
	if n := app.Count(t, "tasks", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("tasks = %d, want 1", n)
	}
}

// On PostgreSQL a claim commits without waiting for the disk
// (synchronous_commit off for its own transaction), and only it: the
// connection it ran on commits what comes next durably again.
func TestAClaimLeavesTheConnectionsCommitsDurable(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("synchronous_commit is PostgreSQL's")
	}
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	key, now := uuid.NewString(), time.Now()
	var claimed int64
	var setting string
	err := app.DB.Gorm.Connection(func(conn *gorm.DB) error { // one connection for the claim and the check
		res := conn.Exec(idempotency.ClaimSQL[true], alice.ID.String(), key, "hash", http.MethodPost, "/api/v1/x", "pending",
			now, now.Add(time.Hour))
		if res.Error != nil {
			return res.Error
		}
		claimed = res.RowsAffected
		return conn.Raw("SHOW synchronous_commit").Scan(&setting).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if claimed != 1 || app.Count(t, "idempotency_keys", "idem_key = ? AND state = 'pending'", key) != 1 {
		t.Fatalf("the claim inserted %d rows", claimed)
	}
	if setting != "on" {
		t.Fatalf("synchronous_commit is %q on the claim's connection after it, want on", setting)
	}
}
