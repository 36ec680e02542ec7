package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// Service holds the subscription rules and the provider's webhooks.
type Service struct {
	db       *database.DB
	bus      *events.Bus
	clock    clock.Clock
	cfg      Config
	ledger   *Ledger
	checkout *checkout
	tiers    auth.Tiers
	users    auth.Users
	log      *zap.Logger
	webhooks *prometheus.CounterVec
}

type serviceParams struct {
	fx.In

	DB       *database.DB
	Bus      *events.Bus
	Clock    clock.Clock
	Cfg      Config
	Ledger   *Ledger
	Checkout *checkout
	Tiers    auth.Tiers
	Users    auth.Users
	Log      *zap.Logger
	Registry prometheus.Registerer
}

func newService(p serviceParams) *Service {
	s := &Service{db: p.DB, bus: p.Bus, clock: p.Clock, cfg: p.Cfg, ledger: p.Ledger, checkout: p.Checkout,
		tiers: p.Tiers, users: p.Users, log: p.Log.Named("billing"),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "payment_webhooks_total",
			Help: "Payment provider webhooks by event type and outcome (applied, replayed, ignored, refused).",
		}, []string{"type", "outcome"})}
	p.Registry.MustRegister(s.webhooks)
	return s
}

// View is a user's subscription as the API shows it.
type View struct {
	Tier     string
	Sub      *Subscription
	Features TierLimits
}

// Subscription returns the caller's subscription.
func (s *Service) Subscription(ctx context.Context, p auth.Principal) (*View, error) {
	v := &View{Tier: p.Tier, Features: s.cfg.Tiers.For(p.Tier)}
	var sub Subscription
	err := s.db.WithContext(ctx).Where("user_id = ?", p.UserID).Take(&sub).Error
	switch {
	case database.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("load subscription: %w", err)
	default:
		v.Sub = &sub
	}
	return v, nil
}

// Checkout is a payment page opened for the caller.
type Checkout struct {
	SessionID uuid.UUID
	URL       string
}

// openPage opens a hosted payment page and records it.
func (s *Service) openPage(ctx context.Context, p auth.Principal, purpose string, credits, amount int) (*Checkout, error) {
	sess := PaymentSession{ID: id.New(), UserID: p.UserID, Purpose: purpose, Credits: credits, Amount: amount,
		Currency: s.cfg.Currency, State: SessionOpen, CreatedAt: s.clock.Now()}
	sess.ExpiresAt, sess.UpdatedAt = sess.CreatedAt.Add(24*time.Hour), sess.CreatedAt
	hp, err := s.checkout.open(ctx, paymentPage{Amount: amount, Currency: s.cfg.Currency, Reference: sess.ID.String(),
		Purpose: purpose, UserID: p.UserID.String(), Email: p.Email, Credits: credits})
	if err != nil {
		return nil, err
	}
	sess.ProviderID = hp.ID
	if err := s.db.WithContext(ctx).Create(&sess).Error; err != nil {
		return nil, fmt.Errorf("record payment session: %w", err)
	}
	return &Checkout{SessionID: sess.ID, URL: hp.Links.Redirect.Href}, nil
}

// Upgrade opens the payment page of a Pro subscription. Only the
// provider's webhook turns the user Pro.
func (s *Service) Upgrade(ctx context.Context, p auth.Principal) (*View, *Checkout, error) {
	if p.Tier == auth.TierPro {
		return nil, nil, apperr.New(apperr.KindConflict, apperr.CodeConflict, "you are on Pro already")
	}
	c, err := s.openPage(ctx, p, PurposeSubscription, 0, s.cfg.SubscriptionPriceCents)
	if err != nil {
		return nil, nil, err
	}
	v, err := s.Subscription(ctx, p)
	return v, c, err
}

// Cancel ends the subscription at the end of its period: Pro until then.
func (s *Service) Cancel(ctx context.Context, p auth.Principal) (*Subscription, error) {
	var out *Subscription
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		sub, err := lockSubscription(tx, p.UserID)
		if err != nil {
			return err
		}
		if sub == nil || p.Tier != auth.TierPro || sub.Status == StatusExpired {
			return apperr.New(apperr.KindConflict, apperr.CodeConflict, "there is no Pro subscription to cancel")
		}
		out = sub
		if sub.CancelAtPeriodEnd {
			return nil
		}
		sub.CancelAtPeriodEnd, sub.Status = true, StatusCancelled
		if err := s.saveSubscription(tx, sub); err != nil {
			return err
		}
		return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: p.UserID, Action: ActionCancelled, Status: sub.Status,
			Until: sub.CurrentPeriodEnd})
	})
	return out, err
}

// Purchase is the outcome of buying credits.
type Purchase struct {
	Granted          bool
	Credits          int
	Balance          Balance
	MonthlyPurchased int
	MonthlyLimit     int
	Checkout         *Checkout
}

// monthStart is the first instant of t's UTC month.
func monthStart(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// PurchaseCredits buys credits (Pro only, within the month's limit). With a
// payment provider the credits come with the payment's webhook; without one
// (development) they are granted at once; production without a provider
// sells nothing.
func (s *Service) PurchaseCredits(ctx context.Context, p auth.Principal, credits int) (*Purchase, error) {
	limit := s.cfg.Tiers.For(p.Tier).MonthlyCreditPurchase
	if p.Tier != auth.TierPro || limit <= 0 {
		return nil, apperr.New(apperr.KindForbidden, "TIER_REQUIRED", "buying credits is a Pro feature")
	}
	out := &Purchase{Credits: credits, MonthlyLimit: limit}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := lockUser(tx, p.UserID); err != nil {
			return err
		}
		bought, err := s.ledger.PurchasedSince(tx, p.UserID, monthStart(s.clock.Now()))
		if err != nil {
			return err
		}
		if bought+credits > limit {
			return apperr.New(apperr.KindConflict, apperr.CodeLimitExceeded,
				"limit monthly_credit_purchase reached (%d): %d bought this month", limit, bought)
		}
		out.MonthlyPurchased = bought
		if s.checkout.configured() {
			return nil
		}
		if s.cfg.Production {
			return apperr.New(apperr.KindUnavailable, CodePaymentUnavailable,
				"payments are not configured on this server (set CHECKOUT_SECRET_KEY)")
		}
		granted, bal, err := s.ledger.GrantPurchase(ctx, tx, p.UserID, credits, id.New().String())
		out.Granted, out.Balance = granted, bal
		if err != nil {
			return err
		}
		out.MonthlyPurchased += credits
		return s.bus.Publish(ctx, tx, CreditsGranted{UserID: p.UserID, Kind: KindPurchased, Amount: credits})
	})
	if err != nil {
		return nil, err
	}
	if !out.Granted {
		if out.Checkout, err = s.openPage(ctx, p, PurposeCredits, credits, credits*s.cfg.CreditPriceCents); err != nil {
			return nil, err
		}
		if out.Balance, err = s.ledger.CurrentBalance(ctx, p.UserID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lockSubscription returns the user's subscription locked, or nil.
func lockSubscription(tx *gorm.DB, userID uuid.UUID) (*Subscription, error) {
	var sub Subscription
	err := database.ForUpdate(tx).Where("user_id = ?", userID).Take(&sub).Error
	if database.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load subscription: %w", err)
	}
	return &sub, nil
}

var errSubscriptionChanged = apperr.New(apperr.KindConflict, apperr.CodeConflict, "the subscription changed meanwhile; try again")

func (s *Service) saveSubscription(tx *gorm.DB, sub *Subscription) error {
	now := s.clock.Now()
	if sub.Version == 0 {
		sub.Version, sub.CreatedAt, sub.UpdatedAt = 1, now, now
		return tx.Create(sub).Error
	}
	prev := sub.Version
	sub.Version, sub.UpdatedAt = prev+1, now
	res := tx.Model(&Subscription{}).Where("user_id = ? AND version = ?", sub.UserID, prev).
		Select("status", "current_period_start", "current_period_end", "cancel_at_period_end", "payment_failures",
			"grace_until", "version", "updated_at").Updates(sub)
	return database.One(res, errSubscriptionChanged)
}

// Webhook errors.
var (
	errWebhooksOff = apperr.New(apperr.KindUnavailable, CodePaymentUnavailable,
		"payment webhooks are not configured on this server (set CHECKOUT_WEBHOOK_SECRET)")
	errBadSignature = apperr.Unauthorized(apperr.CodeUnauthorized, "the Cko-Signature header does not match the body")
)

// HandleWebhook verifies and applies one provider event, at most once per
// event id (the id is recorded in the transaction of the effect).
func (s *Service) HandleWebhook(ctx context.Context, body []byte, signature string) error {
	if s.checkout.cfg.WebhookSecret == "" {
		return errWebhooksOff
	}
	if !s.checkout.verify(body, signature) {
		s.webhooks.WithLabelValues("unknown", "refused").Inc()
		return errBadSignature
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || e.Type == "" {
		s.webhooks.WithLabelValues("unknown", "refused").Inc()
		return apperr.Validation("body", "not a payment event (id and type are required)")
	}
	log := observability.Logger(ctx, s.log).With(zap.String("event_id", e.ID), zap.String("type", e.Type))
	outcome := "applied"
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		outcome = "applied"
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&WebhookEvent{ID: e.ID, Type: e.Type, ReceivedAt: s.clock.Now()})
		if res.Error != nil {
			return fmt.Errorf("record event: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			outcome = "replayed"
			return nil
		}
		userID, err := uuid.Parse(e.Data.Metadata.UserID)
		if err != nil {
			outcome = "ignored"
			log.Warn("payment event names no user")
			return nil
		}
		p, err := s.users.Principal(ctx, tx, userID)
		if database.IsNotFound(err) {
			outcome = "ignored"
			log.Warn("payment event for an unknown user", zap.String("user_id", userID.String()))
			return nil
		}
		if err != nil {
			return err
		}
		applied, err := s.apply(ctx, tx, p, &e)
		if !applied && err == nil {
			outcome = "ignored"
			log.Info("payment event of a type we do not handle")
		}
		return err
	})
	if err != nil {
		s.webhooks.WithLabelValues(e.Type, "failed").Inc()
		return err
	}
	s.webhooks.WithLabelValues(e.Type, outcome).Inc()
	return nil
}

// apply makes an event's effect; it reports false for types it ignores.
func (s *Service) apply(ctx context.Context, tx *gorm.DB, p auth.Principal, e *Event) (bool, error) {
	switch {
	case e.Type == "payment_captured" && e.Data.Metadata.Purpose == PurposeCredits:
		return true, s.creditsPaid(ctx, tx, p, e)
	case e.Type == "payment_captured" || e.Type == "subscription_renewed":
		return true, s.periodPaid(ctx, tx, p, e)
	case e.Type == "payment_declined":
		return true, s.paymentDeclined(ctx, tx, p)
	case e.Type == "subscription_cancelled":
		return true, s.cancelledByProvider(ctx, tx, p)
	}
	return false, nil
}

func (s *Service) creditsPaid(ctx context.Context, tx *gorm.DB, p auth.Principal, e *Event) error {
	credits := e.credits()
	if credits <= 0 {
		return nil
	}
	key := e.Data.ID
	if key == "" {
		key = e.ID
	}
	granted, _, err := s.ledger.GrantPurchase(ctx, tx, p.UserID, credits, key)
	if err != nil || !granted {
		return err
	}
	return s.bus.Publish(ctx, tx, CreditsGranted{UserID: p.UserID, Kind: KindPurchased, Amount: credits})
}

// periodPaid starts a paid month: Pro, active, failures forgotten, the
// month's credits (with the carry-over).
func (s *Service) periodPaid(ctx context.Context, tx *gorm.DB, p auth.Principal, e *Event) error {
	sub, err := lockSubscription(tx, p.UserID)
	if err != nil {
		return err
	}
	action := ActionRenewed
	if sub == nil || sub.Status == StatusExpired || p.Tier != auth.TierPro {
		action = ActionActivated
	}
	if sub == nil {
		sub = &Subscription{UserID: p.UserID}
	}
	now := s.clock.Now()
	end := now.AddDate(0, 1, 0)
	sub.Status, sub.CurrentPeriodStart, sub.CurrentPeriodEnd = StatusActive, &now, &end
	sub.CancelAtPeriodEnd, sub.PaymentFailures, sub.GraceUntil = false, 0, nil
	if err := s.saveSubscription(tx, sub); err != nil {
		return err
	}
	if err := s.tiers.SetTier(ctx, tx, p.UserID, auth.TierPro); err != nil {
		return err
	}
	key := e.Data.ID
	if key == "" {
		key = e.ID
	}
	monthly := s.cfg.Tiers.For(auth.TierPro).MonthlyCredits
	if err := s.ledger.RenewSubscription(ctx, tx, p.UserID, monthly, end, key); err != nil {
		return err
	}
	return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: p.UserID, Action: action, Status: sub.Status, Until: &end})
}

// paymentDeclined counts a failed payment; the last allowed one opens the
// grace period (Pro for a while longer).
func (s *Service) paymentDeclined(ctx context.Context, tx *gorm.DB, p auth.Principal) error {
	sub, err := lockSubscription(tx, p.UserID)
	if err != nil || sub == nil || sub.Status == StatusGrace || sub.Status == StatusExpired {
		return err
	}
	sub.PaymentFailures++
	sub.Status = StatusPastDue
	if sub.PaymentFailures >= s.cfg.MaxPaymentFailures {
		until := s.clock.Now().Add(s.cfg.GracePeriod)
		sub.Status, sub.GraceUntil = StatusGrace, &until
	}
	if err := s.saveSubscription(tx, sub); err != nil {
		return err
	}
	if sub.Status != StatusGrace {
		return nil
	}
	return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: p.UserID, Action: ActionGrace, Status: sub.Status,
		Until: sub.GraceUntil})
}

func (s *Service) cancelledByProvider(ctx context.Context, tx *gorm.DB, p auth.Principal) error {
	sub, err := lockSubscription(tx, p.UserID)
	if err != nil || sub == nil || sub.CancelAtPeriodEnd {
		return err
	}
	sub.CancelAtPeriodEnd, sub.Status = true, StatusCancelled
	if err := s.saveSubscription(tx, sub); err != nil {
		return err
	}
	return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: p.UserID, Action: ActionCancelled, Status: sub.Status,
		Until: sub.CurrentPeriodEnd})
}

// EndLapsed ends the subscriptions whose paid period or grace period is
// over: free tier, subscription credits written off, the user told. It
// returns how many it ended.
func (s *Service) EndLapsed(ctx context.Context) (int, error) {
	now := s.clock.Now()
	var due []Subscription
	err := s.db.WithContext(ctx).Where(
		"(status = ? AND grace_until <= ?) OR (status IN ? AND current_period_end <= ?)",
		StatusGrace, now, []string{StatusActive, StatusPastDue, StatusCancelled}, now).Find(&due).Error
	if err != nil {
		return 0, fmt.Errorf("find lapsed subscriptions: %w", err)
	}
	ended := 0
	for _, d := range due {
		err := s.db.Tx(ctx, func(tx *gorm.DB) error {
			sub, err := lockSubscription(tx, d.UserID)
			if err != nil || sub == nil || !lapsed(sub, now) {
				return err
			}
			if sub.Status != StatusCancelled {
				sub.Status = StatusExpired
			}
			if err := s.saveSubscription(tx, sub); err != nil {
				return err
			}
			if err := s.tiers.SetTier(ctx, tx, sub.UserID, auth.TierFree); err != nil {
				return err
			}
			if err := s.ledger.EndSubscriptionCredits(ctx, tx, sub.UserID); err != nil {
				return err
			}
			ended++
			return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: sub.UserID, Action: ActionEnded, Status: sub.Status})
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			return ended, err
		}
	}
	return ended, nil
}

// lapsed reports whether the subscription's Pro access is over at now.
func lapsed(sub *Subscription, now time.Time) bool {
	switch sub.Status {
	case StatusGrace:
		return sub.GraceUntil != nil && !sub.GraceUntil.After(now)
	case StatusActive, StatusPastDue, StatusCancelled:
		return sub.CurrentPeriodEnd != nil && !sub.CurrentPeriodEnd.After(now)
	}
	return false
}
