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

// streamServer serves GET /stream, whose body is run, and GET /plain on a
// real Fiber listener (keeping hijacked connections, as platform/server's
// does, when keeps).
func streamServer(t *testing.T, keeps bool, cfg StreamConfig, run func(ctx context.Context, es *EventStream)) string {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReduceMemoryUsage: true})
	app.Server().KeepHijackedConns = keeps
	app.Get("/plain", func(c *fiber.Ctx) error { return c.SendString(strings.Repeat("p", 4096)) })
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
// On a server that keeps hijacked connections the stream runs in a
// goroutine of its own while fasthttp reuses the request it came in on
// (other requests are served meanwhile: -race finds any use of it), and
// closes the connection itself.
func TestAStreamIsAChunkedBodyOfEventsAndHeartbeats(t *testing.T) {
	for _, keeps := range []bool{false, true} {
		t.Run(map[bool]string{false: "in the hijack goroutine", true: "in its own goroutine"}[keeps], func(t *testing.T) {
			testChunkedStream(t, keeps)
		})
	}
}

func testChunkedStream(t *testing.T, keeps bool) {
	release := make(chan struct{})
	url := streamServer(t, keeps, StreamConfig{WriteTimeout: 5 * time.Second, Heartbeat: 10 * time.Millisecond},
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
	for range 20 { // fasthttp's pooled requests, reused while the stream waits
		pr, err := http.Get(strings.TrimSuffix(url, "/stream") + "/plain")
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(pr.Body); pr.StatusCode != http.StatusOK || len(b) != 4096 {
			t.Fatalf("plain request during the stream: %d, %d bytes", pr.StatusCode, len(b))
		}
		pr.Body.Close()
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
	url := streamServer(t, true, StreamConfig{WriteTimeout: time.Second, Heartbeat: time.Hour},
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

// A stream on a server that keeps hijacked connections closes its
// connection once its last chunk is out (nobody else will).
func TestAStreamClosesTheConnectionItTookOver(t *testing.T) {
	url := streamServer(t, true, StreamConfig{WriteTimeout: time.Second, Heartbeat: time.Hour},
		func(ctx context.Context, es *EventStream) { _ = es.Event("", []byte("one")) })
	c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(url, "/stream"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c) // to the end of the connection: fails on the deadline if never closed
	if err != nil {
		t.Fatalf("the connection was not closed: %v after %q", err, got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(got), "\r\n\r\nb\r\ndata: one\n\n\r\n0\r\n\r\n") {
		t.Fatalf("answer %q", got)
	}
}
