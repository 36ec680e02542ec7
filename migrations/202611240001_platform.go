package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// platformTables creates the stores of the platform middlewares: stored
// Idempotency-Key answers and rate-limit counters.
var platformTables = &gormigrate.Migration{
	ID: "202611240001_platform",
	Migrate: func(tx *gorm.DB) error {
		type idempotencyKey struct {
			Subject        string    `gorm:"primaryKey;type:varchar(64)"`
			IdemKey        string    `gorm:"primaryKey;type:varchar(64)"`
			RequestHash    string    `gorm:"type:varchar(64);not null"`
			Method         string    `gorm:"type:varchar(10);not null"`
			Path           string    `gorm:"type:text;not null"`
			State          string    `gorm:"type:varchar(10);not null"`
			ResponseStatus int       `gorm:"not null;default:0"`
			ResponseBody   []byte    ``
			ContentType    string    `gorm:"type:varchar(100);not null;default:''"`
			CreatedAt      time.Time `gorm:"not null"`
			ExpiresAt      time.Time `gorm:"not null;index:idx_idempotency_keys_expires_at"`
		}
		type rateLimitCounter struct {
			Bucket      string    `gorm:"primaryKey;type:varchar(200)"`
			WindowStart time.Time `gorm:"primaryKey;index:idx_rate_limit_counters_window_start"`
			Hits        int64     `gorm:"not null;default:0"`
		}
		if err := tx.Table("idempotency_keys").AutoMigrate(&idempotencyKey{}); err != nil {
			return err
		}
		return tx.Table("rate_limit_counters").AutoMigrate(&rateLimitCounter{})
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("rate_limit_counters", "idempotency_keys")
	},
}
