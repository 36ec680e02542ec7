package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// procStats reads a process's resident memory (kB) and CPU time (clock
// ticks, user + system) from /proc.
func procStats(t *testing.T, pid int) (rssKB, ticks int64) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return rssKB, ut + st
}

// TestIdleStreamsCostLittle measures what 1,000 open, idle live streams
// cost one process (--role=api on PostgreSQL, --role=all on SQLite) (resident memory, and CPU over 5 s at rest
// with a heartbeat every 2 s, 7.5 times the default), for the README: `go test ./test/e2e -run
// IdleStreams -v`. It asserts only that every stream opens and that the
// process forgets them once they close.
func TestIdleStreamsCostLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	issuer := testkit.NewIssuer(t)
	port, opsPort := testkit.FreePort(t), testkit.FreePort(t)
	base, ops := "http://127.0.0.1:"+port, "http://127.0.0.1:"+opsPort
	env := []string{"DATABASE_URL=" + testkit.NewDatabase(t), "JWT_PRIVATE_KEY=" + testkit.PrivateKeyPEM(t),
		"GOOGLE_ISSUER_URL=" + issuer.URL, "GOOGLE_CLIENT_ID=" + issuer.ClientID, "PORT=" + port, "OPS_PORT=" + opsPort,
		"DATA_DIR=" + t.TempDir(), "ENVIRONMENT=development", "LOG_LEVEL=warn", "RATE_LIMIT_GENERAL=100000",
		"RATE_LIMIT_AUTH=100000", "PERPETUA_LIVE_MAX_STREAMS_PER_USER=100", "PERPETUA_LIVE_HEARTBEAT=2s"}
	role := "--role=all" // the embedded SQLite serves one process
	if testkit.Postgres() {
		role = "--role=api"
	}
	api := run(t, env, role)
	testkit.WaitReady(t, base, api)
	c := &client{t: t, base: base}
	var tokens []string
	for i := range 10 {
		a := c.do("", http.MethodPost, "/api/v1/auth/google/callback",
			map[string]any{"id_token": issuer.IDToken(t, testkit.GoogleClaims{Email: fmt.Sprintf("u%d@example.com", i), Name: "S"})}, "").
			expect(t, http.StatusOK, "")
		tokens = append(tokens, a.body["access_token"].(string))
	}
	gauge := func() string {
		res, err := http.Get(ops + "/metrics")
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "perpetua_live_streams ") {
				return strings.TrimPrefix(line, "perpetua_live_streams ")
			}
		}
		return ""
	}
	pid := api.Cmd.Process.Pid
	rss0, _ := procStats(t, pid)
	streams := make([]*testkit.SSE, 0, 1000)
	for i := range 1000 {
		ticket := c.do(tokens[i%10], http.MethodPost, "/api/v1/events/ticket", nil, "").expect(t, http.StatusOK, "").data()["ticket"].(string)
		s := testkit.OpenSSE(t, base+"/api/v1/events?ticket="+ticket, nil)
		if s.Status != http.StatusOK {
			t.Fatalf("stream %d: %d", i, s.Status)
		}
		streams = append(streams, s)
	}
	testkit.Eventually(t, 10*time.Second, "1,000 streams open", func() bool { return gauge() == "1000" })
	rss1, cpu1 := procStats(t, pid)
	rest := 5 * time.Second
	time.Sleep(rest) // a measurement at rest, not a wait for work
	rss2, cpu2 := procStats(t, pid)
	tick := 100.0 // USER_HZ on Linux
	t.Logf("1,000 idle streams: RSS %d MB before, %d MB open (+%.1f kB per stream), %d MB after %s at rest; CPU at rest %.2f%% of a core",
		rss0/1024, rss1/1024, float64(rss1-rss0)/1000, rss2/1024, rest, 100*float64(cpu2-cpu1)/tick/rest.Seconds())
	for _, s := range streams {
		s.Close()
	}
	// The server finds a closed client at its next write (the heartbeat).
	testkit.Eventually(t, 30*time.Second, "the process forgets every stream", func() bool { return gauge() == "0" })
	api.Stop(t)
}

// TestTwoAPIProcessesShareLiveUpdates: two --role=api processes of the
// binary on one PostgreSQL database; a stream opened on B receives, within
// a second, a change made through A.
func TestTwoAPIProcessesShareLiveUpdates(t *testing.T) {
	if !testkit.Postgres() {
		t.Skip("several processes share a PostgreSQL database (SQLite: one process)")
	}
	issuer := testkit.NewIssuer(t)
	db := testkit.NewDatabase(t)
	common := []string{"DATABASE_URL=" + db, "JWT_PRIVATE_KEY=" + testkit.PrivateKeyPEM(t), "GOOGLE_ISSUER_URL=" + issuer.URL,
		"GOOGLE_CLIENT_ID=" + issuer.ClientID, "DATA_DIR=" + t.TempDir(), "ENVIRONMENT=development", "LOG_LEVEL=warn",
		"PERPETUA_DATABASE_AUTO_MIGRATE=false"}
	migrate := run(t, common, "migrate")
	if err := <-migrate.Done; err != nil {
		t.Fatalf("migrate: %v\n%s", err, migrate.Out.String())
	}
	start := func() string {
		port := testkit.FreePort(t)
		p := run(t, append(common, "PORT="+port, "OPS_PORT="+testkit.FreePort(t)), "--role=api")
		base := "http://127.0.0.1:" + port
		testkit.WaitReady(t, base, p)
		return base
	}
	a, b := &client{t: t, base: start()}, &client{t: t, base: start()}
	token := a.do("", http.MethodPost, "/api/v1/auth/google/callback",
		map[string]any{"id_token": issuer.IDToken(t, testkit.GoogleClaims{Email: "alice@example.com", Name: "A"})}, "").
		expect(t, http.StatusOK, "").body["access_token"].(string)
	ticket := b.do(token, http.MethodPost, "/api/v1/events/ticket", nil, "").expect(t, http.StatusOK, "").data()["ticket"].(string)
	stream := testkit.OpenSSE(t, b.base+"/api/v1/events?ticket="+ticket, nil)
	if stream.Status != http.StatusOK {
		t.Fatalf("stream on B: %d", stream.Status)
	}
	began := time.Now()
	a.do(token, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "through A"}, "").expect(t, http.StatusCreated, "")
	e := stream.Next(t, time.Second)
	if e.Event != "task.created" || !strings.Contains(e.Data, "through A") {
		t.Fatalf("on B: %+v", e)
	}
	t.Logf("a change through process A reached a stream on process B in %s", time.Since(began).Round(time.Millisecond))
}
