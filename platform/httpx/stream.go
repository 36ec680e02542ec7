package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	sse "github.com/tmaxmax/go-sse"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/observability"
)

// Server-sent events. A stream runs after the handler has returned, on its
// connection taken over from the server (takeOver), with no request
// context that ends when the client goes away: the only sign of a
// disconnect is a write that fails. A stream
// therefore writes often (a heartbeat comment when it has nothing to say),
// stops at the first failed write, and also stops when the server begins to
// shut down (the lifetime context).

type lifetimeKey struct{}

// ServerLife is a server's account of its streams: its lifetime, a context
// cancelled when shutdown begins (which ends them), and the streams still
// running on connections taken over from the server, which shutdown waits
// for (the server's own shutdown no longer counts those connections).
type ServerLife struct {
	Lifetime context.Context
	running  sync.WaitGroup
}

// Wait waits until every stream has ended, or ctx has.
func (l *ServerLife) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WithLifetime records the server's life in ctx.
func WithLifetime(ctx context.Context, life *ServerLife) context.Context {
	return context.WithValue(ctx, lifetimeKey{}, life)
}

// Lifetime returns the server's lifetime recorded in ctx (a context that
// never ends when there is none).
func Lifetime(ctx context.Context) context.Context {
	if l, ok := ctx.Value(lifetimeKey{}).(*ServerLife); ok {
		return l.Lifetime
	}
	return context.Background()
}

// StreamOutcome lets a streamed answer tell the middlewares that ran before
// it (idempotency) how it ended: a stream has sent its 200 status long
// before it knows, and runs after they returned.
type StreamOutcome struct {
	failed    atomic.Bool
	streaming atomic.Bool

	mu    sync.Mutex
	ended bool
	body  []byte
	ok    bool
	onEnd func(body []byte, ok bool)
}

// Streaming reports whether the handler answered with a stream (Stream or
// StreamFrom), whose end OnEnd then reports.
func (o *StreamOutcome) Streaming() bool { return o != nil && o.streaming.Load() }

// Failed reports whether the stream said it failed.
func (o *StreamOutcome) Failed() bool { return o != nil && o.failed.Load() }

// OnEnd calls fn once the stream has ended (at once if it has), with the
// events it sent and whether it completed: not failed, client still there.
func (o *StreamOutcome) OnEnd(fn func(body []byte, ok bool)) {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		fn(o.body, o.ok)
		return
	}
	o.onEnd = fn
	o.mu.Unlock()
}

func (o *StreamOutcome) end(body []byte, ok bool) {
	if o == nil {
		return
	}
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return
	}
	o.ended, o.body, o.ok = true, body, ok && !o.failed.Load()
	fn := o.onEnd
	o.mu.Unlock()
	if fn != nil {
		fn(o.body, o.ok)
	}
}

type outcomeKey struct{}

// WithStreamOutcome gives the request a StreamOutcome to report into.
func WithStreamOutcome(ctx context.Context) (context.Context, *StreamOutcome) {
	o := &StreamOutcome{}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

func outcomeOf(ctx context.Context) *StreamOutcome {
	o, _ := ctx.Value(outcomeKey{}).(*StreamOutcome)
	return o
}

// MarkStreamFailed records that the stream of the request in ctx ended in
// an error (its answer is not kept for idempotent replays).
func MarkStreamFailed(ctx context.Context) {
	if o := outcomeOf(ctx); o != nil {
		o.failed.Store(true)
	}
}

// ErrClientGone is returned by EventStream writes once the client has
// disconnected.
var ErrClientGone = errors.New("client disconnected")

// EventStream writes server-sent events to one client.
type EventStream struct {
	mu        sync.Mutex
	w         io.Writer
	flush     func() error
	deadline  func(time.Time) error
	timeout   time.Duration
	err       error
	gone      context.CancelFunc
	requestID string
	sent      bytes.Buffer // the events (not the heartbeats), for replays
	keep      bool         // Message keeps its events in sent
}

// Event sends one event; typ "" is the default ("message") type. data is
// sent as is (one JSON document, or a sentinel such as [DONE]).
func (s *EventStream) Event(typ string, data []byte) error {
	m := &sse.Message{}
	if typ != "" {
		m.Type = sse.Type(typ)
	}
	m.AppendData(string(data))
	return s.write(m, true)
}

// Message sends one event with an id (the client's Last-Event-ID when it
// reconnects); typ "" is the default type.
func (s *EventStream) Message(id, typ string, data []byte) error {
	m := &sse.Message{}
	if id != "" {
		eid, err := sse.NewID(id)
		if err != nil {
			return err
		}
		m.ID = eid
	}
	if typ != "" {
		m.Type = sse.Type(typ)
	}
	m.AppendData(string(data))
	return s.write(m, s.keep)
}

// Retry tells the client how long to wait before it reconnects.
func (s *EventStream) Retry(d time.Duration) error {
	m := &sse.Message{Retry: d}
	m.AppendComment("retry")
	return s.write(m, false)
}

// JSON sends v as the data of an event.
func (s *EventStream) JSON(typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Event(typ, b)
}

// Error sends the error envelope of err as an "error" event.
func (s *EventStream) Error(ctx context.Context, err error) error {
	MarkStreamFailed(ctx)
	se := huma.NewError(http.StatusInternalServerError, "", err)
	if env, ok := se.(*ErrorEnvelope); ok {
		env.Err.RequestID = s.requestID
		return s.JSON("error", env)
	}
	return s.JSON("error", newEnvelope(http.StatusInternalServerError, "INTERNAL_ERROR", "an unexpected error occurred", s.requestID))
}

func sentBytes(es *EventStream) []byte {
	es.mu.Lock()
	defer es.mu.Unlock()
	return bytes.Clone(es.sent.Bytes())
}

// Gone reports whether the client has disconnected.
func (s *EventStream) Gone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// Heartbeat sends a comment, which clients ignore: it keeps proxies from
// closing an idle stream and finds out whether the client is still there.
func (s *EventStream) Heartbeat() error {
	m := &sse.Message{}
	m.AppendComment("keep-alive")
	return s.write(m, false)
}

func (s *EventStream) write(m *sse.Message, keep bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.deadline != nil {
		_ = s.deadline(time.Now().Add(s.timeout))
	}
	var w io.Writer = s.w
	if keep {
		w = io.MultiWriter(s.w, &s.sent)
	}
	_, err := m.WriteTo(w)
	if err == nil {
		err = s.flush()
	}
	if err != nil {
		s.err = ErrClientGone
		s.gone()
	}
	return s.err
}

// StreamConfig tunes Stream.
type StreamConfig struct {
	// WriteTimeout bounds each write: a client that stops reading is gone.
	WriteTimeout time.Duration
	// Heartbeat is how often a comment is sent while run says nothing.
	Heartbeat time.Duration
	// Forget keeps no copy of the events sent (a long-lived stream, never
	// replayed through an Idempotency-Key).
	Forget bool
}

// EventStreamResponses documents an operation whose answer is a stream of
// server-sent events.
func EventStreamResponses() map[string]*huma.Response {
	return map[string]*huma.Response{"200": {Description: "A stream of server-sent events",
		Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: huma.TypeString}}}}}
}

// Stream answers the request of hctx with a text/event-stream body that run
// writes. run's context ends when the client disconnects (found by a
// failed write or heartbeat), when the server begins to shut down, and
// never because the handler returned.
func Stream(hctx huma.Context, cfg StreamConfig, requestID string, run func(ctx context.Context, es *EventStream)) {
	if o := outcomeOf(hctx.Context()); o != nil {
		o.streaming.Store(true)
	}
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-cache")
	hctx.SetHeader("X-Accel-Buffering", "no") // nginx: do not buffer
	hctx.SetStatus(http.StatusOK)
	base := hctx.Context() // the stream keeps this, not hctx (the server's)
	body := func(w io.Writer) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(base))
		defer cancel()
		stop := context.AfterFunc(Lifetime(base), cancel)
		defer stop()
		es := &EventStream{w: w, flush: flusher(w), timeout: cfg.WriteTimeout, gone: cancel, requestID: requestID, keep: !cfg.Forget}
		if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
			es.deadline = d.SetWriteDeadline
		}
		if cw, ok := w.(*chunkWriter); ok && cw.err != nil {
			es.err = ErrClientGone // the header did not go out: nobody to write to
			cancel()
		}
		defer func() {
			outcomeOf(base).end(sentBytes(es), !es.Gone())
		}()
		// The heartbeat is a timer that arms itself again, not a goroutine
		// per stream: a waiting stream costs no stack of its own for it.
		var beat sync.Mutex
		ended := false
		var timer *time.Timer
		beat.Lock() // the callback reads timer under the lock: after it is set
		timer = time.AfterFunc(cfg.Heartbeat, func() {
			beat.Lock()
			defer beat.Unlock()
			if ended || ctx.Err() != nil {
				return
			}
			_ = es.Heartbeat()
			timer.Reset(cfg.Heartbeat)
		})
		beat.Unlock()
		defer func() {
			beat.Lock()
			ended = true
			timer.Stop()
			beat.Unlock()
		}()
		defer func() {
			if r := recover(); r != nil {
				// The stream runs after the handler returned, outside the
				// recover middleware: a panic here would end the process.
				observability.Logger(base, zap.L()).Error("panic in stream",
					zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
				_ = es.Error(base, errors.New("stream failed"))
			}
		}()
		run(ctx, es)
	}
	if rc, keeps := fasthttpContext(hctx); rc != nil {
		if rc.IsHead() { // the header only: run with nobody to write to
			body(&chunkWriter{err: ErrClientGone})
			return
		}
		takeOver(rc, keeps, base, cfg.WriteTimeout, func(w *chunkWriter) { body(w) })
		return
	}
	body(hctx.BodyWriter())
}

// StreamFrom answers the request of hctx with a chunked body that r writes
// as it reads (a stream that waits in Read: each Read's bytes are one chunk),
// on the connection taken over from the server as Stream does; r is closed
// after, whether it ended or its client left. On another adapter r is the
// response's body stream.
func StreamFrom(hctx huma.Context, writeTimeout time.Duration, r io.ReadCloser) {
	if o := outcomeOf(hctx.Context()); o != nil {
		o.streaming.Store(true)
	}
	rc, keeps := fasthttpContext(hctx)
	if rc == nil {
		hctx.SetStatus(http.StatusOK)
		_, _ = io.Copy(hctx.BodyWriter(), r)
		_ = r.Close()
		return
	}
	takeOver(rc, keeps, hctx.Context(), writeTimeout, func(w *chunkWriter) {
		defer r.Close()
		buf := make([]byte, 2048)
		for w.err == nil {
			n, err := r.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				_ = w.Flush()
			}
			if err != nil {
				if err != io.EOF {
					w.err = err // ended short: no last chunk
				}
				return
			}
		}
	})
}

// takeOver runs a stream on its connection, taken over from the server once
// the handler has returned (fasthttp's hijack, answering on its own): the
// header written as the middlewares left it, with a chunked body and
// Connection: close, then each event as one chunk straight to the
// connection, then the last chunk; the connection is closed after it.
// While it waits a stream holds the goroutine that runs it and its few
// bytes, not the server's worker and write buffers. Shutdown waits for it
// (ServerLife.Wait).
//
// On a server that keeps hijacked connections (KeepHijackedConns, as
// platform/server's does) the stream leaves fasthttp's hijack goroutine
// once its header is out, for one of its own: the request, its buffers and
// fasthttp's connection wrapper go back to their pools instead of waiting
// with it. Elsewhere it runs in the hijack goroutine, which holds them.
func takeOver(rc *fasthttp.RequestCtx, keeps bool, base context.Context, writeTimeout time.Duration, body func(*chunkWriter)) {
	life, _ := base.Value(lifetimeKey{}).(*ServerLife)
	if life != nil {
		life.running.Add(1)
	}
	run := func(c net.Conn, w *chunkWriter) {
		if life != nil {
			defer life.running.Done()
		}
		if keeps {
			defer c.Close()
		}
		body(w)
		if w.err == nil {
			_, _ = c.Write([]byte("0\r\n\r\n"))
		}
	}
	rc.HijackSetNoResponse(true)
	rc.Hijack(func(c net.Conn) {
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok && keeps {
			c = u.UnsafeConn() // the wrapper's reader is the request's
		}
		// rc is fasthttp's until this returns.
		rc.Response.Header.SetContentLength(-1) // chunked
		rc.Response.Header.SetConnectionClose()
		w := &chunkWriter{conn: c}
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(rc.Response.Header.Header()); err != nil {
			w.err = ErrClientGone
		}
		if keeps {
			go run(c, w)
			return
		}
		run(c, w)
	})
}

// fasthttpContext finds the fasthttp request under hctx (middlewares wrap
// the adapter's context), or nil on another adapter, and whether its server
// leaves a hijacked connection open when the hijack handler returns.
func fasthttpContext(hctx huma.Context) (rc *fasthttp.RequestCtx, keepsHijacked bool) {
	defer func() {
		if recover() != nil { // not a Fiber context
			rc, keepsHijacked = nil, false
		}
	}()
	fc := humafiber.UnwrapV2(hctx)
	return fc.Context(), fc.App().Server().KeepHijackedConns
}

// chunkWriter collects an event's bytes and sends them, at Flush, as one
// chunk of a chunked body, straight to the connection.
type chunkWriter struct {
	conn net.Conn
	buf  []byte
	err  error
}

// chunkHead is room for a chunk's size line before its data.
const chunkHead = 18

func (c *chunkWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf) == 0 {
		var head [chunkHead]byte // the size line goes here at Flush
		c.buf = append(c.buf, head[:]...)
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// Flush sends what was written as one chunk: its size in hex and CRLF, the
// data, CRLF (an empty chunk would end the body: nothing is sent).
func (c *chunkWriter) Flush() error {
	if c.err != nil || len(c.buf) <= chunkHead {
		c.buf = c.buf[:0]
		return c.err
	}
	var size [chunkHead]byte
	head := strconv.AppendInt(size[:0], int64(len(c.buf)-chunkHead), 16)
	head = append(head, '\r', '\n')
	start := chunkHead - len(head)
	copy(c.buf[start:], head)
	c.buf = append(c.buf, '\r', '\n')
	_, c.err = c.conn.Write(c.buf[start:])
	c.buf = c.buf[:0]
	return c.err
}

func (c *chunkWriter) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// flusher returns how to push w's buffered bytes to the client and learn
// whether that worked: Flush's own error (the chunk writer), or, for a
// writer whose Flush drops it, a zero-length write after the flush.
func flusher(w io.Writer) func() error {
	if fe, ok := w.(interface{ Flush() error }); ok {
		return fe.Flush
	}
	f, ok := w.(interface{ Flush() })
	if !ok {
		return func() error { return nil }
	}
	return func() error {
		f.Flush()
		_, err := w.Write(nil)
		return err
	}
}
