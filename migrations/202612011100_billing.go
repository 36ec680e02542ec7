package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// billingTables adds the AI-credit ledger (a row per grant, spend, expiry
// and carry-over; a grant made once per key), subscriptions, the payment
// sessions we open with Checkout.com, and the webhook events processed.
var billingTables = &gormigrate.Migration{
	ID: "202612011100_billing",
	Migrate: func(tx *gorm.DB) error {
		type creditEntry struct {
			ID           uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID       uuid.UUID  `gorm:"type:uuid;not null;index:idx_credit_ledger_user_created,priority:1;uniqueIndex:idx_credit_ledger_once,priority:1"`
			Kind         string     `gorm:"type:varchar(20);not null"`
			Entry        string     `gorm:"type:varchar(20);not null"`
			Amount       int        `gorm:"not null"`
			Remaining    int        `gorm:"not null;default:0"`
			BalanceAfter int        `gorm:"not null"`
			Description  string     `gorm:"type:varchar(200);not null;default:''"`
			OnceKey      *string    `gorm:"type:varchar(100);uniqueIndex:idx_credit_ledger_once,priority:2"`
			ExpiresAt    *time.Time `gorm:"index:idx_credit_ledger_expiry"`
			CreatedAt    time.Time  `gorm:"not null;index:idx_credit_ledger_user_created,priority:2"`
		}
		type subscription struct {
			UserID             uuid.UUID  `gorm:"type:uuid;primaryKey"`
			Status             string     `gorm:"type:varchar(20);not null"`
			CurrentPeriodStart *time.Time ``
			CurrentPeriodEnd   *time.Time `gorm:"index:idx_subscriptions_period_end"`
			CancelAtPeriodEnd  bool       `gorm:"not null;default:false"`
			PaymentFailures    int        `gorm:"not null;default:0"`
			GraceUntil         *time.Time `gorm:"index:idx_subscriptions_grace"`
			Version            int        `gorm:"not null;default:1"`
			CreatedAt          time.Time  `gorm:"not null"`
			UpdatedAt          time.Time  `gorm:"not null"`
		}
		type paymentSession struct {
			ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID     uuid.UUID `gorm:"type:uuid;not null;index:idx_payment_sessions_user"`
			Purpose    string    `gorm:"type:varchar(20);not null"`
			Credits    int       `gorm:"not null;default:0"`
			Amount     int       `gorm:"not null"`
			Currency   string    `gorm:"type:varchar(3);not null"`
			ProviderID string    `gorm:"type:varchar(100);not null;default:''"`
			CreatedAt  time.Time `gorm:"not null"`
		}
		type webhookEvent struct {
			ID         string    `gorm:"type:varchar(100);primaryKey"`
			Type       string    `gorm:"type:varchar(60);not null"`
			ReceivedAt time.Time `gorm:"not null"`
		}
		for table, model := range map[string]any{"credit_ledger": &creditEntry{}, "subscriptions": &subscription{},
			"payment_sessions": &paymentSession{}, "webhook_events": &webhookEvent{}} {
			if err := tx.Table(table).AutoMigrate(model); err != nil {
				return err
			}
		}
		return nil
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("webhook_events", "payment_sessions", "subscriptions", "credit_ledger")
	},
}
