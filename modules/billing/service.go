package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// recordPage records a payment page about to be opened, inside tx: from
// now on it is ours to honour, and while it is open its credits count
// against the month's purchase limit.
func (s *Service) recordPage(tx *gorm.DB, p auth.Principal, purpose string, credits, amount int) (*PaymentSession, error) {
	now := s.clock.Now()
	sess := &PaymentSession{ID: id.New(), UserID: p.UserID, Purpose: purpose, Credits: credits, Amount: amount,
		Currency: s.cfg.Currency, State: SessionOpen, ExpiresAt: now.Add(s.cfg.Checkout.SessionTTL), CreatedAt: now, UpdatedAt: now}
	if err := tx.Create(sess).Error; err != nil {
		return nil, fmt.Errorf("record payment session: %w", err)
	}
	return sess, nil
}

// openPage asks the provider for the recorded session's page. A page the
// provider did not open is marked failed (it no longer counts); one it
// opened keeps the provider's id and expiry.
func (s *Service) openPage(ctx context.Context, p auth.Principal, sess *PaymentSession) (*Checkout, error) {
	hp, err := s.checkout.open(ctx, paymentPage{Amount: sess.Amount, Currency: sess.Currency, Reference: sess.ID.String(),
		Purpose: sess.Purpose, UserID: p.UserID.String(), Email: p.Email, Credits: sess.Credits})
	ctx = context.WithoutCancel(ctx)
	update := map[string]any{"updated_at": s.clock.Now()}
	if err != nil {
		update["state"] = SessionFailed
	} else {
		update["provider_id"] = hp.ID
		if t, ok := hp.expires(); ok {
			update["expires_at"] = t
		}
	}
	if uerr := s.db.WithContext(ctx).Model(&PaymentSession{}).Where("id = ?", sess.ID).Updates(update).Error; uerr != nil {
		return nil, fmt.Errorf("record payment session: %w", uerr)
	}
	if err != nil {
		return nil, err
	}
	return &Checkout{SessionID: sess.ID, URL: hp.Links.Redirect.Href}, nil
}

// Upgrade opens the payment page of a Pro subscription. Only the
// provider's webhook turns the user Pro.
func (s *Service) Upgrade(ctx context.Context, p auth.Principal) (*View, *Checkout, error) {
	if p.Tier == auth.TierPro {
		return nil, nil, apperr.New(apperr.KindConflict, apperr.CodeConflict, "you are on Pro already")
	}
	if !s.checkout.configured() {
		return nil, nil, errPaymentsOff
	}
	sess, err := s.recordPage(s.db.WithContext(ctx), p, PurposeSubscription, 0, s.cfg.SubscriptionPriceCents)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.openPage(ctx, p, sess)
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
		if !sub.Cancel() {
			return nil
		}
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
	Granted bool
	Credits int
	Balance Balance
	// MonthlyPurchased is what the month's payments granted; MonthlyOpen is
	// what open payment pages (this one included) would add.
	MonthlyPurchased int
	MonthlyOpen      int
	MonthlyLimit     int
	Checkout         *Checkout
}

// monthStart is the first instant of t's UTC month.
func monthStart(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

var errPaymentsOff = apperr.New(apperr.KindUnavailable, CodePaymentUnavailable,
	"payments are not configured on this server (set CHECKOUT_SECRET_KEY)")

// PurchaseCredits buys credits (Pro only, within the month's limit). With a
// payment provider the credits come with the payment's webhook, and the
// page's credits count against the limit while it is open; without one
// (development) they are granted at once; production without a provider
// sells nothing. The limit is checked and the page recorded under the
// user's ledger lock, so concurrent purchases never pass it together.
func (s *Service) PurchaseCredits(ctx context.Context, p auth.Principal, credits int) (*Purchase, error) {
	limit := s.cfg.Tiers.For(p.Tier).MonthlyCreditPurchase
	if p.Tier != auth.TierPro || limit <= 0 {
		return nil, apperr.New(apperr.KindForbidden, "TIER_REQUIRED", "buying credits is a Pro feature")
	}
	if !s.checkout.configured() && s.cfg.Production {
		return nil, errPaymentsOff
	}
	out := &Purchase{Credits: credits, MonthlyLimit: limit}
	var sess *PaymentSession
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := lockUser(tx, p.UserID); err != nil {
			return err
		}
		now := s.clock.Now()
		bought, err := s.ledger.PurchasedSince(tx, p.UserID, monthStart(now))
		if err != nil {
			return err
		}
		var open int
		if err := tx.Model(&PaymentSession{}).Select("COALESCE(SUM(credits), 0)").
			Where("user_id = ? AND purpose = ? AND state = ? AND expires_at > ?", p.UserID, PurposeCredits, SessionOpen, now).
			Scan(&open).Error; err != nil {
			return fmt.Errorf("sum open payment pages: %w", err)
		}
		if bought+open+credits > limit {
			return apperr.New(apperr.KindConflict, apperr.CodeLimitExceeded,
				"limit monthly_credit_purchase reached (%d): %d bought this month and %d on payment pages still open",
				limit, bought, open)
		}
		out.MonthlyPurchased, out.MonthlyOpen = bought, open
		if s.checkout.configured() {
			out.MonthlyOpen += credits
			sess, err = s.recordPage(tx, p, PurposeCredits, credits, credits*s.cfg.CreditPriceCents)
			return err
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
	if sess != nil {
		if out.Checkout, err = s.openPage(ctx, p, sess); err != nil {
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
		// The first row of a user: a concurrent first change (a payment, an
		// operator) may have inserted it since the lock found none. "Nothing
		// inserted" is that answer: the change is refused, to be tried again.
		sub.Version, sub.CreatedAt, sub.UpdatedAt = 1, now, now
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(sub)
		if res.Error == nil && res.RowsAffected == 0 {
			return errSubscriptionChanged
		}
		return res.Error
	}
	return database.SaveVersion(tx, sub, now, errSubscriptionChanged, "status", "current_period_start",
		"current_period_end", "cancel_at_period_end", "payment_failures", "grace_until", "provider_source")
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
	if err := json.Unmarshal(body, &e); err != nil {
		s.webhooks.WithLabelValues("unknown", "refused").Inc()
		return apperr.Validation("body", "not a payment event: its fields do not have their types (amount is an integer of minor units)")
	}
	if err := e.check(); err != nil {
		s.webhooks.WithLabelValues("unknown", "refused").Inc()
		return err
	}
	log := observability.Logger(ctx, s.log).With(zap.String("event_id", e.ID), zap.String("type", e.Type))
	var outcome string
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
		var why string
		if why, err = s.apply(ctx, tx, p, &e); err == nil && why != "" {
			outcome = "ignored"
			log.Warn("payment event changed nothing", zap.String("user_id", userID.String()), zap.String("why", why))
		}
		return err
	})
	if err != nil {
		s.webhooks.WithLabelValues(eventLabel(e.Type), "failed").Inc()
		return err
	}
	s.webhooks.WithLabelValues(eventLabel(e.Type), outcome).Inc()
	return nil
}

// eventLabel keeps the metric's label values to the types we know.
func eventLabel(typ string) string {
	switch typ {
	case "payment_captured", "subscription_renewed", "payment_declined", "subscription_cancelled":
		return typ
	}
	return "other"
}

// apply makes an event's effect; it returns why an event changed nothing
// (empty when it did).
func (s *Service) apply(ctx context.Context, tx *gorm.DB, p auth.Principal, e *Event) (string, error) {
	switch e.Type {
	case "payment_captured":
		sess, why, err := s.sessionOf(tx, p, e, true)
		if err != nil || why != "" {
			return why, err
		}
		if err := s.settleSession(tx, sess, SessionPaid); err != nil {
			return "", err
		}
		if sess.Purpose == PurposeCredits {
			return "", s.creditsPaid(ctx, tx, p, sess)
		}
		return "", s.periodPaid(ctx, tx, p, e)
	case "subscription_renewed":
		// The provider's recurring payment: no page of ours, and what it
		// grants is the tier's, not the event's.
		return "", s.periodPaid(ctx, tx, p, e)
	case "payment_declined":
		sess, _, err := s.sessionOf(tx, p, e, false)
		if err != nil {
			return "", err
		}
		if sess != nil && sess.Purpose == PurposeCredits {
			// A declined purchase frees its place in the month's limit; the
			// page may still take another card (a later capture is honoured).
			return "", s.settleSession(tx, sess, SessionDeclined)
		}
		return "", s.paymentDeclined(ctx, tx, p)
	case "subscription_cancelled":
		return "", s.cancelledByProvider(ctx, tx, p)
	}
	return "a type we do not handle", nil
}

// sessionOf finds, locked, our record of the payment an event is about
// (data.reference), the user's own. With match, the event must be for the
// amount and currency of the record and the record payable; otherwise the
// reason it is not is returned (and no session).
func (s *Service) sessionOf(tx *gorm.DB, p auth.Principal, e *Event, match bool) (*PaymentSession, string, error) {
	ref, err := uuid.Parse(e.Data.Reference)
	if err != nil {
		return nil, "data.reference is not one of our payment sessions", nil
	}
	var sess PaymentSession
	err = database.ForUpdate(tx).Where("id = ? AND user_id = ?", ref, p.UserID).Take(&sess).Error
	if database.IsNotFound(err) {
		return nil, "data.reference is not one of the user's payment sessions", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("load payment session: %w", err)
	}
	if !match {
		return &sess, "", nil
	}
	switch {
	case e.Data.Amount != int64(sess.Amount) || !strings.EqualFold(e.Data.Currency, sess.Currency):
		return nil, fmt.Sprintf("paid %d %s for a session of %d %s", e.Data.Amount, e.Data.Currency, sess.Amount, sess.Currency), nil
	case sess.State == SessionPaid:
		return nil, "the session was paid already", nil
	case sess.State == SessionFailed:
		return nil, "the session's page was never opened", nil
	}
	return &sess, "", nil
}

// settleSession ends a payment session in state.
func (s *Service) settleSession(tx *gorm.DB, sess *PaymentSession, state string) error {
	return tx.Model(&PaymentSession{}).Where("id = ?", sess.ID).
		Updates(map[string]any{"state": state, "updated_at": s.clock.Now()}).Error
}

// creditsPaid grants what the paid session bought, once.
func (s *Service) creditsPaid(ctx context.Context, tx *gorm.DB, p auth.Principal, sess *PaymentSession) error {
	granted, _, err := s.ledger.GrantPurchase(ctx, tx, p.UserID, sess.Credits, sess.ID.String())
	if err != nil || !granted {
		return err
	}
	return s.bus.Publish(ctx, tx, CreditsGranted{UserID: p.UserID, Kind: KindPurchased, Amount: sess.Credits})
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
	sub.PeriodPaid(s.clock.Now())
	if src := e.Data.Source.ID; src != "" {
		sub.ProviderSource = &src
	}
	end := *sub.CurrentPeriodEnd
	if err := s.saveSubscription(tx, sub); err != nil {
		return err
	}
	if err := s.tiers.SetTier(ctx, tx, p.UserID, auth.TierPro); err != nil {
		return err
	}
	monthly := s.cfg.Tiers.For(auth.TierPro).MonthlyCredits
	if err := s.ledger.RenewSubscription(ctx, tx, p.UserID, monthly, end, e.paymentKey()); err != nil {
		return err
	}
	return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: p.UserID, Action: action, Status: sub.Status, Until: &end})
}

// paymentDeclined counts a failed payment; the last allowed one opens the
// grace period (Pro for a while longer).
func (s *Service) paymentDeclined(ctx context.Context, tx *gorm.DB, p auth.Principal) error {
	sub, err := lockSubscription(tx, p.UserID)
	if err != nil || sub == nil || !sub.PaymentDeclined(s.clock.Now(), s.cfg.MaxPaymentFailures, s.cfg.GracePeriod) {
		return err
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
	if err != nil || sub == nil || !sub.Cancel() {
		return err
	}
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
		// The closure may run again after a deadlock: it says what its last
		// run did, and the count is taken once it committed.
		var done bool
		err := s.db.Tx(ctx, func(tx *gorm.DB) error {
			done = false
			sub, err := lockSubscription(tx, d.UserID)
			if err != nil || sub == nil || !sub.Lapsed(now) {
				return err
			}
			sub.End()
			if err := s.saveSubscription(tx, sub); err != nil {
				return err
			}
			if err := s.tiers.SetTier(ctx, tx, sub.UserID, auth.TierFree); err != nil {
				return err
			}
			if err := s.ledger.EndSubscriptionCredits(ctx, tx, sub.UserID); err != nil {
				return err
			}
			done = true
			return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: sub.UserID, Action: ActionEnded, Status: sub.Status})
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			return ended, err
		}
		if err == nil && done {
			ended++
		}
	}
	return ended, nil
}

// Plan implements Plans.
func (s *Service) Plan(ctx context.Context, userID uuid.UUID) (*Plan, error) {
	p, err := s.users.Principal(ctx, s.db.Gorm.WithContext(ctx), userID)
	if err != nil {
		return nil, err
	}
	out := &Plan{Tier: p.Tier}
	var sub Subscription
	err = s.db.WithContext(ctx).Where("user_id = ?", userID).Take(&sub).Error
	switch {
	case database.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("load subscription: %w", err)
	default:
		out.Status = sub.Status
		if sub.Status == StatusGrace {
			out.Until = sub.GraceUntil
		} else if sub.Status != StatusExpired {
			out.Until = sub.CurrentPeriodEnd
		}
	}
	if out.Balance, err = s.ledger.CurrentBalance(ctx, userID); err != nil {
		return nil, err
	}
	return out, nil
}

// SetTier implements Plans. Pro is a subscription granted until the time
// given (subscription_check ends it then) or with no end; free ends the
// subscription at once (its subscription credits are written off). A paid
// subscription ended here is not cancelled at the payment provider.
func (s *Service) SetTier(ctx context.Context, userID uuid.UUID, tier string, until *time.Time) (*Plan, error) {
	now := s.clock.Now()
	switch {
	case tier != auth.TierPro && tier != auth.TierFree:
		return nil, apperr.Validation("tier", "must be pro or free, got %q", tier)
	case tier == auth.TierFree && until != nil:
		return nil, apperr.Validation("until", "is for pro only: free starts at once")
	case until != nil && !until.After(now):
		return nil, apperr.Validation("until", "must be in the future")
	}
	ctx = events.WithSource(ctx, events.SourceSystem)
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		p, err := s.users.Principal(ctx, tx, userID)
		if err != nil {
			return err
		}
		sub, err := lockSubscription(tx, userID)
		if err != nil {
			return err
		}
		if tier == auth.TierPro {
			action := ActionRenewed
			if sub == nil || sub.Status == StatusExpired || p.Tier != auth.TierPro {
				action = ActionActivated
			}
			if sub == nil {
				sub = &Subscription{UserID: userID}
			}
			sub.Granted(now, until)
			if err := s.saveSubscription(tx, sub); err != nil {
				return err
			}
			if err := s.tiers.SetTier(ctx, tx, userID, auth.TierPro); err != nil {
				return err
			}
			return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: userID, Action: action, Status: sub.Status, Until: until})
		}
		ended := false
		if sub != nil && sub.EndNow(now) {
			if err := s.saveSubscription(tx, sub); err != nil {
				return err
			}
			ended = true
		}
		if err := s.tiers.SetTier(ctx, tx, userID, auth.TierFree); err != nil {
			return err
		}
		if !ended && p.Tier == auth.TierFree {
			return nil
		}
		if err := s.ledger.EndSubscriptionCredits(ctx, tx, userID); err != nil {
			return err
		}
		status := StatusExpired
		return s.bus.Publish(ctx, tx, SubscriptionChanged{UserID: userID, Action: ActionEnded, Status: status})
	})
	if err != nil {
		return nil, err
	}
	return s.Plan(ctx, userID)
}

// GrantCredits implements Plans.
func (s *Service) GrantCredits(ctx context.Context, userID uuid.UUID, credits int, reason string) (Balance, error) {
	var bal Balance
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if _, err := s.users.Principal(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		if bal, err = s.ledger.GrantCredits(ctx, tx, userID, credits, reason); err != nil {
			return err
		}
		return s.bus.Publish(ctx, tx, CreditsGranted{UserID: userID, Kind: KindGranted, Amount: credits})
	})
	return bal, err
}
