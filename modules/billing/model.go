package billing

import (
	"time"

	"github.com/google/uuid"
)

// Credit kinds, in spending order.
const (
	KindDaily        = "daily"
	KindSubscription = "subscription"
	KindPurchased    = "purchased"
	KindKickstart    = "kickstart"
)

// spendOrder is the order kinds are spent in.
var spendOrder = []string{KindDaily, KindSubscription, KindPurchased, KindKickstart}

// Ledger entry types.
const (
	EntryGrant     = "grant"
	EntrySpend     = "spend"
	EntryExpire    = "expire"
	EntryCarryOver = "carry_over"
)

// Entry is one movement of credits. A grant (or carry-over) adds Amount to
// its kind and keeps what is left of it in Remaining (spent oldest first,
// expired at ExpiresAt); a spend or an expiry takes Amount (negative) from
// one kind. BalanceAfter is the user's total after the row. The sum of a
// kind's amounts is its balance, and so is the sum of its grants'
// Remaining.
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
	Version            int `gorm:"not null"`
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// TableName implements gorm's Tabler.
func (Subscription) TableName() string { return "subscriptions" }

// Payment purposes.
const (
	PurposeSubscription = "subscription"
	PurposeCredits      = "credits"
)

// PaymentSession is a hosted payment we opened with the provider; its id
// is the payment's reference.
type PaymentSession struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID     uuid.UUID `gorm:"type:uuid;not null"`
	Purpose    string    `gorm:"not null"`
	Credits    int       `gorm:"not null"`
	Amount     int       `gorm:"not null"`
	Currency   string    `gorm:"not null"`
	ProviderID string    `gorm:"not null"`
	CreatedAt  time.Time
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
