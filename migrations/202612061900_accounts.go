package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// accounts adds users' data exports (one pending at a time per user), the
// record kept of deleted accounts, and the stored card a subscription is
// renewed with (deleted at the provider when the account is).
var accounts = &gormigrate.Migration{
	ID: "202612061900_accounts",
	Migrate: func(tx *gorm.DB) error {
		type accountExport struct {
			ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
			UserID        uuid.UUID `gorm:"type:uuid;not null;index:idx_account_exports_user"`
			State         string    `gorm:"type:varchar(16);not null"`
			Rows          int64     `gorm:"not null;default:0"`
			Bytes         int64     `gorm:"not null;default:0"`
			Error         string    `gorm:"type:text"`
			DownloadToken string    `gorm:"type:varchar(64)"`
			DownloadUntil *time.Time
			ReadyAt       *time.Time
			ExpiresAt     *time.Time `gorm:"index:idx_account_exports_expires"`
			CreatedAt     time.Time  `gorm:"not null"`
			UpdatedAt     time.Time  `gorm:"not null"`
		}
		type deletedAccount struct {
			UserID    uuid.UUID `gorm:"type:uuid;primaryKey"`
			EmailHash string    `gorm:"type:varchar(64);not null;index:idx_deleted_accounts_email_hash"`
			Tier      string    `gorm:"type:varchar(16);not null"`
			DeletedAt time.Time `gorm:"not null"`
			ErasedAt  *time.Time
			Kept      string `gorm:"type:text;not null"`
			Erased    string `gorm:"type:text;not null"`
		}
		if err := tx.Table("account_exports").AutoMigrate(&accountExport{}); err != nil {
			return err
		}
		// One export under way per user: a second request is refused.
		if err := tx.Exec(`CREATE UNIQUE INDEX idx_account_exports_one_pending ON account_exports (user_id)
			WHERE state = 'pending'`).Error; err != nil {
			return err
		}
		if err := tx.Table("deleted_accounts").AutoMigrate(&deletedAccount{}); err != nil {
			return err
		}
		return tx.Exec(`ALTER TABLE subscriptions ADD COLUMN provider_source varchar(200)`).Error
	},
	Rollback: func(tx *gorm.DB) error {
		if err := tx.Migrator().DropColumn("subscriptions", "provider_source"); err != nil {
			return err
		}
		return tx.Migrator().DropTable("account_exports", "deleted_accounts")
	},
}
