package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
)

// closedPrefix marks the Google identity of a closed account: the real one
// is free again, so that signing in with it creates a new, empty account
// while the old one is being erased.
const closedPrefix = "closed:"

// revokedClosed: the account was closed.
const revokedClosed = "account_closed"

// EmailHash is how a deleted account's email is remembered: the hex SHA-256
// of the address, trimmed and lower-cased.
func EmailHash(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// Close implements Closing.
func (d *directory) Close(ctx context.Context, tx *gorm.DB, userID uuid.UUID, confirm *string) (*Closed, error) {
	var u User
	err := database.ForUpdate(tx).Where("id = ?", userID).Take(&u).Error
	if database.IsNotFound(err) || (err == nil && strings.HasPrefix(u.GoogleID, closedPrefix)) {
		return nil, apperr.NotFound(apperr.CodeNotFound, "user "+userID.String()+" (or it was closed already)")
	}
	if err != nil {
		return nil, err
	}
	if confirm != nil && !strings.EqualFold(strings.TrimSpace(*confirm), strings.TrimSpace(u.Email)) {
		return nil, apperr.Validation("confirm", "must be the account's email address")
	}
	now := d.clock.Now()
	var sessions []uuid.UUID
	if err := tx.Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).Pluck("id", &sessions).Error; err != nil {
		return nil, err
	}
	if err := tx.Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).
		Updates(map[string]any{"revoked_at": now, "revoke_reason": revokedClosed}).Error; err != nil {
		return nil, err
	}
	// The profile goes at once; the row itself goes with the rest of the
	// user's rows (account_erase), last.
	if err := tx.Model(&User{}).Where("id = ?", userID).Updates(map[string]any{
		"google_id": closedPrefix + userID.String(), "email": "", "name": "", "avatar_url": nil,
		"updated_at": now, "version": gorm.Expr("version + 1"),
	}).Error; err != nil {
		return nil, err
	}
	c := &Closed{UserID: userID, EmailHash: EmailHash(u.Email), Tier: u.Tier, At: now, Sessions: len(sessions)}
	if err := d.bus.Publish(ctx, tx, AccountClosed{UserID: userID, EmailHash: c.EmailHash, Tier: u.Tier, At: now}); err != nil {
		return nil, err
	}
	d.log.Info("account closed", zap.String("user_id", userID.String()), zap.Int("sessions_revoked", len(sessions)))
	return c, nil
}

// Live implements Sessions.
func (s *Service) Live(ctx context.Context, sessionID uuid.UUID) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Session{}).
		Joins("JOIN users ON users.id = auth_sessions.user_id").
		Where("auth_sessions.id = ? AND auth_sessions.revoked_at IS NULL AND users.google_id NOT LIKE ?", sessionID, closedPrefix+"%").
		Count(&n).Error
	return n == 1, err
}
