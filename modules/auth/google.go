package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/observability"
)

// identity is who an identity provider says signed in.
type identity struct {
	Subject   string // the provider's stable user id
	Email     string
	Name      string
	AvatarURL *string
}

// googleVerifier verifies Google ID tokens against the issuer's published
// keys: signature, iss, aud (our client id), exp and email_verified. The
// issuer's discovery document is fetched on first use, and its keys are cached
// and refreshed only when a token names an unknown kid.
type googleVerifier struct {
	issuer   string
	clientID string
	client   *http.Client
	now      func() time.Time

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

func newGoogleVerifier(c Config, now func() time.Time) *googleVerifier {
	return &googleVerifier{issuer: c.GoogleIssuerURL, clientID: c.GoogleClientID,
		client: &http.Client{Timeout: c.GoogleTimeout, Transport: observability.Outbound(nil, "google")}, now: now}
}

var errProviderUnavailable = apperr.New(apperr.KindUnavailable, "SERVICE_UNAVAILABLE",
	"the sign-in provider cannot be reached; try again shortly")

func (g *googleVerifier) get() (*oidc.IDTokenVerifier, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.verifier != nil {
		return g.verifier, nil
	}
	// The provider keeps this context for every later key fetch, so it must
	// outlive the request that happens to come first.
	ctx := oidc.ClientContext(context.Background(), g.client)
	p, err := oidc.NewProvider(ctx, g.issuer)
	if err != nil {
		return nil, errProviderUnavailable
	}
	g.verifier = p.Verifier(&oidc.Config{ClientID: g.clientID, Now: g.now, SupportedSigningAlgs: []string{oidc.RS256}})
	return g.verifier, nil
}

// Verify checks raw and returns the identity it carries.
func (g *googleVerifier) Verify(ctx context.Context, raw string) (identity, error) {
	if g.clientID == "" {
		return identity{}, apperr.New(apperr.KindUnavailable, "SERVICE_UNAVAILABLE",
			"Google sign-in is not configured on this server (GOOGLE_CLIENT_ID)")
	}
	v, err := g.get()
	if err != nil {
		return identity{}, err
	}
	tok, err := v.Verify(oidc.ClientContext(ctx, g.client), raw)
	if err != nil {
		if strings.Contains(err.Error(), "fetching keys") {
			return identity{}, errProviderUnavailable
		}
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return identity{}, apperr.Unauthorized(apperr.CodeUnauthorized, "the Google ID token has expired")
		}
		return identity{}, apperr.Unauthorized(apperr.CodeUnauthorized, "invalid Google ID token")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
		Picture       string `json:"picture"`
	}
	if err := tok.Claims(&claims); err != nil {
		return identity{}, apperr.Unauthorized(apperr.CodeUnauthorized, "invalid Google ID token claims")
	}
	if !isTrue(claims.EmailVerified) || claims.Email == "" {
		return identity{}, apperr.Unauthorized(apperr.CodeUnauthorized, "the Google account's email is not verified")
	}
	ident := identity{Subject: tok.Subject, Email: claims.Email, Name: claims.Name}
	if claims.Picture != "" {
		ident.AvatarURL = &claims.Picture
	}
	return ident, nil
}

// isTrue accepts email_verified as a boolean or the string "true" (both are
// seen in Google tokens).
func isTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}
