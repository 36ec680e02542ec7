package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// holdsAndPaymentSessions lets the credit ledger hold credits for a request
// under way (rows with a hold id; open holds found by when they lapse),
// gives the payment sessions we open a state and an expiry (open sessions
// count against the monthly purchase limit), and lets webhook event ids be
// as long as the contract allows (200 characters).
var holdsAndPaymentSessions = &gormigrate.Migration{
	ID: "202612061000_holds_and_payment_sessions",
	Migrate: func(tx *gorm.DB) error {
		type creditEntry struct {
			HoldID *uuid.UUID `gorm:"type:uuid"`
		}
		type paymentSession struct {
			State     string     `gorm:"type:varchar(20);not null;default:'open'"`
			ExpiresAt *time.Time ``
			UpdatedAt *time.Time ``
		}
		if err := tx.Table("credit_ledger").AutoMigrate(&creditEntry{}); err != nil {
			return err
		}
		if err := tx.Table("payment_sessions").AutoMigrate(&paymentSession{}); err != nil {
			return err
		}
		stmts := []string{
			`CREATE INDEX idx_credit_ledger_hold ON credit_ledger (user_id, hold_id) WHERE hold_id IS NOT NULL`,
			`CREATE INDEX idx_credit_ledger_open_holds ON credit_ledger (expires_at) WHERE entry = 'hold'`,
			// Pages opened before sessions had an expiry no longer count
			// against the limit (a payment on one is still granted).
			`UPDATE payment_sessions SET expires_at = created_at, updated_at = created_at WHERE expires_at IS NULL`,
			`CREATE INDEX idx_payment_sessions_open ON payment_sessions (user_id, expires_at) WHERE state = 'open'`,
		}
		if tx.Dialector.Name() == "postgres" {
			stmts = append(stmts, `ALTER TABLE webhook_events ALTER COLUMN id TYPE varchar(200)`)
		}
		return execAll(tx, stmts)
	},
	Rollback: func(tx *gorm.DB) error {
		stmts := []string{
			`DROP INDEX idx_payment_sessions_open`,
			`DROP INDEX idx_credit_ledger_open_holds`,
			`DROP INDEX idx_credit_ledger_hold`,
		}
		if err := execAll(tx, stmts); err != nil {
			return err
		}
		for table, cols := range map[string][]string{"credit_ledger": {"hold_id"}, "payment_sessions": {"state", "expires_at", "updated_at"}} {
			for _, c := range cols {
				if err := tx.Migrator().DropColumn(table, c); err != nil {
					return err
				}
			}
		}
		return nil
	},
}
