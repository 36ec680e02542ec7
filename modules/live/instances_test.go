package live_test

import (
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// TestAChangeThroughOneInstanceReachesAStreamOnAnother: two API processes
// on one PostgreSQL database; a stream opened on B receives a change made
// through A within a second (LISTEN/NOTIFY), and one made through B too.
func TestAChangeThroughOneInstanceReachesAStreamOnAnother(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("two instances share a PostgreSQL database (SQLite: one process)")
	}
	url := testkit.NewDatabase(t)
	a := testkit.Start(t, testkit.WithDatabase(url), testkit.WithRole("api"))
	b := testkit.Start(t, testkit.WithDatabase(url), testkit.WithRole("api"))
	alice := a.SignIn(t, "alice@example.com")
	onB := open(t, b, alice, nil, "")
	began := time.Now()
	a.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "made on A"}).Expect(t, http.StatusCreated)
	e := onB.Next(t, time.Second)
	if e.Event != "task.created" || data(t, e)["title"] != "made on A" {
		t.Fatalf("on B: %+v", e)
	}
	t.Logf("A → B in %s", time.Since(began).Round(time.Millisecond))
	b.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "made on B"}).Expect(t, http.StatusCreated)
	if e := onB.Next(t, time.Second); data(t, e)["content"] != "made on B" {
		t.Fatalf("on B: %+v", e)
	}
}

// TestAThousandStreamsOpenAndCloseWithoutLeaks: 1,000 streams of 100 users
// on one instance each get their user's change, and once closed leave no
// goroutine behind. It logs what the idle streams cost (heap and
// goroutines per stream), the figure in the README.
func TestAThousandStreamsOpenAndCloseWithoutLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	// A closed client is found by the next write: the heartbeat, every second here.
	a := testkit.Start(t, testkit.WithRole("api"), testkit.WithConfig("live.max_streams_per_user", 10),
		testkit.WithConfig("live.heartbeat", "1s"))
	users := make([]*testkit.User, 100)
	for i := range users {
		users[i] = a.SignIn(t, "user"+string(rune('a'+i/26))+string(rune('a'+i%26))+"@example.com")
	}
	http.DefaultClient.CloseIdleConnections()
	runtime.GC()
	before := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	streams := make([]*testkit.SSE, 0, 1000)
	for i := range 1000 {
		streams = append(streams, open(t, a, users[i%100], nil, ""))
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	during := runtime.NumGoroutine()
	// Each stream here has a client side in this process too (the reading
	// goroutine, the transport's two): the server's own share is what
	// remains after subtracting them.
	t.Logf("1,000 idle streams: heap +%.1f MB, %d goroutines (client and server sides in one process)",
		float64(ms.HeapInuse-heapBefore)/(1<<20), during-before)
	for i := range 100 {
		a.Do(t, users[i], http.MethodPost, "/api/v1/notes", map[string]any{"content": "hello"}).Expect(t, http.StatusCreated)
	}
	for i, s := range streams {
		if e := s.Next(t, 10*time.Second); e.Event != "note.created" {
			t.Fatalf("stream %d: %+v", i, e)
		}
	}
	for _, s := range streams {
		s.Close()
	}
	for _, s := range streams {
		<-s.Done
	}
	http.DefaultClient.CloseIdleConnections()
	// fasthttp keeps a finished connection's worker goroutine idle for a
	// while (to serve the next one): what must be gone is every goroutine
	// still in a stream, and every stream the hub knows.
	testkit.Eventually(t, 10*time.Second, "every stream ends", func() bool {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		res, err := http.Get(a.OpsURL + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return !strings.Contains(b.String(), "live.(*eventReader)") &&
			strings.Contains(string(body), "\nperpetua_live_streams 0\n")
	})
}

// TestTheStreamLimitHoldsAcrossInstances: with two streams allowed, a
// user's third stream, opened on instance B, closes the oldest, held by
// instance A.
func TestTheStreamLimitHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("two instances share a PostgreSQL database (SQLite: one process)")
	}
	url := testkit.NewDatabase(t)
	a := testkit.Start(t, testkit.WithDatabase(url), testkit.WithRole("api"), testkit.WithConfig("live.max_streams_per_user", 2))
	b := testkit.Start(t, testkit.WithDatabase(url), testkit.WithRole("api"), testkit.WithConfig("live.max_streams_per_user", 2))
	alice := a.SignIn(t, "alice@example.com")
	oldest := open(t, a, alice, nil, "")
	second := open(t, a, alice, nil, "")
	third := open(t, b, alice, nil, "")
	select {
	case <-oldest.Done:
	case <-time.After(wait):
		t.Fatal("the oldest stream, on the other instance, was not closed")
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "both"}).Expect(t, http.StatusCreated)
	for _, s := range []*testkit.SSE{second, third} {
		if e := s.Next(t, wait); data(t, e)["content"] != "both" {
			t.Fatalf("a stream within the limit: %+v", e)
		}
	}
	if n := a.Count(t, "live_listeners", "user_id = ?", alice.ID); n != 2 {
		t.Fatalf("%d streams leased, want 2", n)
	}
}

// TestWithRedisChangesTravelThroughIt: with REDIS_URL set, instances
// announce commits through Redis pub/sub instead of LISTEN/NOTIFY (which a
// transaction pooler cannot carry): a change through A — in a transaction
// of its own, and in a request's one-transaction Unit — reaches a stream
// on B within a second, with the head poll slowed to 100 s so that only
// Redis can have carried it; the stream limit's closing goes through it too.
func TestWithRedisChangesTravelThroughIt(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("the Redis mode is for PostgreSQL deployments")
	}
	url := testkit.NewDatabase(t)
	opts := func() []testkit.Option {
		return []testkit.Option{testkit.WithDatabase(url), testkit.WithRole("api"),
			testkit.WithConfig("redis.url", "redis://127.0.0.1:6379/0"), testkit.WithConfig("live.poll_interval", "10s"),
			testkit.WithConfig("live.max_streams_per_user", 2)}
	}
	a := testkit.Start(t, opts()...)
	b := testkit.Start(t, opts()...)
	alice := a.SignIn(t, "alice@example.com")
	oldest := open(t, a, alice, nil, "")
	onB := open(t, b, alice, nil, "")
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "through Redis"}).Expect(t, http.StatusCreated)
	if e := onB.Next(t, time.Second); data(t, e)["content"] != "through Redis" {
		t.Fatalf("on B: %+v", e)
	}
	a.Send(t, alice, testkit.Request{Method: http.MethodPost, Path: "/api/v1/tasks", Body: map[string]any{"title": "in a unit"},
		Headers: map[string]string{"Idempotency-Key": "6f1b7a52-6d0e-4d7e-9b7a-1c2d3e4f5a6b"}}).Expect(t, http.StatusCreated)
	if e := onB.Next(t, time.Second); e.Event != "task.created" {
		t.Fatalf("on B, the unit's change: %+v", e)
	}
	open(t, b, alice, nil, "") // a third stream: the oldest, on A, is closed through Redis
	select {
	case <-oldest.Done:
	case <-time.After(wait):
		t.Fatal("the oldest stream was not closed")
	}
}
