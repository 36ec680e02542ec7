// Package observability builds the logger and the Prometheus registry every
// other package writes to.
package observability

import (
	"context"
	"fmt"
	"os"

	"github.com/mattn/go-isatty"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/perpetuaflow/api/platform/config"
)

// NewLogger returns a zap logger at the configured level, writing JSON
// lines, or readable lines (log.format console, the default in development
// when standard error is a terminal).
func NewLogger(cfg *config.Config) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Log.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	if Console(cfg) {
		zc.Encoding = "console"
		zc.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.EncoderConfig.EncodeDuration = zapcore.StringDurationEncoder
		zc.EncoderConfig.CallerKey = "" // the logger's name says where
	}
	zc.Sampling = nil
	// Stacks are logged where they help (panics), not on every error line.
	zc.DisableStacktrace = true
	zc.InitialFields = map[string]any{"env": cfg.Environment}
	return zc.Build()
}

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
