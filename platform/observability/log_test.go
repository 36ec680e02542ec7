package observability

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perpetuaflow/api/platform/config"
)

// lockedBuffer is standard error as the test sees it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if i := strings.Index(line, `"msg":"`); i >= 0 {
			out = append(out, strings.SplitN(line[i+7:], `"`, 2)[0])
		}
	}
	return out
}

func jsonConfig() *config.Config {
	return &config.Config{Environment: config.Production, Log: config.LogConfig{Level: "info", Format: "json"}}
}

// A batched logger holds info lines until a warning, which writes them
// before itself, in order; stop writes what waits, and lines after stop are
// written as they come.
func TestBatchedLinesWaitForAWarningOrTheStop(t *testing.T) {
	var out lockedBuffer
	log, stop, err := newLogger(jsonConfig(), time.Hour, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("one")
	log.With().Info("two")
	if got := out.messages(); len(got) != 0 {
		t.Fatalf("info lines written before the flush: %q", got)
	}
	log.Warn("three")
	if got := strings.Join(out.messages(), ","); got != "one,two,three" {
		t.Fatalf("after a warning: %q, want one,two,three", got)
	}
	log.Named("jobs").Info("four")
	if got := strings.Join(out.messages(), ","); got != "one,two,three" {
		t.Fatalf("an info line did not wait: %q", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	log.Info("five")
	if got := strings.Join(out.messages(), ","); got != "one,two,three,four,five" {
		t.Fatalf("at and after stop: %q, want one,…,five", got)
	}
}

// The buffer is written out every flush interval with nothing else to
// prompt it; an interval of 0 writes every line at once.
func TestBatchedLinesAreWrittenOnTheTimer(t *testing.T) {
	var out lockedBuffer
	log, stop, err := newLogger(jsonConfig(), 10*time.Millisecond, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer stop() //nolint:errcheck
	log.Info("waiting")
	deadline := time.Now().Add(5 * time.Second)
	for len(out.messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the info line was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}

	var direct lockedBuffer
	log, _, err = newLogger(jsonConfig(), 0, &direct)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("at once")
	if got := direct.messages(); len(got) != 1 {
		t.Fatalf("unbatched logger wrote %q", got)
	}
}
