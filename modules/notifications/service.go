package notifications

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/safeurl"
)

var errNotFound = apperr.NotFound(apperr.CodeNotFound, "notification")

const maxTitle = 200

// Service holds the notification rules; the only writer of its tables.
type Service struct {
	db       *database.DB
	bus      *events.Bus
	clock    clock.Clock
	vapid    *vapid
	cfg      Config
	resolver safeurl.Resolver
}

func newService(db *database.DB, bus *events.Bus, clk clock.Clock, v *vapid, cfg Config) *Service {
	return &Service{db: db, bus: bus, clock: clk, vapid: v, cfg: cfg, resolver: net.DefaultResolver}
}

// New is a notification to create.
type New struct {
	UserID     uuid.UUID
	Type       string
	Title      string
	Message    string
	TaskID     *uuid.UUID
	ReminderID *uuid.UUID
	// Push also sends it to the user's browsers (WebPush), in the
	// transaction's push_deliver jobs.
	Push bool
}

// Create adds a notification inside tx. A second notification for the same
// reminder is ignored (the unique reminder_id decides), so a retried
// delivery never shows (or pushes) twice.
func (s *Service) Create(ctx context.Context, tx *gorm.DB, in New) (*Notification, error) {
	now := s.clock.Now()
	title := in.Title
	if utf8.RuneCountInString(title) > maxTitle {
		title = string([]rune(title)[:maxTitle-1]) + "…"
	}
	n := Notification{ID: id.New(), UserID: in.UserID, Type: in.Type, Title: title, Message: in.Message,
		TaskID: in.TaskID, ReminderID: in.ReminderID, CreatedAt: now, UpdatedAt: now}
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&n)
	if res.Error != nil {
		return nil, fmt.Errorf("create notification: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	if in.Push {
		if err := s.bus.Publish(ctx, tx, notificationCreated{NotificationID: n.ID, UserID: n.UserID}); err != nil {
			return nil, err
		}
	}
	return &n, nil
}

// List returns the user's notifications, newest first.
func (s *Service) List(ctx context.Context, p auth.Principal, unreadOnly bool, w database.Window) (database.Paged[Notification], error) {
	q := s.db.WithContext(ctx).Model(&Notification{}).Where("user_id = ?", p.UserID)
	kept := &database.Kept{UserID: p.UserID, Plus: []string{"notifications"}} // see row_counts
	if unreadOnly {
		q, kept.Plus = q.Where("read = ?", false), []string{"notifications:unread"}
	}
	return database.Page(q, notificationOrder, w, kept)
}

// notificationOrder is the notifications' order, newest first.
var notificationOrder = database.Keyset[Notification]{List: "notifications", Column: "created_at",
	Key: func(n *Notification) (time.Time, uuid.UUID) { return n.CreatedAt, n.ID }}

// MarkRead marks one notification read (idempotent).
func (s *Service) MarkRead(ctx context.Context, p auth.Principal, notificationID uuid.UUID) (*Notification, error) {
	var n *Notification
	err := s.db.Tx(ctx, func(tx *gorm.DB) (err error) {
		if n, err = database.Owned[Notification](tx, p.UserID, notificationID, errNotFound); err != nil {
			return err
		}
		if n.Read {
			return nil
		}
		n.Read, n.UpdatedAt = true, s.clock.Now()
		return tx.Model(&Notification{}).Where("id = ?", n.ID).Updates(map[string]any{"read": true, "updated_at": n.UpdatedAt}).Error
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// MarkAllRead marks every unread notification of the user read and says how
// many there were.
func (s *Service) MarkAllRead(ctx context.Context, p auth.Principal) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Notification{}).Where("user_id = ? AND read = ?", p.UserID, false).
			Updates(map[string]any{"read": true, "updated_at": s.clock.Now()})
		n = res.RowsAffected
		return res.Error
	})
	return n, err
}

// Delete removes a notification.
func (s *Service) Delete(ctx context.Context, p auth.Principal, notificationID uuid.UUID) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ? AND user_id = ?", notificationID, p.UserID).Delete(&Notification{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errNotFound
		}
		return nil
	})
}

// PublicKey returns the VAPID public key browsers subscribe with.
func (s *Service) PublicKey() (string, error) {
	if s.vapid.PublicKey == "" {
		return "", apperr.New(apperr.KindUnavailable, "SERVICE_UNAVAILABLE", "push notifications are not configured on this server")
	}
	return s.vapid.PublicKey, nil
}

// Subscription is the input of Subscribe.
type Subscription struct {
	Endpoint  string
	P256dhKey string
	AuthKey   string
}

// Subscribe stores a browser's push subscription for the user. An endpoint
// seen before under another user moves to this one only when it comes with
// the same keys (the same browser, now signed in as someone else); with
// other keys both users keep a row of their own, and nobody's pushes are
// redirected.
func (s *Service) Subscribe(ctx context.Context, p auth.Principal, in Subscription) (*PushSubscription, error) {
	if err := s.checkSubscription(ctx, in); err != nil {
		return nil, err
	}
	var out PushSubscription
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		now := s.clock.Now()
		var existing []PushSubscription
		if err := database.ForUpdate(tx).Where("endpoint = ?", in.Endpoint).Order("created_at, id").
			Find(&existing).Error; err != nil {
			return fmt.Errorf("find push subscription: %w", err)
		}
		mine := slices.IndexFunc(existing, func(e PushSubscription) bool { return e.UserID == p.UserID })
		sameBrowser := slices.IndexFunc(existing, func(e PushSubscription) bool {
			return e.P256dhKey == in.P256dhKey && e.AuthKey == in.AuthKey
		})
		if mine < 0 && sameBrowser >= 0 {
			if err := tx.Model(&PushSubscription{}).Where("id = ?", existing[sameBrowser].ID).
				Updates(map[string]any{"user_id": p.UserID, "active": true, "updated_at": now}).Error; err != nil {
				return fmt.Errorf("move push subscription: %w", err)
			}
			return tx.Where("id = ?", existing[sameBrowser].ID).Take(&out).Error
		}
		sub := PushSubscription{ID: id.New(), UserID: p.UserID, Endpoint: in.Endpoint, P256dhKey: in.P256dhKey,
			AuthKey: in.AuthKey, Active: true, CreatedAt: now, UpdatedAt: now}
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "user_id"}, {Name: "endpoint"}},
			DoUpdates: clause.AssignmentColumns([]string{"p256dh_key", "auth_key", "active", "updated_at"}),
		}).Create(&sub).Error
		if err != nil {
			return fmt.Errorf("store push subscription: %w", err)
		}
		return tx.Where("user_id = ? AND endpoint = ?", p.UserID, in.Endpoint).Take(&out).Error
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Unsubscribe forgets the user's subscription of endpoint; it reports
// whether there was one (another user's subscription of the same endpoint
// is neither touched nor revealed).
func (s *Service) Unsubscribe(ctx context.Context, p auth.Principal, endpoint string) (bool, error) {
	res := s.db.WithContext(ctx).Where("user_id = ? AND endpoint = ?", p.UserID, endpoint).Delete(&PushSubscription{})
	if res.Error != nil {
		return false, fmt.Errorf("delete push subscription: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

func (s *Service) checkSubscription(ctx context.Context, in Subscription) error {
	u, err := url.Parse(in.Endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return apperr.Validation("endpoint", "must be an https URL")
	}
	if !s.cfg.AllowPrivateEndpoints {
		if _, err := safeurl.Check(ctx, s.resolver, in.Endpoint, "https"); err != nil {
			return apperr.Validation("endpoint", "%s", err.Error())
		}
		if p := u.Port(); p != "" && p != "443" {
			return apperr.Validation("endpoint", "must use the https port (443): push services do")
		}
	}
	key, err := decodeKey(in.P256dhKey)
	if err != nil || len(key) != 65 || key[0] != 4 {
		return apperr.Validation("p256dh_key", "must be an uncompressed P-256 public key, base64url")
	}
	secret, err := decodeKey(in.AuthKey)
	if err != nil || len(secret) != 16 {
		return apperr.Validation("auth_key", "must be a 16-byte secret, base64url")
	}
	return nil
}

// decodeKey accepts base64url with or without padding (browsers' PushSubscription.toJSON gives it unpadded).
func decodeKey(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
