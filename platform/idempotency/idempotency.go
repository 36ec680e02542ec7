// Package idempotency implements the Idempotency-Key contract: the first
// request with a key executes and its answer is stored (in the database, so
// every API instance sees it); a repeat with the same body gets the stored
// answer with X-Idempotent-Replayed: true; a repeat with another body gets 409
// IDEMPOTENCY_KEY_REUSED; a repeat while the first still runs waits for it
// and never executes a second time.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// Header is the request header carrying the key.
const Header = "Idempotency-Key"

// ReplayedHeader marks a stored answer.
const ReplayedHeader = "X-Idempotent-Replayed"

// CodeKeyReused is the error code for a key sent again with another request.
const CodeKeyReused = "IDEMPOTENCY_KEY_REUSED"

const (
	statePending = "pending"
	stateDone    = "done"
	pollInterval = 25 * time.Millisecond
)

// Record is one stored key.
type Record struct {
	Subject        string    `gorm:"primaryKey"`
	IdemKey        string    `gorm:"primaryKey"`
	RequestHash    string    `gorm:"not null"`
	Method         string    `gorm:"not null"`
	Path           string    `gorm:"not null"`
	State          string    `gorm:"not null"`
	ResponseStatus int       `gorm:"not null;default:0"`
	ResponseBody   []byte    ``
	ContentType    string    `gorm:"not null;default:''"`
	CreatedAt      time.Time `gorm:"not null"`
	ExpiresAt      time.Time `gorm:"not null;index"`
}

// TableName implements gorm's Tabler.
func (Record) TableName() string { return "idempotency_keys" }

// Store keeps keys and answers.
type Store struct {
	db       *database.DB
	clock    clock.Clock
	ttl      time.Duration
	wait     time.Duration
	log      *zap.Logger
	outcomes *prometheus.CounterVec
}

// NewStore returns the store.
func NewStore(db *database.DB, cfg *config.Config, clk clock.Clock, log *zap.Logger, reg prometheus.Registerer) *Store {
	s := &Store{
		db: db, clock: clk, ttl: cfg.Idempotency.TTL, wait: cfg.Idempotency.WaitTimeout, log: log.Named("idempotency"),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "idempotency_requests_total",
			Help: "Mutations carrying an Idempotency-Key, by outcome (executed, replayed, reused, in_progress).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(s.outcomes)
	return s
}

type claimOutcome int

const (
	claimed claimOutcome = iota
	replay
	mismatch
	inProgress
)

// claimSQL inserts a pending record, on PostgreSQL (true) without waiting
// for its commit to reach the disk (database.NoFlushWait): the claim is
// seen by every other request at once all the same, and the request's own
// writes, which commit after it and wait for the disk, take it there too; a
// database crash before then loses a claim whose request had done nothing
// yet. That spares a claimed request (a stream among them) one wait for
// the disk before its work begins.
var claimSQL = map[bool]string{
	false: `INSERT INTO idempotency_keys
		(subject, idem_key, request_hash, method, path, state, response_status, content_type, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, '', ?, ?) ON CONFLICT (subject, idem_key) DO NOTHING`,
	true: database.NoFlushWait + ` INSERT INTO idempotency_keys
		(subject, idem_key, request_hash, method, path, state, response_status, content_type, created_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ?, 0, '', ?, ? FROM no_flush_wait ON CONFLICT (subject, idem_key) DO NOTHING`,
}

// claim inserts a pending record for (subject, key) or reports what stands
// there already. Waiting for a pending record polls until the first request
// finishes or the wait timeout passes.
func (s *Store) claim(ctx context.Context, subject, key, hash, method, path string) (claimOutcome, *Record, error) {
	deadline := time.Now().Add(s.wait)
	for {
		now := s.clock.Now()
		rec := Record{Subject: subject, IdemKey: key, RequestHash: hash, Method: method, Path: path,
			State: statePending, CreatedAt: now, ExpiresAt: now.Add(s.ttl)}
		res := s.db.WithContext(ctx).Exec(claimSQL[s.db.Dialect == database.Postgres],
			rec.Subject, rec.IdemKey, rec.RequestHash, rec.Method, rec.Path, rec.State, rec.CreatedAt, rec.ExpiresAt)
		if res.Error != nil {
			return 0, nil, res.Error
		}
		if res.RowsAffected == 1 {
			return claimed, &rec, nil
		}
		var existing Record
		err := s.db.WithContext(ctx).Where("subject = ? AND idem_key = ?", subject, key).Take(&existing).Error
		if database.IsNotFound(err) {
			continue // released between our insert and read: claim again
		}
		if err != nil {
			return 0, nil, err
		}
		if !existing.ExpiresAt.After(now) {
			if err := s.db.WithContext(ctx).Where("subject = ? AND idem_key = ? AND expires_at = ?",
				subject, key, existing.ExpiresAt).Delete(&Record{}).Error; err != nil {
				return 0, nil, err
			}
			continue
		}
		if existing.RequestHash != hash {
			return mismatch, &existing, nil
		}
		if existing.State == stateDone {
			return replay, &existing, nil
		}
		if time.Now().After(deadline) {
			return inProgress, &existing, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

func (s *Store) complete(ctx context.Context, subject, key string, status int, body []byte, contentType string) error {
	return s.db.WithContext(ctx).Model(&Record{}).
		Where("subject = ? AND idem_key = ? AND state = ?", subject, key, statePending).
		Updates(map[string]any{"state": stateDone, "response_status": status, "response_body": body, "content_type": contentType}).Error
}

// release forgets a pending key whose request failed without an answer
// worth keeping (5xx, panic, stream), so that a retry may execute.
func (s *Store) release(ctx context.Context, subject, key string) error {
	return s.db.WithContext(ctx).Where("subject = ? AND idem_key = ? AND state = ?", subject, key, statePending).
		Delete(&Record{}).Error
}

// Purge deletes expired keys.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	return database.DeleteInBatches[Record](ctx, s.db.Gorm, "subject, idem_key", "expires_at < ?", s.clock.Now())
}

func isMutation(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// answer writes what a request that did not execute gets: the stored
// answer, or why there is none to give.
func (s *Store) answer(api huma.API, hctx huma.Context, outcome claimOutcome, rec *Record) {
	switch outcome {
	case mismatch:
		s.outcomes.WithLabelValues("reused").Inc()
		httpx.WriteError(api, hctx, apperr.New(apperr.KindConflict, CodeKeyReused,
			"this Idempotency-Key was used with a different request"))
	case inProgress:
		s.outcomes.WithLabelValues("in_progress").Inc()
		httpx.WriteError(api, hctx, apperr.New(apperr.KindConflict, apperr.CodeConflict,
			"a request with this Idempotency-Key is still in progress"))
	case replay:
		s.outcomes.WithLabelValues("replayed").Inc()
		fc := humafiber.UnwrapV2(hctx)
		fc.Set(ReplayedHeader, "true")
		if rec.ContentType != "" {
			fc.Set("Content-Type", rec.ContentType)
		}
		fc.Status(rec.ResponseStatus)
		_ = fc.Send(rec.ResponseBody)
	}
}

// Middleware is the Huma middleware. It runs after authentication: keys are
// scoped per user, and unauthenticated routes are not stored.
func (s *Store) Middleware(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		if !isMutation(hctx.Method()) {
			next(hctx)
			return
		}
		op := hctx.Operation()
		key := hctx.Header(Header)
		if key == "" {
			if httpx.MetaString(op, httpx.MetaIdempotency) == "required" {
				httpx.WriteError(api, hctx, apperr.Validation(Header, "header is required on this route"))
				return
			}
			next(hctx)
			return
		}
		if _, ok := id.Parse(key); !ok {
			httpx.WriteError(api, hctx, apperr.Validation(Header, "must be a UUID"))
			return
		}
		subject := httpx.Subject(hctx.Context())
		if subject == "" {
			next(hctx)
			return
		}
		ctx := hctx.Context()
		body, err := io.ReadAll(hctx.BodyReader())
		if err != nil {
			httpx.WriteError(api, hctx, apperr.Validation("body", "unreadable request body"))
			return
		}
		// The escaped form: a path may hold bytes (NUL, invalid UTF-8) that
		// the database refuses as text; the route refuses them after us.
		u := hctx.URL()
		path := u.EscapedPath()
		sum := sha256.Sum256(append([]byte(hctx.Method()+" "+path+"\n"), body...))
		hash := hex.EncodeToString(sum[:])

		if httpx.MetaBool(op, httpx.MetaOneTransaction) {
			s.inUnit(api, hctx, next, Record{Subject: subject, IdemKey: key, RequestHash: hash,
				Method: hctx.Method(), Path: path})
			return
		}
		outcome, rec, err := s.claim(ctx, subject, key, hash, hctx.Method(), path)
		if err != nil {
			httpx.WriteError(api, hctx, err)
			return
		}
		if outcome != claimed {
			s.answer(api, hctx, outcome, rec)
			return
		}

		s.outcomes.WithLabelValues("executed").Inc()
		bg := context.WithoutCancel(ctx)
		done := false
		defer func() {
			if !done {
				// The handler panicked: forget the key before the panic goes on.
				if err := s.release(bg, subject, key); err != nil {
					observability.Logger(ctx, s.log).Error("release key", zap.Error(err))
				}
			}
		}()
		sctx, result := httpx.WithStreamOutcome(ctx)
		next(huma.WithContext(hctx, sctx))
		done = true

		fc := humafiber.UnwrapV2(hctx)
		resp := fc.Response()
		status := resp.StatusCode()
		if status >= 500 {
			if err := s.release(bg, subject, key); err != nil {
				observability.Logger(ctx, s.log).Error("release key", zap.Error(err))
			}
			return
		}
		if result.Streaming() || resp.IsBodyStream() {
			// The key stays claimed while the stream runs; its end decides.
			contentType := string(resp.Header.ContentType())
			result.OnEnd(func(body []byte, ok bool) {
				if ok {
					if err := s.complete(bg, subject, key, status, body, contentType); err != nil {
						observability.Logger(ctx, s.log).Error("store response", zap.Error(err), zap.String("key", key))
					}
					return
				}
				if err := s.release(bg, subject, key); err != nil {
					observability.Logger(ctx, s.log).Error("release key", zap.Error(err))
				}
			})
			return
		}
		stored := bytes.Clone(resp.Body())
		if err := s.complete(bg, subject, key, status, stored, string(resp.Header.ContentType())); err != nil {
			observability.Logger(ctx, s.log).Error("store response", zap.Error(err),
				zap.String("key", key), zap.String("status", strconv.Itoa(status)))
		}
	}
}
