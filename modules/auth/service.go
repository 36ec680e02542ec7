package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// CodeInvalidRefreshToken is the error code of a refresh token that is
// unknown, expired, revoked or reused.
const CodeInvalidRefreshToken = "INVALID_REFRESH_TOKEN"

var errInvalidRefresh = apperr.Unauthorized(CodeInvalidRefreshToken, "refresh token is invalid, expired or revoked")

// Service holds the sign-in and user rules.
type Service struct {
	db     *database.DB
	bus    *events.Bus
	clock  clock.Clock
	cfg    Config
	keys   *keyring
	google *googleVerifier
	cache  *sessionCache
	log    *zap.Logger
}

func newService(db *database.DB, bus *events.Bus, clk clock.Clock, cfg Config, keys *keyring, cache *sessionCache, log *zap.Logger) *Service {
	return &Service{db: db, bus: bus, clock: clk, cfg: cfg, keys: keys, cache: cache,
		google: newGoogleVerifier(cfg, clk.Now), log: log.Named("auth")}
}

// Tokens is the answer of a sign-in or a refresh.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int
	User         User
}

// SignInWithGoogle verifies a Google ID token and signs its user in,
// creating the user on first sign-in.
func (s *Service) SignInWithGoogle(ctx context.Context, idToken string) (*Tokens, error) {
	ident, err := s.google.Verify(ctx, idToken)
	if err != nil {
		return nil, err
	}
	return s.signIn(ctx, ident)
}

// DevLogin signs in by email alone. It exists only where dev login is
// enabled (never in production).
func (s *Service) DevLogin(ctx context.Context, email, name string) (*Tokens, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if name = strings.TrimSpace(name); name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	return s.signIn(ctx, identity{Subject: "dev:" + email, Email: email, Name: name})
}

func (s *Service) signIn(ctx context.Context, ident identity) (*Tokens, error) {
	var out *Tokens
	attempt := func() error {
		return s.db.Tx(ctx, func(tx *gorm.DB) error {
			u, err := s.upsertUser(ctx, tx, ident)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			sess := Session{ID: id.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now}
			if err := tx.Create(&sess).Error; err != nil {
				return fmt.Errorf("create session: %w", err)
			}
			out, err = s.issuePair(tx, u, sess.ID)
			return err
		})
	}
	err := attempt()
	if database.IsUniqueViolation(err) {
		// Two first sign-ins of one account raced; the user exists now.
		err = attempt()
	}
	return out, err
}

func (s *Service) upsertUser(ctx context.Context, tx *gorm.DB, ident identity) (*User, error) {
	var u User
	err := tx.Where("google_id = ?", ident.Subject).Take(&u).Error
	now := s.clock.Now()
	switch {
	case database.IsNotFound(err):
		u = User{ID: id.New(), GoogleID: ident.Subject, Email: ident.Email, Name: truncate(ident.Name, 100),
			AvatarURL: ident.AvatarURL, Timezone: "UTC", Tier: TierFree, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&u).Error; err != nil {
			return nil, fmt.Errorf("create user: %w", err)
		}
		if err := s.bus.Publish(ctx, tx, UserCreated{UserID: u.ID, Email: u.Email, At: now}); err != nil {
			return nil, err
		}
		s.log.Info("user created", zap.String("user_id", u.ID.String()))
		return &u, nil
	case err != nil:
		return nil, fmt.Errorf("find user: %w", err)
	}
	// The provider's email and picture may change; the name is the user's own
	// once set (PATCH /users/me).
	changes := map[string]any{}
	if ident.Email != u.Email {
		changes["email"] = ident.Email
	}
	if ident.AvatarURL != nil && (u.AvatarURL == nil || *u.AvatarURL != *ident.AvatarURL) {
		changes["avatar_url"] = *ident.AvatarURL
	}
	if len(changes) > 0 {
		changes["updated_at"] = now
		changes["version"] = gorm.Expr("version + 1")
		if err := tx.Model(&User{}).Where("id = ?", u.ID).Updates(changes).Error; err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		if err := tx.Where("id = ?", u.ID).Take(&u).Error; err != nil {
			return nil, err
		}
	}
	return &u, nil
}

// issuePair creates a refresh token in session sid and signs an access token.
func (s *Service) issuePair(tx *gorm.DB, u *User, sid uuid.UUID) (*Tokens, error) {
	now := s.clock.Now()
	raw, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	rt := RefreshToken{ID: id.New(), SessionID: sid, UserID: u.ID, TokenHash: hash,
		ExpiresAt: now.Add(s.cfg.RefreshTTL()), CreatedAt: now}
	if err := tx.Create(&rt).Error; err != nil {
		return nil, fmt.Errorf("store refresh token: %w", err)
	}
	access, err := s.keys.issue(now, s.cfg.AccessTTL(), s.cfg.Issuer, u, sid)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, RefreshToken: raw, ExpiresIn: int(s.cfg.AccessTTL().Seconds()), User: *u}, nil
}

// newRefreshToken returns 256 random bits, encoded, and their SHA-256.
func newRefreshToken() (raw, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("random: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, hashToken(raw), nil
}

func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Refresh rotates a refresh token: the presented one is spent and a new pair
// is issued in the same session. Presenting a spent token again is taken as
// theft and revokes the whole session (token family), except within the
// grace window after it was spent: two tabs refreshing with the same token
// at once both get a valid pair of the same session.
func (s *Service) Refresh(ctx context.Context, raw string) (*Tokens, error) {
	var out *Tokens
	reused := false
	var revoked uuid.UUID
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		reused = false
		// The row lock makes concurrent refreshes with one token take turns:
		// the first spends it, the others see it spent.
		var rt RefreshToken
		if err := database.ForUpdate(tx).Where("token_hash = ?", hashToken(raw)).Take(&rt).Error; err != nil {
			if database.IsNotFound(err) {
				return errInvalidRefresh
			}
			return err
		}
		var sess Session
		if err := tx.Where("id = ?", rt.SessionID).Take(&sess).Error; err != nil {
			return err
		}
		now := s.clock.Now()
		switch {
		case sess.RevokedAt != nil:
			return errInvalidRefresh
		case !now.Before(rt.ExpiresAt):
			return errInvalidRefresh
		case rt.UsedAt != nil && now.Sub(*rt.UsedAt) > s.cfg.RefreshGrace:
			reused, revoked = true, sess.ID
			return s.revokeSession(tx, sess.ID, revokedReuse)
		case rt.UsedAt == nil:
			if err := database.One(tx.Model(&RefreshToken{}).Where("id = ? AND used_at IS NULL", rt.ID).
				Update("used_at", now), errInvalidRefresh); err != nil {
				return err
			}
		}
		if err := tx.Model(&Session{}).Where("id = ?", sess.ID).Update("last_used_at", now).Error; err != nil {
			return err
		}
		var u User
		if err := tx.Where("id = ?", rt.UserID).Take(&u).Error; err != nil {
			return err
		}
		var err error
		out, err = s.issuePair(tx, &u, sess.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if reused {
		s.cache.forgetSessions(revoked)
		observability.Logger(ctx, s.log).Warn("refresh token reused; session revoked")
		return nil, errInvalidRefresh
	}
	return out, nil
}

func (s *Service) revokeSession(tx *gorm.DB, sid uuid.UUID, reason string) error {
	return tx.Model(&Session{}).Where("id = ? AND revoked_at IS NULL", sid).
		Updates(map[string]any{"revoked_at": s.clock.Now(), "revoke_reason": reason}).Error
}

// Logout ends a session: the one of the bearer's access token when it is
// valid, and the one of the refresh token when it is sent. Unknown or
// missing credentials are fine: logging out is idempotent.
func (s *Service) Logout(ctx context.Context, bearer, refreshToken string) error {
	var sessions []uuid.UUID
	if bearer != "" {
		if claims, err := s.keys.verify(bearer, s.cfg.Issuer, s.clock.Now); err == nil {
			if sid, err := uuid.Parse(claims.SID); err == nil {
				sessions = append(sessions, sid)
			}
		}
	}
	if len(sessions) == 0 && refreshToken == "" {
		return nil
	}
	var ids []uuid.UUID
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		ids = sessions
		if refreshToken != "" {
			var rt RefreshToken
			err := tx.Where("token_hash = ?", hashToken(refreshToken)).Take(&rt).Error
			if err != nil && !database.IsNotFound(err) {
				return err
			}
			if err == nil {
				ids = append(ids, rt.SessionID)
			}
		}
		for _, sid := range ids {
			if err := s.revokeSession(tx, sid, revokedLogout); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.cache.forgetSessions(ids...)
	}
	return err
}

// Authenticate implements httpx.Authenticator: it verifies an access token
// and loads its user, refusing tokens whose session was revoked. What it
// found is cached for auth.session_cache_ttl (see sessionCache).
func (s *Service) Authenticate(ctx context.Context, token string) (context.Context, error) {
	if p, ok := s.cache.get(token); ok {
		return httpx.WithSubject(WithPrincipal(ctx, p), p.UserID.String()), nil
	}
	gen := s.cache.generation()
	checked := s.clock.Now()
	claims, err := s.keys.verify(token, s.cfg.Issuer, s.clock.Now)
	if err != nil {
		return ctx, err
	}
	uid, err1 := uuid.Parse(claims.Subject)
	sid, err2 := uuid.Parse(claims.SID)
	if err1 != nil || err2 != nil {
		return ctx, apperr.Unauthorized(apperr.CodeUnauthorized, "invalid access token")
	}
	var u User
	err = s.db.WithContext(ctx).Model(&User{}).
		Joins("JOIN auth_sessions ON auth_sessions.user_id = users.id").
		Where("users.id = ? AND auth_sessions.id = ? AND auth_sessions.revoked_at IS NULL", uid, sid).
		Take(&u).Error
	if database.IsNotFound(err) {
		return ctx, apperr.Unauthorized(apperr.CodeUnauthorized, "session has ended; sign in again")
	}
	if err != nil {
		return ctx, fmt.Errorf("load user: %w", err)
	}
	p := Principal{UserID: u.ID, Email: u.Email, Tier: u.Tier, Timezone: u.Timezone, SessionID: sid}
	if claims.ExpiresAt != nil {
		s.cache.put(token, p, claims.ExpiresAt.Time, checked, gen)
	}
	return httpx.WithSubject(WithPrincipal(ctx, p), p.UserID.String()), nil
}

// JWKS returns the public keys that verify access tokens.
func (s *Service) JWKS() JWKS { return s.keys.jwks }

// Me returns the caller's user.
func (s *Service) Me(ctx context.Context, p Principal) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("id = ?", p.UserID).Take(&u).Error
	if database.IsNotFound(err) {
		return nil, apperr.NotFound(apperr.CodeNotFound, "user")
	}
	return &u, err
}

// ProfileChanges are the editable fields of a user; nil leaves a field alone.
type ProfileChanges struct {
	Name     *string
	Timezone *string
}

// UpdateMe changes the caller's name or timezone.
func (s *Service) UpdateMe(ctx context.Context, p Principal, in ProfileChanges) (*User, error) {
	changes := map[string]any{}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || len([]rune(name)) > 100 {
			return nil, apperr.Validation("name", "must be 1-100 characters")
		}
		changes["name"] = name
	}
	if in.Timezone != nil {
		if !ValidTimezone(*in.Timezone) {
			return nil, apperr.Validation("timezone", "%q is not an IANA time zone name", *in.Timezone)
		}
		changes["timezone"] = *in.Timezone
	}
	if len(changes) > 0 {
		changes["updated_at"] = s.clock.Now()
		changes["version"] = gorm.Expr("version + 1")
		err := s.db.Tx(ctx, func(tx *gorm.DB) error {
			return tx.Model(&User{}).Where("id = ?", p.UserID).Updates(changes).Error
		})
		if err != nil {
			return nil, err
		}
		s.cache.forgetUser(p.UserID)
	}
	return s.Me(ctx, p)
}

// directory looks users up and changes their tier, without the token
// machinery, so that the worker role needs no signing keys.
type directory struct {
	bus   *events.Bus
	clock clock.Clock
	log   *zap.Logger
}

func newDirectory(bus *events.Bus, clk clock.Clock, log *zap.Logger) *directory {
	return &directory{bus: bus, clock: clk, log: log.Named("auth")}
}

// Principal implements Users: a user as a Principal (without a session).
func (d *directory) Principal(ctx context.Context, tx *gorm.DB, userID uuid.UUID) (Principal, error) {
	var u User
	if err := tx.WithContext(ctx).Where("id = ?", userID).Take(&u).Error; err != nil {
		return Principal{}, err
	}
	return Principal{UserID: u.ID, Email: u.Email, Tier: u.Tier, Timezone: u.Timezone}, nil
}

// Principals implements Users.
func (d *directory) Principals(ctx context.Context, tx *gorm.DB, userIDs []uuid.UUID) (map[uuid.UUID]Principal, error) {
	out := make(map[uuid.UUID]Principal, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	var users []User
	if err := tx.WithContext(ctx).Where("id IN ?", userIDs).Find(&users).Error; err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	for _, u := range users {
		out[u.ID] = Principal{UserID: u.ID, Email: u.Email, Tier: u.Tier, Timezone: u.Timezone}
	}
	return out, nil
}

// SetTier implements Tiers.
func (d *directory) SetTier(ctx context.Context, tx *gorm.DB, userID uuid.UUID, tier string) error {
	if tier != TierFree && tier != TierPro {
		return fmt.Errorf("set tier: unknown tier %q", tier)
	}
	var u User
	if err := database.ForUpdate(tx.WithContext(ctx)).Where("id = ?", userID).Take(&u).Error; err != nil {
		return fmt.Errorf("set tier: %w", err)
	}
	if u.Tier == tier {
		return nil
	}
	now := d.clock.Now()
	if err := tx.Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"tier": tier, "version": gorm.Expr("version + 1"), "updated_at": now}).Error; err != nil {
		return fmt.Errorf("set tier: %w", err)
	}
	return d.bus.Publish(ctx, tx, TierChanged{UserID: userID, From: u.Tier, To: tier, At: now})
}

// ValidTimezone reports whether name is an IANA zone (such as Europe/Berlin
// or UTC). "Local" and "" are refused: they mean the server's zone.
func ValidTimezone(name string) bool {
	if name == "" || name == "Local" || len(name) > 64 {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// FindUser implements Accounts.
func (s *Service) FindUser(ctx context.Context, idOrEmail string) (*UserInfo, error) {
	q := s.db.WithContext(ctx)
	var u User
	var err error
	if id, perr := uuid.Parse(idOrEmail); perr == nil {
		err = q.Where("id = ?", id).Take(&u).Error
	} else {
		err = q.Where("lower(email) = lower(?)", strings.TrimSpace(idOrEmail)).Order("created_at").Take(&u).Error
	}
	if database.IsNotFound(err) {
		return nil, apperr.NotFound(apperr.CodeNotFound, "user "+idOrEmail)
	}
	if err != nil {
		return nil, err
	}
	list, err := s.infos(ctx, []User{u})
	if err != nil {
		return nil, err
	}
	return &list[0], nil
}

// ListUsers implements Accounts.
func (s *Service) ListUsers(ctx context.Context, limit, offset int) ([]UserInfo, int64, error) {
	var total int64
	if err := s.db.WithContext(ctx).Model(&User{}).Count(&total).Error; err != nil {
		return nil, 0, err
	}
	var users []User
	if err := s.db.WithContext(ctx).Order("created_at DESC, id DESC").Limit(limit).Offset(offset).Find(&users).Error; err != nil {
		return nil, 0, err
	}
	list, err := s.infos(ctx, users)
	return list, total, err
}

// infos adds each user's sessions (one query for all).
func (s *Service) infos(ctx context.Context, users []User) ([]UserInfo, error) {
	out := make([]UserInfo, len(users))
	ids := make([]uuid.UUID, len(users))
	index := map[uuid.UUID]int{}
	for i, u := range users {
		out[i] = UserInfo{ID: u.ID, Email: u.Email, Name: u.Name, Tier: u.Tier, Timezone: u.Timezone, CreatedAt: u.CreatedAt.UTC()}
		ids[i], index[u.ID] = u.ID, i
	}
	if len(users) == 0 {
		return out, nil
	}
	var sessions []Session
	if err := s.db.WithContext(ctx).Where("user_id IN ?", ids).Find(&sessions).Error; err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	live := s.clock.Now().AddDate(0, 0, -s.cfg.RefreshTTLDays)
	for _, se := range sessions {
		u := &out[index[se.UserID]]
		if se.RevokedAt == nil && se.LastUsedAt.After(live) {
			u.ActiveSessions++
		}
		if t := se.LastUsedAt.UTC(); u.LastSeenAt == nil || t.After(*u.LastSeenAt) {
			u.LastSeenAt = &t
		}
	}
	return out, nil
}

// RevokeSessions implements Accounts.
func (s *Service) RevokeSessions(ctx context.Context, userID uuid.UUID) (int, error) {
	var ids []uuid.UUID
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		ids = nil
		if err := database.ForUpdate(tx).Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).
			Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		return tx.Model(&Session{}).Where("id IN ? AND revoked_at IS NULL", ids).
			Updates(map[string]any{"revoked_at": s.clock.Now(), "revoke_reason": revokedOperator}).Error
	})
	if err != nil {
		return 0, err
	}
	s.cache.forgetSessions(ids...)
	s.log.Info("sessions revoked by an operator", zap.String("user_id", userID.String()), zap.Int("sessions", len(ids)))
	return len(ids), nil
}
