package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// server is one running perpetua process.
type server struct {
	cmd   *exec.Cmd
	base  string
	ops   string
	log   *os.File
	ready time.Duration
}

// freePort asks the kernel for a port that is free now.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// start runs the binary with env and args and waits until it is ready.
func start(o options, name string, env []string, args ...string) (*server, error) {
	port, ops := freePort(), freePort()
	logFile, err := os.Create(filepath.Join(o.work, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.binary, args...)
	cmd.Env = append(append(os.Environ(), env...), "PORT="+port, "OPS_PORT="+ops)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://127.0.0.1:" + port, ops: "http://127.0.0.1:" + ops, log: logFile}
	readyURL := s.ops + "/health/ready"
	for {
		res, err := http.Get(readyURL)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.ready = time.Since(began)
				return s, nil
			}
		}
		if time.Since(began) > 60*time.Second {
			s.stop()
			out, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("%s not ready after 60s:\n%s", name, tail(out))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// peakRSS is the process's peak resident set size (VmHWM), in MB.
func (s *server) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}

// client sends the API's requests.
type client struct {
	base string
	http *http.Client
}

func newClient(base string, conns int) *client {
	return &client{base: base, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute,
		DisableCompression: true,
	}}}
}

// do sends a request and decodes the answer into out (when not nil); it
// returns the status.
func (c *client) do(method, path, token string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != http.MethodGet {
		req.Header.Set("Idempotency-Key", newKey())
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, res.Body)
		return res.StatusCode, err
	}
	return res.StatusCode, json.NewDecoder(res.Body).Decode(out)
}

// newKey is a random UUID v4 (an Idempotency-Key).
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// seeded is a user of the data set.
type seeded struct {
	ID    string
	Token string
}

// seed signs users in (dev login) and creates their tasks through the API.
func seed(c *client, users, tasksEach, concurrency int, prefix string) ([]seeded, error) {
	out := make([]seeded, users)
	for i := range out {
		var ans struct {
			AccessToken string `json:"access_token"`
			User        struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		status, err := c.do(http.MethodPost, "/api/v1/auth/dev/login", "",
			map[string]string{"email": fmt.Sprintf("%s-%d@bench.example.com", prefix, i)}, &ans)
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("dev login: %d %v", status, err)
		}
		out[i] = seeded{ID: ans.User.ID, Token: ans.AccessToken}
	}
	type job struct{ user, n int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				status, err := c.do(http.MethodPost, "/api/v1/tasks", out[j.user].Token,
					map[string]any{"title": fmt.Sprintf("Task %d of user %d", j.n, j.user), "priority": []string{"low", "medium", "high"}[j.n%3]}, nil)
				if err != nil || status != http.StatusCreated {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("seed task: %d %v", status, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for n := range tasksEach {
		for u := range users {
			jobs <- job{user: u, n: n}
		}
	}
	close(jobs)
	wg.Wait()
	return out, firstErr
}

// scratchDB creates a database next to admin's and returns its URL and a
// function that drops it.
func scratchDB(admin string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	name := "perpetua_bench_" + strconv.Itoa(os.Getpid())
	ctx := context.Background()
	_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	}, nil
}
