// Package observability builds the logger and the Prometheus registry every
// other package writes to.
package observability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/perpetuaflow/api/platform/config"
)

// NewLogger returns a zap logger at the configured level, writing JSON
// lines, or readable lines (log.format console, the default in development
// when standard error is a terminal), to standard error, each as it is
// logged (commands).
func NewLogger(cfg *config.Config) (*zap.Logger, error) {
	log, _, err := newLogger(cfg, 0, os.Stderr)
	return log, err
}

// NewBatchedLogger is NewLogger for a serving process: info and debug lines
// wait in a buffer up to log.flush_interval and are written together (one
// system call for many requests' access lines instead of one each); a
// warning or an error is written at once, after everything logged before
// it. stop writes what waits and ends the batching: lines logged after it
// are written as they come.
func NewBatchedLogger(cfg *config.Config) (log *zap.Logger, stop func() error, err error) {
	return newLogger(cfg, cfg.Log.FlushInterval, os.Stderr)
}

func newLogger(cfg *config.Config, flush time.Duration, out io.Writer) (*zap.Logger, func() error, error) {
	level, err := zapcore.ParseLevel(cfg.Log.Level)
	if err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc := zapcore.NewJSONEncoder(ec)
	if Console(cfg) {
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder
		ec.CallerKey = "" // the logger's name says where
		enc = zapcore.NewConsoleEncoder(ec)
	}
	// Standard error is not a file to fsync: Sync has nothing to do (and
	// fails on a pipe).
	stderr := zapcore.Lock(zapcore.AddSync(unsynced{out}))
	var core zapcore.Core = zapcore.NewCore(enc, stderr, level)
	stop := func() error { return nil }
	if flush > 0 {
		b := &batched{out: &zapcore.BufferedWriteSyncer{WS: stderr, Size: 256 << 10, FlushInterval: flush}, stopped: new(atomic.Bool)}
		b.Core = zapcore.NewCore(enc, b.out, level)
		core, stop = b, b.stop
	}
	// Stacks are logged where they help (panics), not on every error line.
	return zap.New(core, zap.AddCaller(), zap.ErrorOutput(stderr), zap.Fields(zap.String("env", cfg.Environment))), stop, nil
}

// batched is a core writing into a buffer that is written out on a timer,
// when full, at a warning or worse, and at stop.
type batched struct {
	zapcore.Core
	out     *zapcore.BufferedWriteSyncer
	stopped *atomic.Bool
}

func (b *batched) With(fields []zapcore.Field) zapcore.Core {
	return &batched{Core: b.Core.With(fields), out: b.out, stopped: b.stopped}
}

func (b *batched) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if b.Enabled(e.Level) {
		return ce.AddCore(e, b)
	}
	return ce
}

func (b *batched) Write(e zapcore.Entry, fields []zapcore.Field) error {
	err := b.Core.Write(e, fields)
	if e.Level >= zapcore.WarnLevel || b.stopped.Load() {
		err = errors.Join(err, b.out.Sync())
	}
	return err
}

func (b *batched) stop() error {
	b.stopped.Store(true)
	return b.out.Stop()
}

type unsynced struct{ io.Writer }

func (unsynced) Sync() error { return nil }

// Console reports whether logs are written for people: log.format console,
// or unset in development with standard error on a terminal.
func Console(cfg *config.Config) bool {
	switch cfg.Log.Format {
	case "console":
		return true
	case "json":
		return false
	}
	return cfg.Environment == config.Development && isatty.IsTerminal(os.Stderr.Fd())
}

type loggerKey struct{}

// WithLogger stores a request-scoped logger (carrying the request id) in ctx.
func WithLogger(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger returns the request-scoped logger in ctx, or fallback.
func Logger(ctx context.Context, fallback *zap.Logger) *zap.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*zap.Logger); ok {
		return l
	}
	return fallback
}

type requestIDKey struct{}

// WithRequestID stores the request id in ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id in ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
