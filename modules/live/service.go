package live

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
)

// CodeSyncTokenExpired: the sync token is older than the retained window;
// sync from scratch.
const CodeSyncTokenExpired = "SYNC_TOKEN_EXPIRED"

// Service holds the tickets, the change log's reading and sync.
type Service struct {
	db       *database.DB
	clock    clock.Clock
	cfg      Config
	entities map[string]changes.Entity
	synced   []changes.Entity // the entities with All, by name
	log      *zap.Logger
}

type serviceIn struct {
	fx.In
	DB       *database.DB
	Clock    clock.Clock
	Cfg      Config
	Entities []changes.Entity `group:"entities"`
	Log      *zap.Logger
}

func newService(in serviceIn) *Service {
	s := &Service{db: in.DB, clock: in.Clock, cfg: in.Cfg, entities: map[string]changes.Entity{}, log: in.Log.Named("live")}
	for _, e := range in.Entities {
		s.entities[e.Name] = e
	}
	for _, name := range sortedKeys(s.entities) {
		if e := s.entities[name]; e.All != nil {
			s.synced = append(s.synced, e)
		}
	}
	return s
}

var errBadTicket = apperr.Unauthorized(apperr.CodeUnauthorized,
	"the ticket is unknown, used or expired: ask for a new one (POST /api/v1/events/ticket)")

// IssueTicket makes a single-use ticket that opens one live stream of the
// caller's changes within ticket_ttl.
func (s *Service) IssueTicket(ctx context.Context, p auth.Principal) (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	now := s.clock.Now()
	t := Ticket{Hash: hashTicket(raw), UserID: p.UserID, SessionID: p.SessionID, ExpiresAt: now.Add(s.cfg.TicketTTL), CreatedAt: now}
	if err := s.db.WithContext(ctx).Create(&t).Error; err != nil {
		return "", err
	}
	return raw, nil
}

func hashTicket(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Redeem spends a ticket (once: a compare-and-set on used_at) and returns
// it.
func (s *Service) Redeem(ctx context.Context, raw string) (*Ticket, error) {
	if raw == "" || len(raw) > 100 {
		return nil, errBadTicket
	}
	h := hashTicket(raw)
	now := s.clock.Now()
	res := s.db.WithContext(ctx).Model(&Ticket{}).Where("hash = ? AND used_at IS NULL AND expires_at > ?", h, now).
		Update("used_at", now)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected != 1 {
		return nil, errBadTicket
	}
	var t Ticket
	if err := s.db.WithContext(ctx).Where("hash = ?", h).Take(&t).Error; err != nil {
		return nil, err
	}
	return &t, nil
}

// Head is the user's last sequence number (0 before any change).
func (s *Service) Head(ctx context.Context, userID uuid.UUID) (int64, error) {
	var h Head
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Take(&h).Error
	if database.IsNotFound(err) {
		return 0, nil
	}
	return h.Seq, err
}

// Resumable reports whether every change after since up to head is still
// retained (a stream can replay them, a sync token is good).
func (s *Service) Resumable(ctx context.Context, userID uuid.UUID, since, head int64) (bool, error) {
	if since < 0 || since > head {
		return false, nil
	}
	if since == head {
		return true, nil
	}
	var oldest *int64
	err := s.db.WithContext(ctx).Model(&Change{}).Where("user_id = ? AND seq IS NOT NULL", userID).
		Select("MIN(seq)").Scan(&oldest).Error
	return err == nil && oldest != nil && *oldest <= since+1, err
}

// read returns the user's committed changes after seq after, in order, at
// most limit.
func (s *Service) read(ctx context.Context, userID uuid.UUID, after int64, limit int) ([]Change, error) {
	var out []Change
	err := s.db.WithContext(ctx).Where("user_id = ? AND seq > ?", userID, after).Order("seq").Limit(limit).Find(&out).Error
	return out, err
}

// Event is one change as the stream sends it.
type Event struct {
	Seq  int64
	Type string // entity.action
	Data any
}

// entityKey names one entity.
type entityKey struct{ entity, id string }

// events turns changes into events: the entity's current API shape (or
// {"id"} for a deletion). Within the batch, an entity changed several
// times is sent once, at its last change (created if it was created in
// the batch); an entity gone meanwhile is left to its deletion's event.
// Entities no module describes (left out of this deployment) are skipped.
func (s *Service) events(ctx context.Context, userID uuid.UUID, list []Change) ([]Event, error) {
	last := map[entityKey]int{}
	created := map[entityKey]bool{}
	ids := map[string][]string{}
	for i, c := range list {
		k := entityKey{c.Entity, c.EntityID}
		if _, seen := last[k]; !seen && c.Action != ActionDeleted {
			ids[c.Entity] = append(ids[c.Entity], c.EntityID)
		}
		last[k] = i
		if c.Action == ActionCreated {
			created[k] = true
		}
	}
	loaded, err := s.load(ctx, userID, ids)
	if err != nil {
		return nil, err
	}
	var out []Event
	for i, c := range list {
		k := entityKey{c.Entity, c.EntityID}
		if last[k] != i {
			continue
		}
		if _, known := s.entities[c.Entity]; !known {
			continue
		}
		action := c.Action
		if action == ActionDeleted {
			out = append(out, Event{Seq: *c.Seq, Type: c.Entity + "." + action, Data: map[string]string{"id": c.EntityID}})
			continue
		}
		v, ok := loaded[k]
		if !ok {
			continue
		}
		if created[k] {
			action = ActionCreated
		}
		out = append(out, Event{Seq: *c.Seq, Type: c.Entity + "." + action, Data: v})
	}
	return out, nil
}

// load reads the API shapes of entities by kind.
func (s *Service) load(ctx context.Context, userID uuid.UUID, ids map[string][]string) (map[entityKey]any, error) {
	out := map[entityKey]any{}
	for name, list := range ids {
		e, ok := s.entities[name]
		if !ok {
			continue
		}
		m, err := e.Load(ctx, userID, list)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", name, err)
		}
		for id, v := range m {
			out[entityKey{name, id}] = v
		}
	}
	return out, nil
}

// Tombstone says an entity is gone.
type Tombstone struct {
	Entity string `json:"entity"`
	ID     string `json:"id"`
}

// SyncResult is a full or incremental sync.
type SyncResult struct {
	Token   string
	Full    bool
	Changed map[string][]any
	Deleted []Tombstone
	HasMore bool
}

// Sync answers every live synced entity of the caller and a token (token
// ""), or what changed since the token: the current shape of each entity
// changed, and a tombstone for each one deleted. A token of another user
// or a malformed one is a 400; one older than the retained window a 410.
func (s *Service) Sync(ctx context.Context, p auth.Principal, token string) (*SyncResult, error) {
	head, err := s.Head(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	res := &SyncResult{Changed: map[string][]any{}, Deleted: []Tombstone{}}
	for _, e := range s.synced {
		res.Changed[e.Name] = []any{}
	}
	if token == "" {
		res.Full, res.Token = true, encodeToken(p.UserID, head)
		for _, e := range s.synced {
			err := e.All(ctx, p.UserID, func(_ string, v any) error {
				res.Changed[e.Name] = append(res.Changed[e.Name], v)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("sync %s: %w", e.Name, err)
			}
		}
		return res, nil
	}
	owner, since, ok := decodeToken(token)
	if !ok || owner != p.UserID {
		return nil, apperr.Validation("since", "is not a sync token of this account")
	}
	if ok, err := s.Resumable(ctx, p.UserID, since, head); err != nil {
		return nil, err
	} else if !ok {
		return nil, apperr.New(apperr.KindGone, CodeSyncTokenExpired,
			"the sync token is older than the changes kept (%s): sync from scratch (GET /api/v1/sync)", s.cfg.Retention)
	}
	list, err := s.read(ctx, p.UserID, since, s.cfg.MaxSyncChanges)
	if err != nil {
		return nil, err
	}
	upto := since
	if len(list) > 0 {
		upto = *list[len(list)-1].Seq
	}
	res.HasMore = upto < head
	res.Token = encodeToken(p.UserID, upto)
	last := map[entityKey]string{}
	var order []entityKey
	ids := map[string][]string{}
	for _, c := range list {
		if e, ok := s.entities[c.Entity]; !ok || e.All == nil {
			continue
		}
		k := entityKey{c.Entity, c.EntityID}
		if _, seen := last[k]; !seen {
			order = append(order, k)
			ids[c.Entity] = append(ids[c.Entity], c.EntityID)
		}
		last[k] = c.Action
	}
	loaded, err := s.load(ctx, p.UserID, ids)
	if err != nil {
		return nil, err
	}
	for _, k := range order {
		v, ok := loaded[k]
		if last[k] == ActionDeleted || !ok {
			res.Deleted = append(res.Deleted, Tombstone{Entity: k.entity, ID: k.id})
			continue
		}
		res.Changed[k.entity] = append(res.Changed[k.entity], v)
	}
	return res, nil
}

// A sync token is the account's id and a position in its change log,
// base64url: opaque to clients, checked against the caller.
func encodeToken(userID uuid.UUID, seq int64) string {
	b := make([]byte, 24)
	copy(b, userID[:])
	binary.BigEndian.PutUint64(b[16:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(token string) (uuid.UUID, int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 24 {
		return uuid.Nil, 0, false
	}
	var u uuid.UUID
	copy(u[:], b[:16])
	seq := int64(binary.BigEndian.Uint64(b[16:]))
	return u, seq, seq >= 0
}

// Purge drops the changes older than the retained window and the tickets
// past their time (the live_purge job).
func (s *Service) Purge(ctx context.Context) error {
	cutoff := s.clock.Now().Add(-s.cfg.Retention).UTC()
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM changes WHERE id IN (SELECT id FROM changes WHERE at < ? LIMIT 5000)`, cutoff)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected < 5000 {
			break
		}
	}
	return s.db.WithContext(ctx).Where("expires_at < ?", s.clock.Now().Add(-time.Minute)).Delete(&Ticket{}).Error
}
