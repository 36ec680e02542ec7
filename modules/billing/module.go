// Package billing owns money and what it buys: the AI-credit ledger (daily,
// subscription, purchased and kickstart credits, every movement a row),
// Pro subscriptions paid through Checkout.com's hosted payments, and the
// provider's webhooks, the only thing that makes a user Pro.
package billing

import (
	"net/url"
	"strings"
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the billing module.
var Module = platform.Module{
	Name: "billing",
	Option: fx.Module("billing",
		userdata.Contribute(userParts()...),
		fx.Provide(
			newConfig,
			newLedger,
			newCheckout,
			newService,
			func(l *Ledger) Credits { return l },
			func(s *Service) Plans { return s },
			platform.AsRoutes(newHandlers),
			changes.AsEntity(subscriptionEntity),
			changes.AsEntity(creditsEntity),
			platform.AsModels(models),
			events.AsSubscriber(grantKickstart),
			events.AsSubscriber(endClosedSubscriptions),
			jobs.AsWorker(newProviderCancelWorker),
			jobs.AsHousekeeping(creditExpireJob),
			jobs.AsHousekeeping(subscriptionCheckJob),
			jobs.AsHousekeeping(creditHoldReleaseJob),
		),
	),
}

// TierLimits are the credit rules of one tier (limits.<tier>).
type TierLimits struct {
	DailyAICredits        int  `mapstructure:"daily_ai_credits"`
	MonthlyCredits        int  `mapstructure:"monthly_credits"`
	MonthlyCreditPurchase int  `mapstructure:"monthly_credit_purchase"`
	MaxSubtasks           int  `mapstructure:"max_subtasks"`
	MaxDescriptionLength  int  `mapstructure:"max_description_length"`
	VoiceNotes            bool `mapstructure:"voice_notes"`
}

// CheckoutConfig is how to reach Checkout.com.
type CheckoutConfig struct {
	APIURL        string        `mapstructure:"api_url"`
	SecretKey     string        `mapstructure:"secret_key"`
	WebhookSecret string        `mapstructure:"webhook_secret"`
	Timeout       time.Duration `mapstructure:"timeout"`
	Country       string        `mapstructure:"country"`
	// Return pages by purpose (a path is taken on frontend_url).
	SubscriptionSuccessURL string `mapstructure:"subscription_success_url"`
	SubscriptionFailureURL string `mapstructure:"subscription_failure_url"`
	CreditsSuccessURL      string `mapstructure:"credits_success_url"`
	CreditsFailureURL      string `mapstructure:"credits_failure_url"`
	// SessionTTL is how long a page counts as open when the provider does
	// not say.
	SessionTTL time.Duration `mapstructure:"session_ttl"`
}

// returnURLs are where a payment page of purpose sends the user back, on
// success and on failure or cancellation.
func (c CheckoutConfig) returnURLs(purpose string) (success, failure string) {
	if purpose == PurposeCredits {
		return c.CreditsSuccessURL, c.CreditsFailureURL
	}
	return c.SubscriptionSuccessURL, c.SubscriptionFailureURL
}

// Config is the billing section and the tiers' credit rules.
type Config struct {
	KickstartCredits          int            `mapstructure:"kickstart_credits"`
	SubscriptionCarryOver     int            `mapstructure:"subscription_carry_over"`
	SubscriptionPriceCents    int            `mapstructure:"subscription_price_cents"`
	CreditPriceCents          int            `mapstructure:"credit_price_cents"`
	Currency                  string         `mapstructure:"currency"`
	GracePeriod               time.Duration  `mapstructure:"grace_period"`
	MaxPaymentFailures        int            `mapstructure:"max_payment_failures"`
	SubscriptionCheckInterval time.Duration  `mapstructure:"subscription_check_interval"`
	HoldReleaseInterval       time.Duration  `mapstructure:"hold_release_interval"`
	HistoryPageSize           int            `mapstructure:"history_page_size"`
	Checkout                  CheckoutConfig `mapstructure:"checkout"`

	Tiers      config.Tiered[TierLimits] `mapstructure:"-"`
	Production bool                      `mapstructure:"-"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.KickstartCredits < 0:
		return config.Invalid("kickstart_credits", "must not be negative")
	case c.SubscriptionCarryOver < 0:
		return config.Invalid("subscription_carry_over", "must not be negative")
	case c.SubscriptionPriceCents < 1:
		return config.Invalid("subscription_price_cents", "must be positive")
	case c.CreditPriceCents < 1:
		return config.Invalid("credit_price_cents", "must be positive")
	case len(c.Currency) != 3:
		return config.Invalid("currency", "must be an ISO 4217 code such as USD")
	case c.GracePeriod <= 0:
		return config.Invalid("grace_period", "must be positive")
	case c.MaxPaymentFailures < 1:
		return config.Invalid("max_payment_failures", "must be at least 1")
	case c.SubscriptionCheckInterval <= 0:
		return config.Invalid("subscription_check_interval", "must be positive")
	case c.HoldReleaseInterval <= 0:
		return config.Invalid("hold_release_interval", "must be positive")
	case c.HistoryPageSize < 1 || c.HistoryPageSize > 100:
		return config.Invalid("history_page_size", "must be 1-100")
	case c.Checkout.Timeout <= 0:
		return config.Invalid("checkout.timeout", "must be positive")
	case c.Checkout.SessionTTL < time.Minute:
		return config.Invalid("checkout.session_ttl", "must be at least 1m")
	}
	if !httpURL(c.Checkout.APIURL) {
		return config.Invalid("checkout.api_url", "must be an http(s) URL, got %q", c.Checkout.APIURL)
	}
	for key, raw := range map[string]string{
		"checkout.subscription_success_url": c.Checkout.SubscriptionSuccessURL,
		"checkout.subscription_failure_url": c.Checkout.SubscriptionFailureURL,
		"checkout.credits_success_url":      c.Checkout.CreditsSuccessURL,
		"checkout.credits_failure_url":      c.Checkout.CreditsFailureURL} {
		if !strings.HasPrefix(raw, "/") && !httpURL(raw) {
			return config.Invalid(key, "must be a path of frontend_url (/pricing) or an http(s) URL, got %q", raw)
		}
	}
	return nil
}

// httpURL reports whether raw is an absolute http(s) URL.
func httpURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	if err := cfg.Section("billing", &c); err != nil {
		return c, err
	}
	// Return pages given as paths are the web client's routes.
	for _, u := range []*string{&c.Checkout.SubscriptionSuccessURL, &c.Checkout.SubscriptionFailureURL,
		&c.Checkout.CreditsSuccessURL, &c.Checkout.CreditsFailureURL} {
		if strings.HasPrefix(*u, "/") {
			*u = strings.TrimRight(cfg.FrontendURL, "/") + *u
		}
	}
	var err error
	c.Tiers, err = config.LoadTiered[TierLimits](cfg, "limits", auth.TierFree)
	c.Production = cfg.IsProduction()
	return c, err
}

func models() platform.Models {
	return platform.Models{Module: "billing", List: []any{&Entry{}, &Subscription{}, &PaymentSession{}, &WebhookEvent{}}}
}
