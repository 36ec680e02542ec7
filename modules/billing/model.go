package billing

import (
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/database"
)

// Credit kinds, in spending order.
const (
	KindDaily        = "daily"
	KindSubscription = "subscription"
	KindPurchased    = "purchased"
	KindKickstart    = "kickstart"
	// KindGranted: credits an operator gave (perpetua users grant-credits),
	// never expiring; spent before what the user paid for.
	KindGranted = "granted"
)

// spendOrder is the order kinds are spent in.
var spendOrder = []string{KindDaily, KindSubscription, KindGranted, KindPurchased, KindKickstart}

// Ledger entry types.
const (
	EntryGrant     = "grant"
	EntrySpend     = "spend"
	EntryExpire    = "expire"
	EntryCarryOver = "carry_over"
	// EntryHold takes credits aside for a request under way; settled, the
	// row becomes a spend; released, it becomes EntryReleased and an
	// EntryRelease row gives the credits back.
	EntryHold     = "hold"
	EntryReleased = "released"
	EntryRelease  = "release"
)

// maxCredits bounds every amount the ledger writes, so that no sum of a
// user's rows can come near overflowing.
const maxCredits = 1_000_000

// Entry is one movement of credits. A grant, carry-over or release adds
// Amount to its kind and keeps what is left of it in Remaining (spent
// oldest first, expired at ExpiresAt); a spend, hold or expiry takes Amount
// (negative) from one kind. BalanceAfter is the user's total after the
// row. The sum of a kind's amounts is its balance, and so is the sum of its
// rows' Remaining. A hold's rows carry its HoldID, and ExpiresAt is when an
// open hold lapses (credit_hold_release gives it back).
type Entry struct {
	ID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID       uuid.UUID `gorm:"type:uuid;not null"`
	Kind         string    `gorm:"not null"`
	Entry        string    `gorm:"not null"`
	Amount       int       `gorm:"not null"`
	Remaining    int       `gorm:"not null"`
	BalanceAfter int       `gorm:"not null"`
	Description  string    `gorm:"not null"`
	// OnceKey makes a grant happen once per user (daily:2026-11-30,
	// kickstart, payment:pay_123): a unique index, not a check.
	OnceKey   *string
	HoldID    *uuid.UUID `gorm:"type:uuid"`
	ExpiresAt *time.Time
	CreatedAt time.Time
}

// TableName implements gorm's Tabler.
func (Entry) TableName() string { return "credit_ledger" }

// Subscription statuses.
const (
	StatusActive    = "active"
	StatusPastDue   = "past_due"
	StatusGrace     = "grace"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
)

// Subscription is a user's Pro subscription.
type Subscription struct {
	UserID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	Status             string    `gorm:"not null"`
	CurrentPeriodStart *time.Time
	CurrentPeriodEnd   *time.Time
	CancelAtPeriodEnd  bool `gorm:"not null"`
	PaymentFailures    int  `gorm:"not null"`
	GraceUntil         *time.Time
	// ProviderSource is the stored card the provider renews the
	// subscription with (data.source.id of the paying event): deleting it
	// at the provider stops the renewals.
	ProviderSource *string
	Version        int `gorm:"not null"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TableName implements gorm's Tabler.
func (Subscription) TableName() string { return "subscriptions" }

// Versioned implements database.VersionedRow.
func (sub *Subscription) Versioned() database.Versioned {
	return database.Versioned{Version: &sub.Version, UpdatedAt: &sub.UpdatedAt}
}

// The methods below are a subscription's transitions, decided without a
// database: the service locks the row, calls one, saves it and publishes
// what changed.

// PeriodPaid starts a paid month at now: active until a month later,
// failures and any grace forgotten, a cancellation withdrawn.
func (sub *Subscription) PeriodPaid(now time.Time) {
	end := now.AddDate(0, 1, 0)
	sub.Status, sub.CurrentPeriodStart, sub.CurrentPeriodEnd = StatusActive, &now, &end
	sub.CancelAtPeriodEnd, sub.PaymentFailures, sub.GraceUntil = false, 0, nil
}

// PaymentDeclined counts a failed payment at now: past due, and at the
// maxFailures-th failure in a row the grace period (Pro until now+grace)
// begins. It changes nothing, and reports false, for a subscription in
// grace or expired already.
func (sub *Subscription) PaymentDeclined(now time.Time, maxFailures int, grace time.Duration) (changed bool) {
	if sub.Status == StatusGrace || sub.Status == StatusExpired {
		return false
	}
	sub.PaymentFailures++
	sub.Status = StatusPastDue
	if sub.PaymentFailures >= maxFailures {
		until := now.Add(grace)
		sub.Status, sub.GraceUntil = StatusGrace, &until
	}
	return true
}

// Cancel ends the subscription at the end of its paid period (Pro until
// then). It reports false when it was cancelled already.
func (sub *Subscription) Cancel() (changed bool) {
	if sub.CancelAtPeriodEnd {
		return false
	}
	sub.CancelAtPeriodEnd, sub.Status = true, StatusCancelled
	return true
}

// Lapsed reports whether Pro access is over at now: the grace period or
// the paid period has ended.
func (sub *Subscription) Lapsed(now time.Time) bool {
	switch sub.Status {
	case StatusGrace:
		return sub.GraceUntil != nil && !sub.GraceUntil.After(now)
	case StatusActive, StatusPastDue, StatusCancelled:
		return sub.CurrentPeriodEnd != nil && !sub.CurrentPeriodEnd.After(now)
	}
	return false
}

// Granted puts the user on Pro from now by an operator's decision, until
// a time (then it lapses as a cancelled one would) or with no end; a
// payment later makes it a paid one (PeriodPaid).
func (sub *Subscription) Granted(now time.Time, until *time.Time) {
	sub.Status, sub.CurrentPeriodStart, sub.CurrentPeriodEnd = StatusActive, &now, until
	sub.CancelAtPeriodEnd, sub.PaymentFailures, sub.GraceUntil = until != nil, 0, nil
}

// EndNow ends Pro access at once (an operator's decision): expired, the
// period closed at now. It reports false when it had ended already.
func (sub *Subscription) EndNow(now time.Time) (changed bool) {
	if sub.Status == StatusExpired {
		return false
	}
	sub.Status, sub.GraceUntil = StatusExpired, nil
	if sub.CurrentPeriodEnd == nil || sub.CurrentPeriodEnd.After(now) {
		sub.CurrentPeriodEnd = &now
	}
	return true
}

// End closes a lapsed subscription: expired, or cancelled if it was.
func (sub *Subscription) End() {
	if sub.Status != StatusCancelled {
		sub.Status = StatusExpired
	}
}

// Payment purposes.
const (
	PurposeSubscription = "subscription"
	PurposeCredits      = "credits"
)

// Payment session states. An open session past its ExpiresAt is expired:
// it no longer counts against the monthly purchase limit.
const (
	SessionOpen     = "open"
	SessionPaid     = "paid"
	SessionDeclined = "declined"
	// SessionFailed: the provider did not open the page.
	SessionFailed = "failed"
)

// PaymentSession is a hosted payment we opened with the provider; its id
// is the payment's reference, and what a payment grants comes from it.
type PaymentSession struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID     uuid.UUID `gorm:"type:uuid;not null"`
	Purpose    string    `gorm:"not null"`
	Credits    int       `gorm:"not null"`
	Amount     int       `gorm:"not null"`
	Currency   string    `gorm:"not null"`
	ProviderID string    `gorm:"not null"`
	State      string    `gorm:"not null"`
	ExpiresAt  time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName implements gorm's Tabler.
func (PaymentSession) TableName() string { return "payment_sessions" }

// WebhookEvent is a provider event processed (once).
type WebhookEvent struct {
	ID         string    `gorm:"primaryKey"`
	Type       string    `gorm:"not null"`
	ReceivedAt time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (WebhookEvent) TableName() string { return "webhook_events" }
