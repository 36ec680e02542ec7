package notifications

import (
	"time"

	"github.com/google/uuid"
)

// Notification types.
const (
	TypeReminder     = "reminder"
	TypeAchievement  = "achievement"
	TypeSubscription = "subscription"
	TypeSystem       = "system"
)

// Notification is one in-app notification.
type Notification struct {
	ID         uuid.UUID  `gorm:"type:uuid;primaryKey"`
	UserID     uuid.UUID  `gorm:"type:uuid;not null"`
	Type       string     `gorm:"not null"`
	Title      string     `gorm:"not null"`
	Message    string     `gorm:"not null"`
	Read       bool       `gorm:"not null"`
	TaskID     *uuid.UUID `gorm:"type:uuid"`
	ReminderID *uuid.UUID `gorm:"type:uuid"` // unique: one notification per fired reminder
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName implements gorm's Tabler.
func (Notification) TableName() string { return "notifications" }

// PushSubscription is a browser's WebPush subscription.
type PushSubscription struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;not null"`
	Endpoint  string    `gorm:"not null"`
	P256dhKey string    `gorm:"column:p256dh_key;not null"`
	AuthKey   string    `gorm:"not null"`
	Active    bool      `gorm:"not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (PushSubscription) TableName() string { return "push_subscriptions" }

// ReminderDelivery is the pending delivery job of a reminder.
type ReminderDelivery struct {
	ReminderID  uuid.UUID `gorm:"type:uuid;primaryKey"`
	TaskID      uuid.UUID `gorm:"type:uuid;not null"`
	JobID       int64     `gorm:"not null"`
	ScheduledAt time.Time `gorm:"not null"`
	CreatedAt   time.Time
}

// TableName implements gorm's Tabler.
func (ReminderDelivery) TableName() string { return "reminder_deliveries" }
