package testkit

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildBinary builds the perpetua binary into a temporary directory (for a
// TestMain) and returns its path and a function that removes it; flags are
// added to go build (-ldflags …).
func BuildBinary(flags ...string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "perpetua-bin-")
	if err != nil {
		return "", nil, err
	}
	binary := filepath.Join(dir, "perpetua")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", append(append([]string{"build", "-o", binary}, flags...), ".")...)
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build: %w", err)
	}
	return binary, func() { os.RemoveAll(dir) }, nil
}

// Proc is one running perpetua process.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Out  *SyncBuffer
	Done chan error
}

// SyncBuffer is a bytes.Buffer safe for one writer and readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a TCP port that is free, for a process to listen on. It
// is taken below the kernel's ephemeral range: a port from that range can be
// given to some outgoing connection (a test's HTTP client) between this call
// and the process binding it, or between a kill and a restart on it.
func FreePort(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 10000 + mrand.IntN(low-10000)
		if portsTaken[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		portsTaken[port] = true
		return strconv.Itoa(port)
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

var (
	portsMu    sync.Mutex
	portsTaken = map[int]bool{}
)

// ephemeralLow is the first port the kernel gives outgoing connections.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				return n
			}
		}
	}
	return 32768
}

// Run starts binary with args and env added to the test's environment. The
// process is killed when the test ends, and its output shown if it failed.
func Run(t testing.TB, binary string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: strings.Join(args, " "), Out: &SyncBuffer{}, Done: make(chan error, 1)}
	p.Cmd = exec.Command(binary, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
	go func() { p.Done <- p.Cmd.Wait() }()
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Kill()
			<-p.Done
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.Name, p.Out.String())
		}
	})
	return p
}

// Stop sends SIGTERM and expects a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal %s: %v", p.Name, err)
	}
	select {
	case err := <-p.Done:
		if err != nil {
			t.Fatalf("%s exited with %v", p.Name, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s", p.Name)
	}
}

// Kill ends the process with SIGKILL (kill -9): no shutdown, no flushing.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.Name, err)
	}
	<-p.Done
}

// WaitReady polls base/health/ready until it answers 200 and returns how
// long that took.
func WaitReady(t testing.TB, base string, p *Proc) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.Done:
			t.Fatalf("%s exited early: %v\n%s", p.Name, err, p.Out.String())
		default:
		}
		res, err := http.Get(base + "/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s", p.Name, base)
	return 0
}

// MainWithBinary is the TestMain of a package whose tests run the binary:
// it builds it (flags added to go build) into *binary, runs the tests,
// removes it and exits.
func MainWithBinary(m *testing.M, binary *string, flags ...string) {
	bin, cleanup, err := BuildBinary(flags...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}
