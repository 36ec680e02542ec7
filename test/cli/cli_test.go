// Package cli_test runs the perpetua binary as an operator would: help and
// version, start failures, config check and print, migrate status and the
// users commands, on the database of the run (SQLite or PostgreSQL).
package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perpetuaflow/api/test/testkit"
)

var binary string

func TestMain(m *testing.M) {
	testkit.MainWithBinary(m, &binary, "-ldflags",
		"-X github.com/perpetuaflow/api/app.Version=1.2.3 -X github.com/perpetuaflow/api/app.Commit=abc1234 "+
			"-X github.com/perpetuaflow/api/app.BuildDate=2026-12-06T10:00:00Z")
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary to its end with env over a clean environment (a
// scratch data directory, free ports).
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "DATA_DIR=" + t.TempDir(),
		"PORT=0", "OPS_PORT=0"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r result) expect(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func TestHelpAndVersionFollowConventions(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := run(t, nil, args...).expect(t, 0)
		for _, want := range []string{"serve", "migrate", "healthcheck", "config", "users", "version"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v does not list %s:\n%s", args, want, r.stdout)
			}
		}
	}
	for _, args := range [][]string{{"help", "migrate"}, {"migrate", "--help"}, {"help", "users", "grant-credits"}} {
		if r := run(t, nil, args...).expect(t, 0); !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: %s", args, r.stdout)
		}
	}
	want := regexp.MustCompile(`^perpetua 1\.2\.3 \(abc1234, 2026-12-06T10:00:00Z, go1\.\d+[^)]*\)\n$`)
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if r := run(t, nil, args...).expect(t, 0); !want.MatchString(r.stdout) {
			t.Errorf("%v printed %q", args, r.stdout)
		}
	}
	for _, args := range [][]string{{"frobnicate"}, {"--frobnicate"}, {"serve", "--role=both"}, {"migrate", "extra"},
		{"users", "show"}} {
		r := run(t, nil, args...).expect(t, 2)
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines != 1 || !strings.HasPrefix(r.stderr, "perpetua: ") {
			t.Errorf("%v: %d lines on stderr: %q", args, lines, r.stderr)
		}
	}
}

// tables counts the tables of the database at url; on SQLite, -1 when the
// file exists at all (it was opened, so touched).
func tables(t *testing.T, url string) int {
	t.Helper()
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return 0
		}
		return -1
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every start failure is one line on stderr, exits 1, and touches no
// database: the configuration (every module's) is checked first.
func TestStartFailuresAreOneLineAndTouchNothing(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		env  []string
		want string
	}{
		"bad worker count":        {[]string{"PERPETUA_JOBS_WORKERS=-1"}, "jobs.workers (from PERPETUA_JOBS_WORKERS): must be at least 1"},
		"production without keys": {[]string{"ENVIRONMENT=production"}, "auth.google_client_id"},
		"production without JWT key": {[]string{"ENVIRONMENT=production", "GOOGLE_CLIENT_ID=x.apps.googleusercontent.com"},
			"auth.jwt_private_key: required in production"},
		"bad port": {[]string{"PORT=abc"}, "server.port (from PORT)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			url := testkit.NewDatabase(t)
			if strings.HasPrefix(url, "sqlite:") {
				url = "sqlite:" + filepath.Join(dir, "never.db")
			}
			r := run(t, append([]string{"DATABASE_URL=" + url}, c.env...)).expect(t, 1)
			if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, c.want) ||
				strings.Contains(r.stderr, "{") || r.stdout != "" {
				t.Fatalf("want one line naming %q; stdout %q, stderr %q", c.want, r.stdout, r.stderr)
			}
			if n := tables(t, url); n != 0 {
				t.Fatalf("the database was touched (%d tables) by a process that refused to start", n)
			}
		})
	}
	t.Run("database unreachable", func(t *testing.T) {
		t.Parallel()
		r := run(t, []string{"DATABASE_URL=postgres://postgres@127.0.0.1:" + testkit.FreePort(t) + "/perpetua"}).expect(t, 1)
		if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "cannot use PostgreSQL at 127.0.0.1") ||
			!strings.Contains(r.stderr, "DATABASE_URL") || r.stdout != "" {
			t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})
	t.Run("the framework speaks at debug", func(t *testing.T) {
		t.Parallel()
		r := run(t, []string{"DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "x.db"), "PERPETUA_JOBS_WORKERS=-1",
			"LOG_LEVEL=debug", "LOG_FORMAT=json"}).expect(t, 1)
		if !strings.Contains(r.stdout+r.stderr, `"logger":"fx"`) {
			t.Fatalf("no framework output at debug: %s %s", r.stdout, r.stderr)
		}
	})
}

func TestConfigCheckNamesEveryBadKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, good, "server:\n  port: 8081\njobs:\n  workers: 4\n")
	writeFile(t, bad, "server:\n  port: 8081\njobs:\n  workers: 0\nai:\n  timeout: 0s\nlog:\n  level: loud\n")
	if r := run(t, nil, "config", "check", "--config", good).expect(t, 0); !strings.Contains(r.stdout, "configuration ok") {
		t.Fatalf("good file: %q", r.stdout)
	}
	r := run(t, []string{"ENVIRONMENT=production", "RATE_LIMIT_AI=none"}, "config", "check", "--config", bad).expect(t, 1)
	for _, want := range []string{
		"jobs.workers (from file " + bad + "): must be at least 1",
		"ai.timeout (from file " + bad + "): must be positive",
		"log.level (from file " + bad + ")",
		"rate_limit.ai_per_minute (from RATE_LIMIT_AI)",
		"auth.google_client_id: required in production",
		"auth.jwt_private_key: required in production",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("config check does not name %q:\n%s", want, r.stderr)
		}
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; n != 6 {
		t.Errorf("%d lines, want one per problem (6):\n%s", n, r.stderr)
	}
	run(t, nil, "config", "check", "--config", filepath.Join(dir, "missing.yaml")).expect(t, 1)
}

func TestConfigPrintSaysWhereEachValueCameFromAndHidesSecrets(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.yaml")
	writeFile(t, file, "jobs:\n  workers: 7\n")
	r := run(t, []string{"PORT=8123", "OPENAI_API_KEY=sk-very-secret", "DATABASE_URL=postgres://app:hunter2@db.internal:5432/perpetua",
		"CHECKOUT_WEBHOOK_SECRET=whsec-secret"}, "config", "print", "--json", "--config", file).expect(t, 0)
	var settings []struct {
		Key    string `json:"key"`
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &settings); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	got := map[string][2]string{}
	for _, s := range settings {
		got[s.Key] = [2]string{fmt.Sprint(s.Value), s.Source}
	}
	for key, want := range map[string][2]string{
		"server.port":                     {"8123", "PORT"},
		"jobs.workers":                    {"7", "file " + file},
		"server.ops_port":                 {"0", "OPS_PORT"},
		"ai.api_key":                      {"(redacted)", "OPENAI_API_KEY"},
		"billing.checkout.webhook_secret": {"(redacted)", "CHECKOUT_WEBHOOK_SECRET"},
		"database.url":                    {"postgres://app:(redacted)@db.internal:5432/perpetua", "DATABASE_URL"},
		"rate_limit.ai_per_minute":        {"", "default"},
	} {
		g, ok := got[key]
		if !ok || (want[0] != "" && g[0] != want[0]) || g[1] != want[1] {
			t.Errorf("%s: got %v, want %v", key, g, want)
		}
	}
	for _, secret := range []string{"sk-very-secret", "hunter2", "whsec-secret"} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("config print shows a secret: %s", secret)
		}
	}
	if r := run(t, []string{"PORT=8123"}, "config", "print").expect(t, 0); !strings.Contains(r.stdout, "server.port") {
		t.Fatalf("table: %s", r.stdout)
	}
}

func TestMigrateStatusListsAppliedAndPending(t *testing.T) {
	t.Parallel()
	url := testkit.NewDatabase(t)
	env := []string{"DATABASE_URL=" + url}
	status := func() (applied, pending int) {
		var body struct {
			Migrations []struct {
				ID      string `json:"id"`
				Applied bool   `json:"applied"`
			} `json:"migrations"`
		}
		r := run(t, env, "migrate", "status", "--json").expect(t, 0)
		if err := json.Unmarshal([]byte(r.stdout), &body); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		for _, m := range body.Migrations {
			if m.Applied {
				applied++
			} else {
				pending++
			}
		}
		return
	}
	if a, p := status(); a != 0 || p < 20 {
		t.Fatalf("fresh database: %d applied, %d pending", a, p)
	}
	run(t, env, "migrate").expect(t, 0)
	if a, p := status(); a < 20 || p != 0 {
		t.Fatalf("migrated database: %d applied, %d pending", a, p)
	}
	if r := run(t, env, "migrate", "status").expect(t, 0); !strings.Contains(r.stdout, " 0 pending") {
		t.Fatalf("table: %s", r.stdout)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The start line names where the API, its docs and the ops listener are,
// in JSON or, for a person, in readable lines.
func TestTheStartLineNamesTheURLs(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			port, ops := testkit.FreePort(t), testkit.FreePort(t)
			p := testkit.Run(t, binary, []string{"DATA_DIR=" + t.TempDir(), "PORT=" + port, "OPS_PORT=" + ops,
				"DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "x.db"), "LOG_FORMAT=" + format}, "serve")
			testkit.WaitReady(t, "http://127.0.0.1:"+port, p)
			var line string
			testkit.Eventually(t, 10*time.Second, "the start line", func() bool {
				for _, l := range strings.Split(p.Out.String(), "\n") {
					if strings.Contains(l, "ready") && strings.Contains(l, "startup") {
						line = l
						return true
					}
				}
				return false
			})
			p.Stop(t)
			for _, want := range []string{"http://localhost:" + port, "http://localhost:" + port + "/docs", "http://localhost:" + ops + "/metrics"} {
				if !strings.Contains(line, want) {
					t.Errorf("the start line lacks %s: %s", want, line)
				}
			}
			if json.Valid([]byte(line)) != (format == "json") {
				t.Errorf("LOG_FORMAT=%s wrote %s", format, line)
			}
		})
	}
}

// A port in use stops the start with one line naming the setting, before
// anything ran.
func TestAPortInUseIsOneLine(t *testing.T) {
	t.Parallel()
	port := testkit.FreePort(t)
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := run(t, []string{"PORT=" + port, "DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "x.db")}).expect(t, 1)
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "server.port (PORT) "+port+": another process listens on it") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// serve writes its batched log lines out when it stops: the access line of
// the last request before SIGTERM is there, with a flush interval far
// longer than the test.
func TestServeWritesItsLogAtStop(t *testing.T) {
	t.Parallel()
	port, ops := testkit.FreePort(t), testkit.FreePort(t)
	p := testkit.Run(t, binary, []string{"DATA_DIR=" + t.TempDir(), "PORT=" + port, "OPS_PORT=" + ops, "LOG_FORMAT=json",
		"DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "x.db"), "PERPETUA_LOG_FLUSH_INTERVAL=10s"}, "serve")
	testkit.WaitReady(t, "http://127.0.0.1:"+port, p)
	res, err := http.Get("http://127.0.0.1:" + port + "/api/v1/no-such-page-before-stop")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	p.Stop(t)
	if !strings.Contains(p.Out.String(), "/api/v1/no-such-page-before-stop") {
		t.Fatalf("the last request's access line is not in the log:\n%s", p.Out.String())
	}
}
