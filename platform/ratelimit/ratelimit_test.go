package ratelimit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/perpetuaflow/api/test/testkit"
)

func TestGeneralLimitIsPerUserPerMinute(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("rate_limit.general_per_minute", 3))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	for i := range 3 {
		res := app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
		if got := res.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Fatalf("remaining %q after %d requests", got, i+1)
		}
		if res.Header.Get("X-RateLimit-Limit") != "3" || res.Header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("headers: %v", res.Header)
		}
	}
	res := app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	// Mutations count too, and are refused before they execute.
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "x"}).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	if n := app.Count(t, "tasks", ""); n != 0 {
		t.Fatal("a rate-limited request executed")
	}
	app.Do(t, bob, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)

	app.Clock.Advance(time.Minute)
	// The access token is still valid a minute later.
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
}

func TestAuthLimitIsPerIP(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("rate_limit.auth_per_minute", 2))
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": "a"}).Expect(t, http.StatusUnauthorized)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/logout", map[string]any{"refresh_token": "a"}).Expect(t, http.StatusOK)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": "a"}).
		ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	// Health is never limited.
	for range 5 {
		app.Do(t, nil, http.MethodGet, "/health/live", nil).Expect(t, http.StatusOK)
	}
}

func TestLimitIsSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		t.Skip("several instances share PostgreSQL; the embedded SQLite serves one process")
	}
	db := testkit.NewDatabase(t)
	a := testkit.Start(t, testkit.WithDatabase(db), testkit.WithConfig("rate_limit.general_per_minute", 4))
	b := testkit.Start(t, testkit.WithDatabase(db), testkit.WithConfig("rate_limit.general_per_minute", 4))
	b.Clock.Set(a.Clock.Now())
	alice := a.SignIn(t, "alice@example.com")
	a.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	a.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	b.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	b.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	b.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	a.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
}

func TestRedisStore(t *testing.T) {
	t.Parallel()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
	if err != nil {
		t.Skip("no Redis on 127.0.0.1:6379")
	}
	conn.Close()
	app := testkit.Start(t, testkit.WithConfig("redis.url", "redis://127.0.0.1:6379/0"),
		testkit.WithConfig("rate_limit.general_per_minute", 2))
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	if n := app.Count(t, "rate_limit_counters", ""); n != 0 {
		t.Fatalf("with Redis, %d counters went to the database", n)
	}
}

func TestRotatingXForwardedForDoesNotEscapeTheAuthLimit(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("rate_limit.auth_per_minute", 10),
		testkit.WithConfig("server.proxy_header", "X-Forwarded-For"))
	refresh := func(xff string) *testkit.Response {
		return app.Send(t, nil, testkit.Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh",
			Body: map[string]any{"refresh_token": "a"}, Headers: map[string]string{"X-Forwarded-For": xff}})
	}
	// The client writes the left entries; the proxy (the test's peer, the
	// only one) appended the real address on the right.
	for i := range 10 {
		refresh(fmt.Sprintf("10.0.0.%d, 203.0.113.7", i)).Expect(t, http.StatusUnauthorized)
	}
	refresh("10.0.0.99, 203.0.113.7").ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	refresh("not an address").ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN") // falls back to the peer
	refresh("198.51.100.1").ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")   // another client
}

func TestWindowsComingBackStartOver(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("rate_limit.general_per_minute", 2))
	alice := app.SignIn(t, "alice@example.com")
	now := app.Clock.Now()
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	// The clock goes back a window (another instance's, a correction): the
	// lease of the later window is not reused for the earlier one.
	app.Clock.Set(now.Add(-time.Minute))
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	app.Clock.Set(now)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
}

// redisProxy forwards a local port to Redis until it is cut, and can
// listen again on the same port: Redis going away and coming back.
type redisProxy struct {
	addr  string
	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func (p *redisProxy) listen(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", "127.0.0.1:6379")
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *redisProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A configured Redis that cannot be reached: /health/ready answers 503
// naming it, requests are let through (fail open), and the logger says so
// once — and once again when it is back — however many requests came.
func TestUnreachableRedisIsNotReadyAndLoggedOncePerChange(t *testing.T) {
	t.Parallel()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
	if err != nil {
		t.Skip("no Redis on 127.0.0.1:6379")
	}
	conn.Close()
	proxy := &redisProxy{addr: "127.0.0.1:0"}
	proxy.listen(t)
	t.Cleanup(proxy.cut)
	core, logs := observer.New(zapcore.DebugLevel) // the Redis client logs at debug
	app := testkit.Start(t, testkit.WithConfig("redis.url", "redis://"+proxy.addr+"/0"),
		testkit.WithConfig("rate_limit.general_per_minute", 1000),
		testkit.WithFx(fx.Decorate(func(*zap.Logger) *zap.Logger { return zap.New(core) })))
	alice := app.SignIn(t, "alice@example.com")
	ready := func() map[string]any {
		res, err := http.Get(app.OpsURL + "/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		body["status_code"] = res.StatusCode
		return body
	}
	if r := ready(); r["status_code"] != http.StatusOK {
		t.Fatalf("ready with Redis up: %v", r)
	}
	proxy.cut()
	for range 20 { // no lease is granted: every request asks the store
		app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	}
	r := ready()
	if r["status_code"] != http.StatusServiceUnavailable || r["checks"].(map[string]any)["redis"].(map[string]any)["status"] != "error" {
		t.Fatalf("ready with Redis down: %v", r)
	}
	if n := logs.FilterMessageSnippet("rate limit store unreachable").Len(); n != 1 {
		t.Fatalf("%d lines say the store is unreachable, want 1", n)
	}
	proxy.listen(t)
	testkit.Eventually(t, 10*time.Second, "Redis back", func() bool {
		app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
		return logs.FilterMessageSnippet("reachable again").Len() == 1
	})
	// The client probes a refused address once a second before it dials
	// again: readiness follows within that.
	testkit.Eventually(t, 10*time.Second, "ready with Redis back", func() bool { return ready()["status_code"] == http.StatusOK })
	for _, e := range logs.All() {
		if e.LoggerName == "redis" && e.Level > zapcore.DebugLevel {
			t.Errorf("the Redis client logged above debug: %v", e.Message)
		}
	}
}
