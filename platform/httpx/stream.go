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

// Server-sent events. Fiber (fasthttp) runs a streamed body after the
// handler has returned, with no request context that ends when the client
// goes away: the only sign of a disconnect is a write that fails. A stream
// therefore writes often (a heartbeat comment when it has nothing to say),
// stops at the first failed write, and also stops when the server begins to
// shut down (the lifetime context).

type lifetimeKey struct{}

// WithLifetime records the server's lifetime in ctx: it is cancelled when
// shutdown begins.
func WithLifetime(ctx context.Context, lifetime context.Context) context.Context {
	return context.WithValue(ctx, lifetimeKey{}, lifetime)
}

// Lifetime returns the server's lifetime recorded in ctx (a context that
// never ends when there is none).
func Lifetime(ctx context.Context) context.Context {
	if l, ok := ctx.Value(lifetimeKey{}).(context.Context); ok {
		return l
	}
	return context.Background()
}

// StreamOutcome lets a streamed answer tell the middlewares that ran before
// it (idempotency) how it ended: a stream has sent its 200 status long
// before it knows, and runs after they returned.
type StreamOutcome struct {
	failed atomic.Bool

	mu    sync.Mutex
	ended bool
	body  []byte
	ok    bool
	onEnd func(body []byte, ok bool)
}

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
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-cache")
	hctx.SetHeader("X-Accel-Buffering", "no") // nginx: do not buffer
	hctx.SetStatus(http.StatusOK)
	body := func(w io.Writer) {
		base := hctx.Context()
		ctx, cancel := context.WithCancel(context.WithoutCancel(base))
		defer cancel()
		stop := context.AfterFunc(Lifetime(base), cancel)
		defer stop()
		es := &EventStream{w: w, flush: flusher(w), timeout: cfg.WriteTimeout, gone: cancel, requestID: requestID, keep: !cfg.Forget}
		if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
			es.deadline = d.SetWriteDeadline
		}
		if cw, ok := w.(*chunkWriter); ok && cw.err != nil {
			es.err = ErrClientGone // never read: run with nobody to write to
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
	if rc := fasthttpContext(hctx); rc != nil {
		// The connection's own goroutine runs the stream (pulledBody): no
		// goroutine, pipe or buffer of the stream's own while it waits.
		rc.Response.ImmediateHeaderFlush = true
		rc.SetBodyStream(&pulledBody{conn: rc.Conn(), body: body}, -1)
		return
	}
	body(hctx.BodyWriter())
}

// fasthttpContext finds the fasthttp request under hctx (middlewares wrap
// the adapter's context), or nil on another adapter.
func fasthttpContext(hctx huma.Context) (rc *fasthttp.RequestCtx) {
	defer func() {
		if recover() != nil { // not a Fiber context
			rc = nil
		}
	}()
	return humafiber.UnwrapV2(hctx).Context()
}

// pulledBody is a stream's chunked response body. Fasthttp reads it once the
// handler has returned, on the connection's goroutine, after writing (and,
// with ImmediateHeaderFlush, flushing) the header; the first Read runs the
// whole stream there, each event written straight to the connection as one
// chunk (fasthttp's buffer is empty while it waits in Read, and nothing
// else writes to the connection meanwhile: the heartbeat's writes take the
// stream's lock). Read then says EOF and fasthttp ends the body. A body
// that is never read (the client left before the header went out, a HEAD
// request) is run at Close with the client gone, so that what the stream
// holds (credits, an idempotency record) is released all the same.
type pulledBody struct {
	conn    net.Conn
	body    func(io.Writer)
	started bool
	gone    bool
}

func (p *pulledBody) Read([]byte) (int, error) {
	if !p.started {
		p.started = true
		w := &chunkWriter{conn: p.conn}
		p.body(w)
		p.gone = w.err != nil
	}
	if p.gone {
		return 0, ErrClientGone // fasthttp closes the connection
	}
	return 0, io.EOF
}

func (p *pulledBody) Close() error {
	if !p.started {
		p.started = true
		p.body(&chunkWriter{conn: p.conn, err: ErrClientGone})
	}
	return nil
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
// whether that worked. Fasthttp's stream writer drops Flush's error, but its
// buffered writer keeps it: a zero-length write after the flush returns it.
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
