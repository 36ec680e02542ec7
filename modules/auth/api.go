package auth

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/apperr"
)

// This file and events.go are the module's public face.

// Tiers.
const (
	TierFree = "free"
	TierPro  = "pro"
)

// Principal is the signed-in caller of a request, loaded fresh from the
// database by the authentication middleware (so a tier change applies at
// once).
type Principal struct {
	UserID    uuid.UUID
	Email     string
	Tier      string
	Timezone  string
	SessionID uuid.UUID
}

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller of the request in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Caller returns the caller of an authenticated request. Operations that
// declare the bearer scheme always have one; anywhere else it is a 401.
func Caller(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, apperr.Unauthorized(apperr.CodeUnauthorized, "authentication required")
	}
	return p, nil
}

// Users looks users up for work done outside a request (jobs), in the
// caller's transaction.
type Users interface {
	Principal(ctx context.Context, tx *gorm.DB, userID uuid.UUID) (Principal, error)
	// Principals loads many users at once (users that do not exist are
	// absent from the map).
	Principals(ctx context.Context, tx *gorm.DB, userIDs []uuid.UUID) (map[uuid.UUID]Principal, error)
}

// Tiers changes users' tiers (billing: a subscription starts or ends),
// inside the caller's transaction. The user's next request sees the new
// tier: every request loads its caller afresh.
type Tiers interface {
	// SetTier puts the user on tier (free or pro); setting the tier the user
	// has already changes nothing and publishes nothing.
	SetTier(ctx context.Context, tx *gorm.DB, userID uuid.UUID, tier string) error
}

// UserInfo is what operators see of a user.
type UserInfo struct {
	ID        uuid.UUID
	Email     string
	Name      string
	Tier      string
	Timezone  string
	CreatedAt time.Time
	// ActiveSessions are the sign-ins not revoked and used within the
	// refresh tokens' life; LastSeenAt is the latest use of any session.
	ActiveSessions int
	LastSeenAt     *time.Time
}

// Accounts is the operators' view of users (perpetua users …).
type Accounts interface {
	// FindUser finds a user by id or by email (case-insensitive); 404
	// NOT_FOUND otherwise.
	FindUser(ctx context.Context, idOrEmail string) (*UserInfo, error)
	// ListUsers lists users, newest first, limit at a time after skipping
	// offset, and how many there are.
	ListUsers(ctx context.Context, limit, offset int) ([]UserInfo, int64, error)
	// RevokeSessions revokes every live session of the user at once: their
	// refresh tokens stop working, and their access tokens on every instance
	// within auth.session_cache_ttl. It returns how many it revoked.
	RevokeSessions(ctx context.Context, userID uuid.UUID) (int, error)
}

// Closing closes accounts (DELETE /users/me, perpetua users erase), inside
// the caller's transaction.
type Closing interface {
	// Close revokes every session of the user at once, clears their
	// profile, frees their Google identity (signing in with it again creates
	// a new, empty account) and publishes AccountClosed; the rest of their
	// rows are erased afterwards. With confirm, it must be the account's
	// email (case-insensitive; 400 otherwise). An unknown or closed account
	// is a 404.
	Close(ctx context.Context, tx *gorm.DB, userID uuid.UUID, confirm *string) (*Closed, error)
}

// Closed is an account just closed.
type Closed struct {
	UserID    uuid.UUID
	EmailHash string
	Tier      string
	At        time.Time
	// Sessions is how many live sessions were revoked.
	Sessions int
}

// Sessions tells whether a sign-in still stands (long-lived connections,
// such as a live stream, check it as they go).
type Sessions interface {
	// Live reports whether the session exists, is not revoked, and its user
	// is not closed.
	Live(ctx context.Context, sessionID uuid.UUID) (bool, error)
}
