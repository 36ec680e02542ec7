package ratelimit_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

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
