package idempotency

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/observability"
)

// inUnit executes a one-transaction route (httpx.OneTransaction) with its
// key recorded in the route's own transaction: the answer is stored as the
// last write before the commit, so the change and its record commit
// together, with no claim before and no update after.
//
// A key already recorded is found by that last insert: the request's own
// writes are rolled back and the stored answer (or the refusal of a reused
// key) replaces its answer. A concurrent repeat blocks in the database on
// the first one's uncommitted record until it commits or rolls back, so
// only one of them ever commits a change.
func (s *Store) inUnit(api huma.API, hctx huma.Context, next func(huma.Context), rec Record) {
	ctx := hctx.Context()
	fc := humafiber.UnwrapV2(hctx)
	var before fasthttp.ResponseHeader
	fc.Response().Header.CopyTo(&before)
	redo := func(write func()) {
		// What the route answered is replaced, headers and all.
		before.CopyTo(&fc.Response().Header)
		fc.Response().ResetBody()
		write()
	}

	unit, uctx := s.db.NewUnit(ctx)
	finished := false
	defer func() {
		if !finished { // the handler panicked
			_ = unit.Rollback()
		}
	}()
	next(huma.WithContext(hctx, uctx))
	finished = true

	resp := fc.Response()
	status := resp.StatusCode()
	if status >= 500 || resp.IsBodyStream() {
		_ = unit.Rollback()
		return
	}
	failed := unit.Failed()
	if failed != nil && status < 400 {
		_ = unit.Rollback()
		redo(func() {
			httpx.WriteError(api, hctx, fmt.Errorf("%s %s answered %d after its transaction failed: %w",
				rec.Method, rec.Path, status, failed))
		})
		return
	}

	now := s.clock.Now()
	rec.State, rec.ResponseStatus, rec.ContentType = stateDone, status, string(resp.Header.ContentType())
	rec.ResponseBody = bytes.Clone(resp.Body())
	rec.CreatedAt, rec.ExpiresAt = now, now.Add(s.ttl)
	var stored bool
	var err error
	if unit.Begun() && failed == nil {
		// Whatever the route wrote commits with its record, as a lone Tx would.
		if stored, err = s.record(unit.Exec, rec, now); err == nil && stored {
			err = unit.Commit()
		}
	} else {
		if err = unit.Rollback(); err == nil {
			stored, err = s.record(func(q string, args ...any) (int64, error) {
				res := s.db.WithContext(ctx).Exec(q, args...)
				return res.RowsAffected, res.Error
			}, rec, now)
		}
	}
	if err != nil {
		_ = unit.Rollback()
		observability.Logger(ctx, s.log).Error("store response", zap.Error(err), zap.String("key", rec.IdemKey))
		redo(func() { httpx.WriteError(api, hctx, fmt.Errorf("store the answer of an idempotent request: %w", err)) })
		return
	}
	if stored {
		s.outcomes.WithLabelValues("executed").Inc()
		return
	}
	_ = unit.Rollback()
	outcome, existing, err := s.await(ctx, rec.Subject, rec.IdemKey, rec.RequestHash)
	if err != nil {
		redo(func() { httpx.WriteError(api, hctx, err) })
		return
	}
	redo(func() { s.answer(api, hctx, outcome, existing) })
}

// record inserts rec as a stored answer, over an expired record of the same
// key, and reports whether it did (false: the key is someone else's).
func (s *Store) record(exec func(string, ...any) (int64, error), rec Record, now time.Time) (bool, error) {
	n, err := exec(`INSERT INTO idempotency_keys
		(subject, idem_key, request_hash, method, path, state, response_status, response_body, content_type, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subject, idem_key) DO UPDATE SET request_hash = excluded.request_hash, method = excluded.method,
			path = excluded.path, state = excluded.state, response_status = excluded.response_status,
			response_body = excluded.response_body, content_type = excluded.content_type,
			created_at = excluded.created_at, expires_at = excluded.expires_at
		WHERE idempotency_keys.expires_at <= ?`,
		rec.Subject, rec.IdemKey, rec.RequestHash, rec.Method, rec.Path, rec.State, rec.ResponseStatus,
		rec.ResponseBody, rec.ContentType, rec.CreatedAt, rec.ExpiresAt, now)
	return n == 1, err
}

// await reads the record that holds (subject, key) and says what the
// request gets: its answer, a refusal of the reused key, or, while the
// record is pending (a request of a route that claims first), the wait of
// claim.
func (s *Store) await(ctx context.Context, subject, key, hash string) (claimOutcome, *Record, error) {
	deadline := time.Now().Add(s.wait)
	for {
		var existing Record
		err := s.db.WithContext(ctx).Where("subject = ? AND idem_key = ?", subject, key).Take(&existing).Error
		switch {
		case database.IsNotFound(err):
			// Released or purged since it stopped ours: the client may retry.
			return inProgress, nil, nil
		case err != nil:
			return 0, nil, err
		case existing.RequestHash != hash:
			return mismatch, &existing, nil
		case existing.State == stateDone:
			return replay, &existing, nil
		case time.Now().After(deadline):
			return inProgress, &existing, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
