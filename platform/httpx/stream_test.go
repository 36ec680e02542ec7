package httpx

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
)

// streamServer serves GET /stream, whose body is run, on a real Fiber
// listener; ran receives what run saw when it ended.
func streamServer(t *testing.T, cfg StreamConfig, run func(ctx context.Context, es *EventStream)) string {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReduceMemoryUsage: true})
	api := humafiber.NewV2(app, huma.DefaultConfig("t", "1"))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		huma.Register(api, huma.Operation{OperationID: method, Method: method, Path: "/stream"},
			func(ctx context.Context, _ *struct{}) (*huma.StreamResponse, error) {
				return &huma.StreamResponse{Body: func(hctx huma.Context) { Stream(hctx, cfg, "rid", run) }}, nil
			})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String() + "/stream"
}

// A stream's events and heartbeats reach the client as a well-formed
// chunked body that ends when the stream does, on a connection that closes
// after it (taken over from the server).
func TestAStreamIsAChunkedBodyOfEventsAndHeartbeats(t *testing.T) {
	release := make(chan struct{})
	url := streamServer(t, StreamConfig{WriteTimeout: 5 * time.Second, Heartbeat: 10 * time.Millisecond},
		func(ctx context.Context, es *EventStream) {
			_ = es.Event("", []byte(`{"n":1}`))
			select {
			case <-release:
			case <-ctx.Done():
				return
			}
			_ = es.Event("last", []byte("[DONE]"))
		})
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" || !res.Close {
		t.Fatalf("status %d, transfer encoding %v, connection close %v", res.StatusCode, res.TransferEncoding, res.Close)
	}
	var seen strings.Builder
	buf := make([]byte, 512)
	for strings.Count(seen.String(), ": keep-alive") < 2 {
		n, err := res.Body.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("before the heartbeats: %v, read %q", err, seen.String())
		}
	}
	close(release)
	rest, err := io.ReadAll(res.Body) // to the last chunk, with no error
	if err != nil {
		t.Fatalf("the body did not end cleanly: %v", err)
	}
	got := seen.String() + string(rest)
	if !strings.HasPrefix(got, "data: {\"n\":1}\n\n") || !strings.HasSuffix(got, "event: last\ndata: [DONE]\n\n") {
		t.Fatalf("body %q", got)
	}
}

// A stream whose body is never read (a HEAD request: the header only) still
// runs, at once cancelled and with its client gone, so that what it holds is
// released; its outcome says it did not complete.
func TestAStreamNeverReadRunsWithItsClientGone(t *testing.T) {
	type seen struct{ cancelled, gone bool }
	ran := make(chan seen, 1)
	url := streamServer(t, StreamConfig{WriteTimeout: time.Second, Heartbeat: time.Hour},
		func(ctx context.Context, es *EventStream) {
			ran <- seen{cancelled: ctx.Err() != nil, gone: es.Event("", []byte("x")) != nil && es.Gone()}
		})
	res, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %d", res.StatusCode)
	}
	select {
	case s := <-ran:
		if !s.cancelled || !s.gone {
			t.Fatalf("the unread stream ran with %+v, want cancelled and gone", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unread stream never ran")
	}
}
