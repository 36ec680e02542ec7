package testkit

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a local OpenID Connect issuer speaking Google's wire format:
// a discovery document, a JWKS, and RS256 ID tokens with Google's claims. The
// server under test verifies tokens against it exactly as against Google.
type Issuer struct {
	URL      string
	ClientID string

	key      *rsa.PrivateKey
	kid      string
	srv      *httptest.Server
	jwksHits atomic.Int64
}

// NewIssuer starts an issuer for the test.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key := sharedRSAKey(t)
	iss := &Issuer{ClientID: "test-client.apps.googleusercontent.com", key: key, kid: "test-kid-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"authorization_endpoint":                iss.URL + "/o/oauth2/v2/auth",
			"token_endpoint":                        iss.URL + "/token",
			"userinfo_endpoint":                     iss.URL + "/v1/userinfo",
			"jwks_uri":                              iss.URL + "/oauth2/v3/certs",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"subject_types_supported":               []string{"public"},
			"response_types_supported":              []string{"code", "token", "id_token"},
		})
	})
	mux.HandleFunc("GET /oauth2/v3/certs", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksHits.Add(1)
		pub := iss.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": iss.kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	iss.srv = httptest.NewServer(mux)
	iss.URL = iss.srv.URL
	t.Cleanup(iss.srv.Close)
	return iss
}

// JWKSFetches counts how often the keys were fetched.
func (i *Issuer) JWKSFetches() int64 { return i.jwksHits.Load() }

// GoogleClaims are the claims of an ID token; zero fields get defaults.
type GoogleClaims struct {
	Subject       string
	Email         string
	EmailVerified *bool
	Name          string
	Picture       string
	Audience      string
	Issuer        string
	IssuedAt      time.Time
	Expiry        time.Time
	// SignWith signs with another key (a forged token).
	SignWith *rsa.PrivateKey
}

// IDToken returns a signed ID token.
func (i *Issuer) IDToken(t testing.TB, c GoogleClaims) string {
	t.Helper()
	now := time.Now()
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(time.Hour)
	}
	if c.Audience == "" {
		c.Audience = i.ClientID
	}
	if c.Issuer == "" {
		c.Issuer = i.URL
	}
	if c.Subject == "" {
		c.Subject = "google-" + c.Email
	}
	verified := true
	if c.EmailVerified != nil {
		verified = *c.EmailVerified
	}
	claims := jwt.MapClaims{
		"iss": c.Issuer, "aud": c.Audience, "sub": c.Subject, "azp": c.Audience,
		"email": c.Email, "email_verified": verified, "name": c.Name,
		"iat": c.IssuedAt.Unix(), "exp": c.Expiry.Unix(),
	}
	if c.Picture != "" {
		claims["picture"] = c.Picture
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = i.kid
	key := i.key
	if c.SignWith != nil {
		key = c.SignWith
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign ID token: %v", err)
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var (
	keyOnce  = make(chan struct{}, 1)
	keyCache [2]*rsa.PrivateKey
)

// sharedRSAKey returns a 2048-bit key generated once per test process
// (generation is slow; the tests need distinct keys only for forgery).
func sharedRSAKey(t testing.TB) *rsa.PrivateKey { return rsaKey(t, 0) }

// OtherRSAKey returns a second key, for forged signatures.
func OtherRSAKey(t testing.TB) *rsa.PrivateKey { return rsaKey(t, 1) }

func rsaKey(t testing.TB, n int) *rsa.PrivateKey {
	keyOnce <- struct{}{}
	defer func() { <-keyOnce }()
	if keyCache[n] == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatalf("generate key: %v", err)
		}
		keyCache[n] = k
	}
	return keyCache[n]
}

// RSAKey is the key behind PrivateKeyPEM (and the issuer's), for tests that
// sign tokens themselves.
func RSAKey(t testing.TB) *rsa.PrivateKey { return rsaKey(t, 0) }
