package auth

import (
	"time"

	"github.com/google/uuid"
)

// User is a person who signed in with Google.
type User struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	GoogleID  string    `gorm:"not null"`
	Email     string    `gorm:"not null"`
	Name      string    `gorm:"not null"`
	AvatarURL *string
	Timezone  string `gorm:"not null"`
	Tier      string `gorm:"not null"`
	Version   int    `gorm:"not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (User) TableName() string { return "users" }

// Session is one sign-in: the family of refresh tokens that rotate from it.
// Revoking it (logout, token reuse) ends every token of the family, and the
// access tokens that name it.
type Session struct {
	ID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID       uuid.UUID `gorm:"type:uuid;not null"`
	CreatedAt    time.Time
	LastUsedAt   time.Time
	RevokedAt    *time.Time
	RevokeReason string
}

// TableName implements gorm's Tabler.
func (Session) TableName() string { return "auth_sessions" }

// RefreshToken is one opaque refresh token, stored as a SHA-256 hash.
type RefreshToken struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	SessionID uuid.UUID `gorm:"type:uuid;not null"`
	UserID    uuid.UUID `gorm:"type:uuid;not null"`
	TokenHash string    `gorm:"not null"`
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// TableName implements gorm's Tabler.
func (RefreshToken) TableName() string { return "refresh_tokens" }

// Revoke reasons.
const (
	revokedLogout = "logout"
	revokedReuse  = "reuse"
	// revokedOperator: perpetua users revoke-sessions.
	revokedOperator = "operator"
)
