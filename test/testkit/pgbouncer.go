package testkit

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EnvRequireTools makes a test that needs an outside program (pgbouncer,
// promtool) fail when it is missing instead of skipping: CI installs them.
const EnvRequireTools = "TEST_REQUIRE_TOOLS"

// Tool returns the path of an outside program a test needs (looked up in
// PATH, then in dirs). Without it the test is skipped — or fails, with
// TEST_REQUIRE_TOOLS=1 — saying which Debian package brings it.
func Tool(t testing.TB, name, pkg string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	msg := fmt.Sprintf("%s is needed (apt-get install %s)", name, pkg)
	if os.Getenv(EnvRequireTools) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// PgBouncer starts PgBouncer in transaction pooling mode in front of the
// PostgreSQL of dbURL, with poolSize server connections per database and
// user, and returns dbURL through it. It stops with the test.
func PgBouncer(t testing.TB, dbURL string, poolSize int) string {
	t.Helper()
	bin := Tool(t, "pgbouncer", "pgbouncer", "/usr/sbin")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "5432"
	}
	// PgBouncer refuses to run as root: it drops to the postgres user, which
	// must read its files.
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	listen := FreePort(t)
	users := fmt.Sprintf("%q \"\"\n", u.User.Username())
	ini := strings.Join([]string{
		"[databases]",
		fmt.Sprintf("* = host=%s port=%s", host, port),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		"listen_port = " + listen,
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(dir, "users.txt"),
		"pool_mode = transaction",
		fmt.Sprintf("default_pool_size = %d", poolSize),
		"max_client_conn = 1000",
		"max_db_connections = " + fmt.Sprint(poolSize),
		"ignore_startup_parameters = extra_float_digits",
		"",
	}, "\n")
	for name, body := range map[string]string{"users.txt": users, "pgbouncer.ini": ini} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Skip("pgbouncer will not run as root, and there is no postgres user to run it as")
		}
		args = append([]string{"-u", "postgres"}, args...)
	}
	cmd := exec.Command(bin, args...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pgbouncer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- pgbouncer ---\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", "127.0.0.1:"+listen)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("pgbouncer exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer not listening on %s", listen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pooled := *u
	pooled.Host = "127.0.0.1:" + listen
	return pooled.String()
}
