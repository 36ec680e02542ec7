package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/observability"
	"github.com/perpetuaflow/api/platform/safeurl"
)

// WebPush delivery: every notification made for push becomes one
// push_deliver job per active subscription of its user, inserted in the
// transaction that made the notification. The job encrypts the payload for
// the subscription (RFC 8291), signs a VAPID token (RFC 8292) and posts it
// to the browser vendor's push service, with webpush-go.

// PushClient is the HTTP client that reaches push services. By default it
// refuses to connect to non-public addresses (the endpoints come from
// browsers, that is from users); push.allow_private_endpoints lifts that
// for development.
type PushClient struct{ *http.Client }

func newPushClient(c Config) PushClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !c.AllowPrivateEndpoints {
		t.DialContext = safeurl.Dialer(c.Timeout).DialContext
		t.Proxy = nil // a proxy would dial for us, unchecked
	}
	return PushClient{Client: &http.Client{Timeout: c.Timeout, Transport: observability.Outbound(t, "push"),
		// A push service answers; it does not redirect. Following one
		// would leave the checked host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// notificationCreated is published when a notification that should also
// reach the user's browsers is made.
type notificationCreated struct {
	NotificationID uuid.UUID
	UserID         uuid.UUID
}

// PushDeliverArgs delivers one notification to one subscription.
type PushDeliverArgs struct {
	NotificationID uuid.UUID `json:"notification_id"`
	SubscriptionID uuid.UUID `json:"subscription_id"`
}

// Kind implements river.JobArgs.
func (PushDeliverArgs) Kind() string { return "push_deliver" }

// queuePushes enqueues one delivery per active subscription of the user, in
// the transaction that made the notification. Without VAPID keys there is
// no push.
func queuePushes(q jobs.Enqueuer, v *vapid, c Config) events.Subscription {
	return events.On("queue pushes", func(ctx context.Context, tx *gorm.DB, e notificationCreated) error {
		if v.PublicKey == "" {
			return nil
		}
		var subs []PushSubscription
		if err := tx.Where("user_id = ? AND active = ?", e.UserID, true).Order("created_at, id").Find(&subs).Error; err != nil {
			return fmt.Errorf("find push subscriptions: %w", err)
		}
		for _, sub := range subs {
			if _, err := q.InsertTx(ctx, tx, PushDeliverArgs{NotificationID: e.NotificationID, SubscriptionID: sub.ID},
				&river.InsertOpts{MaxAttempts: c.MaxAttempts}); err != nil {
				return err
			}
		}
		return nil
	})
}

// pushPayload is what the service worker receives.
type pushPayload struct {
	NotificationID uuid.UUID  `json:"notification_id"`
	Type           string     `json:"type"`
	Title          string     `json:"title"`
	Body           string     `json:"body"`
	TaskID         *uuid.UUID `json:"task_id"`
	CreatedAt      time.Time  `json:"created_at"`
}

type pushWorker struct {
	river.WorkerDefaults[PushDeliverArgs]
	db      *database.DB
	vapid   *vapid
	cfg     Config
	client  PushClient
	clock   clock.Clock
	log     *zap.Logger
	outcome *prometheus.CounterVec
}

func newPushWorker(db *database.DB, v *vapid, c Config, client PushClient, clk clock.Clock, log *zap.Logger,
	reg prometheus.Registerer) jobs.Worker {
	w := &pushWorker{db: db, vapid: v, cfg: c, client: client, clock: clk, log: log.Named("push"),
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "push_deliveries_total",
			Help: "WebPush deliveries by outcome (delivered, gone, rejected, retried, skipped).",
		}, []string{"outcome"})}
	reg.MustRegister(w.outcome)
	return jobs.NewWorker[PushDeliverArgs](w)
}

// NextRetry backs off from the configured delay, doubling.
func (w *pushWorker) NextRetry(job *river.Job[PushDeliverArgs]) time.Time {
	return time.Now().Add(w.cfg.RetryBackoff << min(job.Attempt-1, 10))
}

// errRetry is a delivery the push service asked to try again.
var errRetry = errors.New("push service busy")

// Work sends one push. A 404 or 410 means the browser unsubscribed: the
// subscription is deactivated. Other 4xx answers will not change by
// retrying and end the job; 429, 5xx and network failures are retried with
// backoff, up to the job's attempts. The notification id is the Topic, so a
// push sent twice (a retry after a lost answer) replaces itself at the push
// service instead of showing twice.
func (w *pushWorker) Work(ctx context.Context, job *river.Job[PushDeliverArgs]) error {
	args := job.Args
	var n []Notification
	var sub []PushSubscription
	db := w.db.WithContext(ctx)
	if err := db.Where("id = ?", args.NotificationID).Limit(1).Find(&n).Error; err != nil {
		return err
	}
	if err := db.Where("id = ?", args.SubscriptionID).Limit(1).Find(&sub).Error; err != nil {
		return err
	}
	if len(n) == 0 || len(sub) == 0 || !sub[0].Active || sub[0].UserID != n[0].UserID || w.vapid.PublicKey == "" {
		w.outcome.WithLabelValues("skipped").Inc()
		return nil // read and deleted, unsubscribed, or push turned off since
	}
	payload, _ := json.Marshal(pushPayload{NotificationID: n[0].ID, Type: n[0].Type, Title: n[0].Title, Body: n[0].Message,
		TaskID: n[0].TaskID, CreatedAt: n[0].CreatedAt.UTC()})
	urgency := webpush.UrgencyNormal
	if n[0].Type == TypeReminder {
		urgency = webpush.UrgencyHigh
	}
	res, err := webpush.SendNotificationWithContext(ctx, payload,
		&webpush.Subscription{Endpoint: sub[0].Endpoint, Keys: webpush.Keys{Auth: sub[0].AuthKey, P256dh: sub[0].P256dhKey}},
		&webpush.Options{HTTPClient: w.client.Client, Subscriber: strings.TrimPrefix(w.vapid.Contact, "mailto:"),
			VAPIDPublicKey: w.vapid.PublicKey, VAPIDPrivateKey: w.vapid.PrivateKey, TTL: int(w.cfg.TTL.Seconds()),
			Topic: strings.ReplaceAll(n[0].ID.String(), "-", ""), Urgency: urgency})
	log := w.log.With(zap.String("subscription_id", sub[0].ID.String()), zap.String("notification_id", n[0].ID.String()),
		zap.Int("attempt", job.Attempt))
	if err != nil {
		w.outcome.WithLabelValues("retried").Inc()
		log.Warn("push failed", zap.Error(err))
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		w.outcome.WithLabelValues("delivered").Inc()
		return nil
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		w.outcome.WithLabelValues("gone").Inc()
		log.Info("push subscription gone; deactivated", zap.Int("status", res.StatusCode))
		return w.db.Tx(ctx, func(tx *gorm.DB) error {
			return tx.Model(&PushSubscription{}).Where("id = ?", sub[0].ID).
				Updates(map[string]any{"active": false, "updated_at": w.clock.Now()}).Error
		})
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		w.outcome.WithLabelValues("retried").Inc()
		log.Warn("push service busy", zap.Int("status", res.StatusCode))
		return fmt.Errorf("%w: status %d", errRetry, res.StatusCode)
	default:
		w.outcome.WithLabelValues("rejected").Inc()
		log.Warn("push rejected", zap.Int("status", res.StatusCode), zap.ByteString("body", body))
		return nil
	}
}
