package migrations

import (
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// authTables creates users, sign-in sessions (one per refresh-token family)
// and hashed refresh tokens.
var authTables = &gormigrate.Migration{
	ID: "202611240002_auth",
	Migrate: func(tx *gorm.DB) error {
		type user struct {
			ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
			GoogleID  string    `gorm:"type:varchar(255);not null;uniqueIndex:idx_users_google_id"`
			Email     string    `gorm:"type:varchar(320);not null;index:idx_users_email"`
			Name      string    `gorm:"type:varchar(100);not null;default:''"`
			AvatarURL *string   `gorm:"type:text"`
			Timezone  string    `gorm:"type:varchar(64);not null;default:'UTC'"`
			Tier      string    `gorm:"type:varchar(10);not null;default:'free'"`
			Version   int       `gorm:"not null;default:1"`
			CreatedAt time.Time `gorm:"not null"`
			UpdatedAt time.Time `gorm:"not null"`
		}
		type session struct {
			ID           uuid.UUID  `gorm:"type:uuid;primaryKey"`
			UserID       uuid.UUID  `gorm:"type:uuid;not null;index:idx_auth_sessions_user_id"`
			CreatedAt    time.Time  `gorm:"not null"`
			LastUsedAt   time.Time  `gorm:"not null"`
			RevokedAt    *time.Time ``
			RevokeReason string     `gorm:"type:varchar(32);not null;default:''"`
		}
		type refreshToken struct {
			ID        uuid.UUID  `gorm:"type:uuid;primaryKey"`
			SessionID uuid.UUID  `gorm:"type:uuid;not null;index:idx_refresh_tokens_session_id"`
			UserID    uuid.UUID  `gorm:"type:uuid;not null"`
			TokenHash string     `gorm:"type:varchar(64);not null;uniqueIndex:idx_refresh_tokens_token_hash"`
			ExpiresAt time.Time  `gorm:"not null;index:idx_refresh_tokens_expires_at"`
			UsedAt    *time.Time ``
			CreatedAt time.Time  `gorm:"not null"`
		}
		if err := tx.Table("users").AutoMigrate(&user{}); err != nil {
			return err
		}
		if err := tx.Table("auth_sessions").AutoMigrate(&session{}); err != nil {
			return err
		}
		return tx.Table("refresh_tokens").AutoMigrate(&refreshToken{})
	},
	Rollback: func(tx *gorm.DB) error {
		return tx.Migrator().DropTable("refresh_tokens", "auth_sessions", "users")
	},
}
