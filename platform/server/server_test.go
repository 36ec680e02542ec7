package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/test/testkit"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	live := app.Do(t, nil, http.MethodGet, "/health/live", nil).Expect(t, http.StatusOK).JSON(t)
	if live["status"] != "ok" {
		t.Fatalf("live: %v", live)
	}
	ready := app.Do(t, nil, http.MethodGet, "/health/ready", nil).Expect(t, http.StatusOK).JSON(t)
	db := ready["checks"].(map[string]any)["database"].(map[string]any)
	if ready["status"] != "ok" || db["status"] != "ok" {
		t.Fatalf("ready: %v", ready)
	}
}

func TestReadinessFailsWithAFailingDependency(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithFx(fx.Provide(platform.AsCheck(func() platform.Check {
		return platform.Check{Name: "queue", Run: func(context.Context) error { return errors.New("unreachable") }}
	}))))
	ready := app.Do(t, nil, http.MethodGet, "/health/ready", nil).Expect(t, http.StatusServiceUnavailable).JSON(t)
	q := ready["checks"].(map[string]any)["queue"].(map[string]any)
	if ready["status"] != "error" || q["status"] != "error" || q["message"] != "unreachable" {
		t.Fatalf("ready: %v", ready)
	}
	app.Do(t, nil, http.MethodGet, "/health/live", nil).Expect(t, http.StatusOK)
}

func TestReadinessFailsWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	if !testkit.Postgres() {
		// On SQLite the job workers share the pool and would spend seconds
		// winding down on it; database_test covers Ping on a closed pool.
		t.Skip("needs the api role, which needs PostgreSQL")
	}
	app := testkit.Start(t, testkit.WithRole(platform.RoleAPI))
	if err := app.DB.SQL.Close(); err != nil {
		t.Fatal(err)
	}
	ready := app.Do(t, nil, http.MethodGet, "/health/ready", nil).Expect(t, http.StatusServiceUnavailable).JSON(t)
	if ready["checks"].(map[string]any)["database"].(map[string]any)["status"] != "error" {
		t.Fatalf("ready: %v", ready)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+"018f0000-0000-7000-8000-000000000000", nil).Expect(t, http.StatusNotFound)
	app.Do(t, nil, http.MethodGet, "/no/such/route/"+strings.Repeat("x", 10), nil).Expect(t, http.StatusNotFound)
	app.Do(t, nil, http.MethodGet, "/metrics", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	res, err := http.Get(app.OpsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	text := string(body)
	for _, want := range []string{
		`perpetua_http_requests_total{method="GET",route="/api/v1/tasks",status="200"} 1`,
		`perpetua_http_requests_total{method="GET",route="/api/v1/tasks/:id",status="404"} 1`,
		`perpetua_http_requests_total{method="GET",route="unmatched",status="404"} 2`,
		`perpetua_http_request_duration_seconds_bucket{method="GET",route="/api/v1/tasks"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The pool that really serves the queries: pgx's on PostgreSQL, where
	// database/sql keeps no connection of its own.
	pool := map[string]bool{"go_sql_open_connections": false, "go_sql_max_open_connections": false}
	if testkit.Postgres() {
		pool = map[string]bool{"perpetua_db_pool_connections": false, "perpetua_db_pool_acquires_total": false,
			"perpetua_db_pool_max_connections": false}
	}
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if _, want := pool[name]; ok && want {
			n, err := strconv.ParseFloat(value, 64)
			pool[name] = err == nil && n >= 1
		}
	}
	for name, ok := range pool {
		if !ok {
			t.Errorf("%s is missing or 0 although the test's requests used the pool", name)
		}
	}
	if testkit.Postgres() && strings.Contains(text, "go_sql_open_connections") {
		t.Error("go_sql_* is exported on PostgreSQL, where it reads 0 beside pgx's pool")
	}
}

// slow is a route that waits for the test, to observe shutdown.
type slow struct {
	entered chan struct{}
	release chan struct{}
}

func (s *slow) Register(api huma.API) {
	huma.Register(api, httpx.Public(httpx.Route(http.MethodGet, "/api/v1/test/slow", "test-slow", "waits", "Test")),
		func(ctx context.Context, _ *struct{}) (*httpx.DataOutput[string], error) {
			s.entered <- struct{}{}
			<-s.release
			return httpx.Reply("finished"), nil
		})
}

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	t.Parallel()
	s := &slow{entered: make(chan struct{}), release: make(chan struct{})}
	app := testkit.Start(t, testkit.WithFx(fx.Provide(platform.AsRoutes(func() *slow { return s }))))
	done := make(chan *testkit.Response, 1)
	failed := make(chan error, 1)
	go func() {
		res, err := app.Call(nil, testkit.Request{Method: http.MethodGet, Path: "/api/v1/test/slow"})
		failed <- err
		done <- res
	}()
	<-s.entered
	stopped := make(chan error)
	go func() { stopped <- app.Stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("stopped (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(s.release)
	if err := <-failed; err != nil {
		t.Fatal(err)
	}
	res := <-done
	res.Expect(t, http.StatusOK)
	if got := res.JSON(t)["data"]; got != "finished" {
		t.Fatalf("body %s", res.Body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := http.Get(app.URL + "/health/live"); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}

// rawExchange writes req on a new connection and returns what comes back.
func rawExchange(t *testing.T, url string, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(conn)
	return string(out)
}

func TestLargeHeadsAndMalformedRequestsGetTheEnvelope(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	// Real-world heads (long tokens, cookies) of 8-12 KB are served.
	app.Send(t, alice, testkit.Request{Method: http.MethodGet, Path: "/api/v1/tasks",
		Headers: map[string]string{"Cookie": strings.Repeat("c", 10_000)}}).Expect(t, http.StatusOK)
	app.Send(t, nil, testkit.Request{Method: http.MethodGet, Path: "/api/v1/tasks",
		Headers: map[string]string{"Authorization": "Bearer " + strings.Repeat("t", 12_000)}}).
		ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks?q="+strings.Repeat("q", 150), nil).Expect(t, http.StatusOK)

	// Beyond the limit: 431 with the envelope, never 500.
	for name, res := range map[string]*testkit.Response{
		"big header": app.Send(t, alice, testkit.Request{Method: http.MethodGet, Path: "/api/v1/tasks",
			Headers: map[string]string{"X-Big": strings.Repeat("b", 20_000)}}),
		"long query": app.Do(t, alice, http.MethodGet, "/api/v1/tasks?q="+strings.Repeat("q", 20_000), nil),
	} {
		res.ExpectError(t, http.StatusRequestHeaderFieldsTooLarge, "REQUEST_HEADERS_TOO_LARGE")
		if res.Header.Get("X-Request-ID") == "" {
			t.Errorf("%s: no request id", name)
		}
	}

	// Malformed HTTP: a plain message, not the parser's, nor the raw bytes.
	raw := rawExchange(t, app.URL, "GET / HTTP/1.1\r\nHost: x\r\nBad Header Secret\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 400") || !strings.Contains(raw, `"code":"VALIDATION_ERROR"`) ||
		!strings.Contains(raw, `"message":"malformed HTTP request"`) || strings.Contains(raw, "Secret") ||
		strings.Contains(raw, "MIME") {
		t.Fatalf("malformed request answered:\n%s", raw)
	}
}

// The docs pages and everything they load come from this server: they work
// without internet access and under a same-origin Content-Security-Policy.
func TestDocsPagesNeedNothingFromOutside(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	attr := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	for _, page := range []string{"/docs", "/redoc"} {
		res := app.Do(t, nil, http.MethodGet, page, nil).Expect(t, http.StatusOK)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("%s: Content-Type %q", page, ct)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if strings.Contains(csp, "http") || !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("%s: CSP %q", page, csp)
		}
		assets := attr.FindAllStringSubmatch(string(res.Body), -1)
		if len(assets) == 0 {
			t.Fatalf("%s loads no assets: %s", page, res.Body)
		}
		for _, m := range assets {
			if !strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//") {
				t.Errorf("%s loads %s from elsewhere", page, m[1])
				continue
			}
			a := app.Do(t, nil, http.MethodGet, m[1], nil)
			if a.Status != http.StatusOK || len(a.Body) == 0 {
				t.Errorf("%s: asset %s answered %d", page, m[1], a.Status)
			}
		}
	}
	// ReDoc's bundle names images too (its footer logo): every absolute URL
	// in it is ours, and is served.
	bundle := app.Do(t, nil, http.MethodGet, "/redoc/redoc.standalone.js", nil).Expect(t, http.StatusOK)
	for _, m := range regexp.MustCompile(`src:"([^"]+)"`).FindAllStringSubmatch(string(bundle.Body), -1) {
		if !strings.HasPrefix(m[1], "/") {
			t.Errorf("the ReDoc bundle loads %s from elsewhere", m[1])
			continue
		}
		if a := app.Do(t, nil, http.MethodGet, m[1], nil); a.Status != http.StatusOK || len(a.Body) == 0 {
			t.Errorf("the ReDoc bundle's %s answered %d", m[1], a.Status)
		}
	}
	app.Do(t, nil, http.MethodGet, "/openapi.json", nil).Expect(t, http.StatusOK)
}
