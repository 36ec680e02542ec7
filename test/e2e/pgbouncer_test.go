package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perpetuaflow/api/test/testkit"
)

// Many api processes share PostgreSQL through PgBouncer in transaction
// pooling mode (20 server connections for the four processes' 80 client
// connections): migrations and LISTEN go straight to PostgreSQL
// (database.direct_url), the worker connects directly, and the whole
// journey, then a burst of writes and reads spread over the four, run
// with no error.
func TestManyAPIProcessesThroughPgBouncer(t *testing.T) {
	if !testkit.Postgres() {
		t.Skip("PgBouncer pools PostgreSQL connections")
	}
	direct := testkit.NewDatabase(t)
	pooled := testkit.PgBouncer(t, direct, 20)
	env, f := journeyEnv(t, pooled)
	env = append(env, "PERPETUA_DATABASE_AUTO_MIGRATE=false", "PERPETUA_DATABASE_POOLER=pgbouncer",
		"PERPETUA_DATABASE_DIRECT_URL="+direct, "PERPETUA_DATABASE_MAX_OPEN_CONNS=20",
		"RATE_LIMIT_AUTH=100000", // the burst signs in 80 users from one address
		// The journey's requests go to the four processes in turn: a session
		// ended through one is refused at once by the others.
		"PERPETUA_AUTH_SESSION_CACHE_TTL=0s",
		// Live updates reach other processes through LISTEN on the direct
		// connection only: the head poll's safety net is ten minutes away.
		"PERPETUA_LIVE_POLL_INTERVAL=1m")

	// Without direct_url, migrate says what to do.
	refused := run(t, append(env, "PERPETUA_DATABASE_DIRECT_URL=", "OPS_PORT="+testkit.FreePort(t)), "migrate")
	if err := <-refused.Done; err == nil || !strings.Contains(refused.Out.String(), "database.direct_url") {
		t.Fatalf("migrate through PgBouncer without direct_url: %v\n%s", err, refused.Out.String())
	}
	migrate := run(t, append(env, "OPS_PORT="+testkit.FreePort(t)), "migrate")
	if err := <-migrate.Done; err != nil {
		t.Fatalf("migrate: %v\n%s", err, migrate.Out.String())
	}

	var bases []string
	var procs []*testkit.Proc
	for range 4 {
		port := testkit.FreePort(t)
		p := run(t, append(env, "PORT="+port, "OPS_PORT="+testkit.FreePort(t)), "--role=api")
		bases = append(bases, "http://127.0.0.1:"+port)
		procs = append(procs, p)
	}
	workerOps := testkit.FreePort(t)
	worker := run(t, append(env, "DATABASE_URL="+direct, "PERPETUA_DATABASE_POOLER=none", "OPS_PORT="+workerOps), "--role=worker")
	for i, p := range procs {
		testkit.WaitReady(t, bases[i], p)
	}
	testkit.WaitReady(t, "http://127.0.0.1:"+workerOps, worker)

	journey(t, &client{t: t, spread: bases}, f, "http://127.0.0.1:"+workerOps+"/metrics")

	// A stream on one process hears of a change made through another: the
	// commit's NOTIFY goes through PgBouncer, the LISTEN straight to
	// PostgreSQL.
	one, other := &client{t: t, base: bases[1]}, &client{t: t, base: bases[2]}
	token := one.do("", http.MethodPost, "/api/v1/auth/google/callback",
		map[string]any{"id_token": f.issuer.IDToken(t, testkit.GoogleClaims{Email: "live@example.com", Name: "L"})}, "").
		expect(t, http.StatusOK, "").body["access_token"].(string)
	ticket := one.do(token, http.MethodPost, "/api/v1/events/ticket", nil, "").expect(t, http.StatusOK, "").data()["ticket"].(string)
	stream := testkit.OpenSSE(t, one.base+"/api/v1/events?ticket="+ticket, nil)
	if stream.Status != http.StatusOK {
		t.Fatalf("stream: %d", stream.Status)
	}
	other.do(token, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "through another process"}, "").
		expect(t, http.StatusCreated, "")
	if e := stream.Next(t, 5*time.Second); e.Event != "task.created" || !strings.Contains(e.Data, "through another process") {
		t.Fatalf("the stream heard: %+v", e)
	}
	stream.Close()

	// The burst: 80 clients (20 per process), each creating tasks and
	// reading its list, all at once.
	c := &client{t: t, base: bases[0]}
	const perClient = 10
	type user struct{ token, id string }
	users := make([]user, 80)
	for i := range users {
		a := c.do("", http.MethodPost, "/api/v1/auth/google/callback",
			map[string]any{"id_token": f.issuer.IDToken(t, testkit.GoogleClaims{Email: fmt.Sprintf("burst%d@example.com", i), Name: "B"})}, "").
			expect(t, http.StatusOK, "")
		users[i] = user{a.body["access_token"].(string), a.body["user"].(map[string]any)["id"].(string)}
	}
	var failures atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	var problems []string
	for i, u := range users {
		wg.Go(func() {
			cc := &client{t: t, base: bases[i%len(bases)]}
			<-start
			for n := range perClient {
				a := cc.try(u.token, http.MethodPost, "/api/v1/tasks", map[string]any{"title": fmt.Sprintf("burst %d", n)}, "")
				b := cc.try(u.token, http.MethodGet, "/api/v1/tasks?limit=25", nil, "")
				if a.status != http.StatusCreated || b.status != http.StatusOK {
					failures.Add(1)
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%d %s / %d %s", a.status, a.raw, b.status, b.raw))
					mu.Unlock()
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d failed requests through PgBouncer, e.g. %v", n, problems[:min(3, len(problems))])
	}
	conn, err := pgx.Connect(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tasks int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM tasks WHERE title LIKE 'burst %'`).Scan(&tasks); err != nil {
		t.Fatal(err)
	}
	if tasks != len(users)*perClient {
		t.Fatalf("%d tasks in the database, want %d", tasks, len(users)*perClient)
	}
	for _, p := range append(procs, worker) {
		p.Stop(t)
	}
}
