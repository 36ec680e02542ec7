package testkit

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SSEEvent is one server-sent event as a client parses it.
type SSEEvent struct {
	ID    string
	Event string
	Data  string
	Retry string
}

// SSE is an open event stream read by a goroutine into Events.
type SSE struct {
	Status int
	Events chan SSEEvent
	// Done is closed when the server ended the stream (or it failed).
	Done   chan struct{}
	cancel context.CancelFunc
}

// OpenSSE opens GET url with the headers and reads its events until Close.
func OpenSSE(t testing.TB, url string, headers map[string]string) *SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &SSE{Status: res.StatusCode, Events: make(chan SSEEvent, 64), Done: make(chan struct{}), cancel: cancel}
	t.Cleanup(s.Close)
	go func() {
		defer close(s.Done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var e SSEEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 || e.Event != "" || e.ID != "" {
					e.Data = strings.Join(data, "\n")
					s.Events <- e
				}
				e, data = SSEEvent{}, nil
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id:"):
				e.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
			case strings.HasPrefix(line, "event:"):
				e.Event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			case strings.HasPrefix(line, "retry:"):
				e.Retry = strings.TrimSpace(strings.TrimPrefix(line, "retry:"))
			}
		}
	}()
	return s
}

// Next returns the next event that is not a retry hint, failing after
// within.
func (s *SSE) Next(t testing.TB, within time.Duration) SSEEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-s.Events:
			if e.Event == "" && e.Data == "" && e.ID == "" {
				continue
			}
			return e
		case <-s.Done:
			select {
			case e := <-s.Events:
				return e
			default:
			}
			t.Fatal("the stream ended")
		case <-deadline:
			t.Fatalf("no event within %s", within)
		}
	}
}

// Close disconnects.
func (s *SSE) Close() { s.cancel() }
