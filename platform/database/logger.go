package database

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/perpetuaflow/api/platform/observability"
)

// gormLogger sends GORM's messages to zap: failed statements at error (except
// record-not-found, which services handle), slow ones at warn.
type gormLogger struct {
	log  *zap.Logger
	slow time.Duration
}

func newGormLogger(log *zap.Logger, slow time.Duration) gormlogger.Interface {
	return &gormLogger{log: log.Named("sql"), slow: slow}
}

func (l *gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	observability.Logger(ctx, l.log).Sugar().Infof(msg, args...)
}

func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	observability.Logger(ctx, l.log).Sugar().Warnf(msg, args...)
}

func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	observability.Logger(ctx, l.log).Sugar().Errorf(msg, args...)
}

func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound) && !errors.Is(err, context.Canceled) &&
		!IsUniqueViolation(err):
		sql, rows := fc()
		observability.Logger(ctx, l.log).Error("query failed",
			zap.Error(err), zap.String("sql", sql), zap.Int64("rows", rows), zap.Duration("elapsed", elapsed))
	case l.slow > 0 && elapsed > l.slow:
		sql, rows := fc()
		observability.Logger(ctx, l.log).Warn("slow query",
			zap.String("sql", sql), zap.Int64("rows", rows), zap.Duration("elapsed", elapsed))
	}
}
