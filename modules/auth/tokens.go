package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/id"
)

// accessClaims are the claims of our access tokens.
type accessClaims struct {
	Email string `json:"email"`
	Tier  string `json:"tier"`
	SID   string `json:"sid"`
	jwt.RegisteredClaims
}

// issue signs an access token for u in session sid.
func (k *keyring) issue(now time.Time, ttl time.Duration, issuer string, u *User, sid uuid.UUID) (string, error) {
	claims := accessClaims{
		Email: u.Email,
		Tier:  u.Tier,
		SID:   sid.String(),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   u.ID.String(),
			ID:        id.New().String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.signer)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// verify checks an access token's signature (by kid), issuer and expiry. An
// expired token is TOKEN_EXPIRED, so that the client refreshes; anything
// else wrong is UNAUTHORIZED.
func (k *keyring) verify(raw, issuer string, now func() time.Time) (*accessClaims, error) {
	var claims accessClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	)
	_, err := parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if pub, ok := k.public[kid]; ok {
			return pub, nil
		}
		return nil, errors.New("unknown key id")
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, apperr.Unauthorized(apperr.CodeTokenExpired, "access token expired")
	case err != nil:
		return nil, apperr.Unauthorized(apperr.CodeUnauthorized, "invalid access token")
	}
	return &claims, nil
}
