package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

// eventReader is a live stream as a body read by httpx.StreamFrom on the
// connection taken over from the server: each Read waits for something to
// say (changes, a heartbeat) and returns it, written as one chunk. One
// goroutine runs it — no writer goroutine, pipe or server write buffer per
// stream — so an idle stream is a parked Read, a small buffer and a timer.
type eventReader struct {
	h       *handlers
	ctx     context.Context // the server's lifetime
	conn    net.Conn        // for write deadlines (nil in tests of the reader)
	userID  uuid.UUID
	session uuid.UUID // the sign-in the stream belongs to
	reset   bool
	l       *listener
	done    func()
	beat    *time.Timer
	pending bytes.Buffer
	after   int64
	started bool
	ended   string // why the stream ended, once it did
	log     *zap.Logger
}

var errStreamEnded = errors.New("stream ended")

// Read implements io.Reader.
func (r *eventReader) Read(p []byte) (n int, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			r.log.Error("panic in live stream", zap.Any("panic", rec))
			r.end("error")
			n, err = 0, errStreamEnded
		}
	}()
	for r.pending.Len() == 0 {
		if r.ended != "" {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			r.end("error")
			r.log.Warn("live stream failed", zap.String("user_id", r.userID.String()), zap.Error(err))
			return 0, io.EOF
		}
	}
	if r.conn != nil {
		// A client that takes nothing for write_timeout is gone (or too
		// slow to follow): the write fails and the stream ends.
		_ = r.conn.SetWriteDeadline(time.Now().Add(r.h.cfg.WriteTimeout))
	}
	return r.pending.Read(p)
}

// fill waits for something to send and encodes it into pending.
func (r *eventReader) fill() error {
	if !r.started {
		r.started = true
		return r.start()
	}
	select {
	case <-r.ctx.Done():
		r.end("shutdown")
		return nil
	case <-r.l.replaced:
		r.end("replaced")
		return nil
	case <-r.beat.C:
		// A stream lasts as long as its sign-in: signed out, or the
		// account closed, it ends at the next heartbeat.
		live, err := r.h.sessions.Live(r.ctx, r.session)
		if err != nil && r.ctx.Err() != nil {
			r.end("shutdown")
			return nil
		}
		if err != nil {
			return err
		}
		if !live {
			r.end("signed_out")
			return nil
		}
		r.pending.WriteString(": keep-alive\n\n")
		r.beat.Reset(r.h.cfg.Heartbeat)
		return nil
	case <-r.l.wake:
		return r.send()
	}
}

// start writes the retry hint, and a reset when resuming was asked for
// but the changes after since are no longer kept; then sends what the log
// holds after r.after.
func (r *eventReader) start() error {
	r.pending.WriteString("retry: 3000\n\n")
	if r.reset {
		fmt.Fprintf(&r.pending, "id: %d\nevent: reset\ndata: %s\n\n", r.after,
			`{"reason":"the changes after that event are no longer kept: sync again (GET /api/v1/sync)"}`)
	}
	return r.send()
}

// position is where a new stream starts: after since when the changes
// after it are kept, else (or without since) after the user's last change
// (reset says since was too old). It is read before the answer's status
// goes out, so every change the client makes after it sees the 200 is
// sent.
func (s *Service) position(ctx context.Context, userID uuid.UUID, since *int64) (after int64, reset bool, err error) {
	head, err := s.Head(ctx, userID)
	if err != nil || since == nil {
		return head, false, err
	}
	ok, err := s.Resumable(ctx, userID, *since, head)
	if err != nil || !ok {
		return head, err == nil, err
	}
	return *since, false, nil
}

// send encodes every change after r.after, in batches.
func (r *eventReader) send() error {
	const batch = 200
	for {
		list, err := r.h.svc.read(r.ctx, r.userID, r.after, batch)
		if err != nil || len(list) == 0 {
			return err
		}
		evs, err := r.h.svc.events(r.ctx, r.userID, list)
		if err != nil {
			return err
		}
		for _, e := range evs {
			data, err := json.Marshal(e.Data)
			if err != nil {
				return err
			}
			r.pending.WriteString("id: ")
			r.pending.WriteString(strconv.FormatInt(e.Seq, 10))
			r.pending.WriteString("\nevent: ")
			r.pending.WriteString(e.Type)
			r.pending.WriteString("\ndata: ")
			r.pending.Write(data)
			r.pending.WriteString("\n\n")
		}
		r.h.metrics.sent.Add(float64(len(evs)))
		r.after = *list[len(list)-1].Seq
		if len(list) < batch {
			return nil
		}
	}
}

func (r *eventReader) end(reason string) {
	if r.ended == "" {
		r.ended = reason
	}
}

// Close implements io.Closer: StreamFrom calls it when the response ends,
// whoever ended it (a failed write: the client went).
func (r *eventReader) Close() error {
	r.beat.Stop()
	r.done()
	reason := r.ended
	if reason == "" {
		reason = "client"
	}
	r.h.metrics.closed.WithLabelValues(reason).Inc()
	r.log.Debug("live stream ended", zap.String("user_id", r.userID.String()), zap.String("reason", reason))
	return nil
}
