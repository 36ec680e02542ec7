package billing

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
)

// BalanceDTO is /credits/balance.
type BalanceDTO struct {
	Kickstart    int `json:"kickstart"`
	Daily        int `json:"daily"`
	Subscription int `json:"subscription"`
	Purchased    int `json:"purchased"`
	Granted      int `json:"granted" doc:"Credits an operator gave (never expiring)"`
	Total        int `json:"total"`
}

func toBalanceDTO(b Balance) BalanceDTO {
	return BalanceDTO{Kickstart: b.Kickstart, Daily: b.Daily, Subscription: b.Subscription, Purchased: b.Purchased,
		Granted: b.Granted, Total: b.Total()}
}

// HistoryDTO is one row of /credits/history.
type HistoryDTO struct {
	ID           uuid.UUID `json:"id" format:"uuid"`
	UserID       uuid.UUID `json:"user_id" format:"uuid"`
	Type         string    `json:"type" enum:"grant,deduct"`
	Category     string    `json:"category" enum:"daily,subscription,purchase,ai,kickstart"`
	Amount       int       `json:"amount" doc:"Credits moved (always positive; type says the direction)"`
	BalanceAfter int       `json:"balance_after"`
	Description  string    `json:"description"`
	CreatedAt    time.Time `json:"created_at"`
}

// category names a kind as the API does. The client knows five
// categories: credits an operator granted are shown as a bonus, as the
// welcome credits are (their description says "granted: …").
func category(kind string) string {
	switch kind {
	case KindPurchased:
		return "purchase"
	case KindGranted:
		return KindKickstart
	}
	return kind
}

func toHistoryDTO(e *Entry) HistoryDTO {
	out := HistoryDTO{ID: e.ID, UserID: e.UserID, Type: "grant", Category: category(e.Kind), Amount: e.Amount,
		BalanceAfter: e.BalanceAfter, Description: e.Description, CreatedAt: e.CreatedAt.UTC()}
	switch e.Entry {
	case EntrySpend, EntryHold, EntryReleased:
		// A hold is a charge until it is settled (a spend) or released (a
		// release row, a grant, gives it back).
		out.Type, out.Category, out.Amount = "deduct", "ai", -e.Amount
	case EntryExpire:
		out.Type, out.Amount = "deduct", -e.Amount
	}
	return out
}

// AICreditsDTO is /ai/credits.
type AICreditsDTO struct {
	Balance struct {
		DailyFree    int `json:"daily_free"`
		Subscription int `json:"subscription"`
		Purchased    int `json:"purchased"`
		Kickstart    int `json:"kickstart"`
		Granted      int `json:"granted" doc:"Credits an operator gave (never expiring)"`
		Total        int `json:"total"`
	} `json:"balance"`
	DailyResetAt time.Time `json:"daily_reset_at"`
	Tier         string    `json:"tier" enum:"free,pro"`
}

// FeaturesDTO are what the caller's tier allows.
type FeaturesDTO struct {
	MaxSubtasks          int  `json:"max_subtasks"`
	MaxDescriptionLength int  `json:"max_description_length"`
	VoiceNotes           bool `json:"voice_notes"`
	MonthlyCredits       int  `json:"monthly_credits"`
}

// SubscriptionDTO is /subscription.
type SubscriptionDTO struct {
	Tier              string      `json:"tier" enum:"free,pro"`
	Status            *string     `json:"status" enum:"active,past_due,grace,cancelled,expired" nullable:"true"`
	CurrentPeriodEnd  *time.Time  `json:"current_period_end" nullable:"true"`
	CancelAtPeriodEnd bool        `json:"cancel_at_period_end"`
	Features          FeaturesDTO `json:"features"`
}

func toSubscriptionDTO(v *View) SubscriptionDTO {
	f := v.Features
	out := SubscriptionDTO{Tier: v.Tier, Features: FeaturesDTO{MaxSubtasks: f.MaxSubtasks,
		MaxDescriptionLength: f.MaxDescriptionLength, VoiceNotes: f.VoiceNotes, MonthlyCredits: f.MonthlyCredits}}
	if v.Sub != nil {
		status := v.Sub.Status
		out.Status, out.CurrentPeriodEnd, out.CancelAtPeriodEnd = &status, httpx.UTCPtr(v.Sub.CurrentPeriodEnd), v.Sub.CancelAtPeriodEnd
	}
	return out
}

// UpgradeDTO is the subscription with the payment page to go to.
type UpgradeDTO struct {
	SubscriptionDTO
	CheckoutURL string    `json:"checkout_url"`
	SessionID   uuid.UUID `json:"session_id" format:"uuid"`
}

// CancelDTO is the answer of a cancellation.
type CancelDTO struct {
	Status      string     `json:"status"`
	AccessUntil *time.Time `json:"access_until" nullable:"true"`
}

// PurchaseDTO is the answer of buying credits (both the web client's names
// and the original backend's).
type PurchaseDTO struct {
	Success          bool    `json:"success" doc:"false while the payment is pending (follow checkout_url)"`
	CreditsPurchased int     `json:"credits_purchased"`
	NewBalance       int     `json:"new_balance"`
	CreditsAdded     int     `json:"credits_added"`
	TotalCredits     int     `json:"total_credits"`
	MonthlyPurchased int     `json:"monthly_purchased" doc:"Credits the month's payments granted"`
	MonthlyRemaining int     `json:"monthly_remaining" doc:"Credits that can still be bought this month: the limit less what was granted and what payment pages still open would grant"`
	CheckoutURL      *string `json:"checkout_url" nullable:"true"`
}

type historyInput struct {
	Offset int    `query:"offset" minimum:"0" maximum:"1000000" default:"0" doc:"Items to skip"`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Items per page (1-100)"`
	Cursor string `query:"cursor" maxLength:"300" doc:"pagination.next_cursor of the previous page: the page after it, at the same cost however deep; offset then counts from it"`
}

// Paging implements httpx.Paging (the history's default page is 50).
func (in *historyInput) Paging() httpx.Page {
	return httpx.Page{Offset: in.Offset, Limit: in.Limit, Cursor: in.Cursor}
}

type purchaseInput struct {
	Body struct {
		Amount int `json:"amount" minimum:"1" maximum:"500" doc:"Credits to buy"`
	} `nameHint:"CreditPurchase"`
}

type emptyInput struct {
	Body *httpx.EmptyBody
}

type webhookInput struct {
	Signature string `header:"Cko-Signature" maxLength:"256" doc:"Hex HMAC-SHA256 of the raw body with the webhook secret"`
	RawBody   []byte
}

type received struct {
	Received bool `json:"received"`
}

type handlers struct {
	svc    *Service
	ledger *Ledger
}

func newHandlers(svc *Service, l *Ledger) *handlers { return &handlers{svc: svc, ledger: l} }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/credits/balance", "credits-balance",
		"The caller's AI credits by kind", "Credits"), httpx.Handle(auth.Caller, h.balance, toBalanceDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/credits/history", "credits-history",
		"Every grant, spend and expiry of the caller's credits, newest first", "Credits"), httpx.HandleList(auth.Caller, h.history, toHistoryDTO))
	huma.Register(api, httpx.WithRateLimit(httpx.Route(http.MethodGet, "/api/v1/ai/credits", "ai-credits",
		"The caller's AI credits, when the day's reset, and the tier", "AI"), httpx.RateAI), httpx.Handle(auth.Caller, h.aiCredits, httpx.Same))

	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/subscription", "subscription-get",
		"The caller's tier, subscription and features", "Subscription"), httpx.Handle(auth.Caller, h.subscription, toSubscriptionDTO))
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/subscription/upgrade", "subscription-upgrade",
		"Open a payment page for Pro (the payment's webhook makes the user Pro)", "Subscription"), httpx.Handle(auth.Caller, h.upgrade, httpx.Same))
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/subscription/cancel", "subscription-cancel",
		"Cancel Pro at the end of the paid period", "Subscription"), httpx.Handle(auth.Caller, h.cancel, toCancelDTO))
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/subscription/purchase-credits", "subscription-purchase-credits",
		"Buy AI credits (Pro, up to the monthly limit)", "Subscription"), httpx.Handle(auth.Caller, h.purchase, toPurchaseDTO))

	hook := httpx.WithRateLimit(httpx.Public(httpx.Route(http.MethodPost, "/api/v1/webhooks/checkout", "webhooks-checkout",
		"Checkout.com events (signed with Cko-Signature)", "Webhooks")), httpx.RateNone)
	huma.Register(api, hook, h.webhook)
}

func (h *handlers) webhook(ctx context.Context, in *webhookInput) (*httpx.DataOutput[received], error) {
	if err := h.svc.HandleWebhook(ctx, in.RawBody, in.Signature); err != nil {
		return nil, err
	}
	return httpx.Reply(received{Received: true}), nil
}

func (h *handlers) balance(ctx context.Context, p auth.Principal, _ *struct{}) (Balance, error) {
	return h.ledger.CurrentBalance(ctx, p.UserID)
}

func (h *handlers) aiCredits(ctx context.Context, p auth.Principal, _ *struct{}) (AICreditsDTO, error) {
	var out AICreditsDTO
	b, err := h.ledger.CurrentBalance(ctx, p.UserID)
	if err != nil {
		return out, err
	}
	out.Balance.DailyFree, out.Balance.Subscription, out.Balance.Purchased = b.Daily, b.Subscription, b.Purchased
	out.Balance.Kickstart, out.Balance.Granted, out.Balance.Total = b.Kickstart, b.Granted, b.Total()
	out.DailyResetAt, out.Tier = h.ledger.NextDailyReset(), p.Tier
	return out, nil
}

func (h *handlers) subscription(ctx context.Context, p auth.Principal, _ *struct{}) (*View, error) {
	return h.svc.Subscription(ctx, p)
}

func (h *handlers) upgrade(ctx context.Context, p auth.Principal, _ *emptyInput) (UpgradeDTO, error) {
	v, c, err := h.svc.Upgrade(ctx, p)
	if err != nil {
		return UpgradeDTO{}, err
	}
	return UpgradeDTO{SubscriptionDTO: toSubscriptionDTO(v), CheckoutURL: c.URL, SessionID: c.SessionID}, nil
}

func (h *handlers) cancel(ctx context.Context, p auth.Principal, _ *emptyInput) (*Subscription, error) {
	return h.svc.Cancel(ctx, p)
}

func toCancelDTO(sub *Subscription) CancelDTO {
	return CancelDTO{Status: sub.Status, AccessUntil: httpx.UTCPtr(sub.CurrentPeriodEnd)}
}

func (h *handlers) purchase(ctx context.Context, p auth.Principal, in *purchaseInput) (*Purchase, error) {
	return h.svc.PurchaseCredits(ctx, p, in.Body.Amount)
}

func toPurchaseDTO(pu *Purchase) PurchaseDTO {
	out := PurchaseDTO{Success: pu.Granted, NewBalance: pu.Balance.Total(), TotalCredits: pu.Balance.Total(),
		MonthlyPurchased: pu.MonthlyPurchased, MonthlyRemaining: max(pu.MonthlyLimit-pu.MonthlyPurchased-pu.MonthlyOpen, 0)}
	if pu.Granted {
		out.CreditsPurchased, out.CreditsAdded = pu.Credits, pu.Credits
	}
	if pu.Checkout != nil {
		out.CheckoutURL = &pu.Checkout.URL
	}
	return out
}

func (h *handlers) history(ctx context.Context, p auth.Principal, in *historyInput) (database.Paged[Entry], error) {
	return h.ledger.History(ctx, p.UserID, in.Paging().Window())
}
