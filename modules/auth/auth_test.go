package auth_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/test/testkit"
)

func TestGoogleSignInCreatesUserWithTokens(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	token := app.Issuer.IDToken(t, testkit.GoogleClaims{Email: "alice@example.com", Name: "Alice",
		Picture: "https://example.com/a.png"})

	res := app.Do(t, nil, http.MethodPost, "/api/v1/auth/google/callback", map[string]any{"id_token": token}).
		Expect(t, http.StatusOK)

	body := res.JSON(t)
	if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
		t.Fatalf("token_type/expires_in: %v", body)
	}
	if _, enveloped := body["data"]; enveloped {
		t.Fatalf("sign-in answers without an envelope: %s", res.Body)
	}
	refresh, _ := body["refresh_token"].(string)
	if len(refresh) < 43 { // 256 bits, base64url
		t.Fatalf("refresh token too short: %q", refresh)
	}
	user := body["user"].(map[string]any)
	for key, want := range map[string]any{"email": "alice@example.com", "name": "Alice", "tier": "free",
		"avatar_url": "https://example.com/a.png", "timezone": "UTC"} {
		if user[key] != want {
			t.Errorf("user.%s = %v, want %v", key, user[key], want)
		}
	}
	if n := app.Count(t, "users", "email = ?", "alice@example.com"); n != 1 {
		t.Fatalf("users = %d", n)
	}
	if n := app.Count(t, "refresh_tokens", "token_hash = ?", refresh); n != 0 {
		t.Fatal("refresh token stored in clear")
	}
	if n := app.Count(t, "refresh_tokens", ""); n != 1 {
		t.Fatalf("refresh tokens stored = %d", n)
	}
}

func TestGoogleSignInAgainFindsTheSameUser(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	first := app.SignIn(t, "bob@example.com")
	second := app.SignIn(t, "bob@example.com")
	if first.ID != second.ID {
		t.Fatalf("second sign-in made a new user: %s vs %s", first.ID, second.ID)
	}
	if n := app.Count(t, "users", ""); n != 1 {
		t.Fatalf("users = %d", n)
	}
	if n := app.Count(t, "auth_sessions", "user_id = ?", first.ID); n != 2 {
		t.Fatalf("sessions = %d, want one per sign-in", n)
	}
}

func TestConcurrentFirstSignInsMakeOneUser(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	token := app.Issuer.IDToken(t, testkit.GoogleClaims{Email: "race@example.com"})
	racers := make([]testkit.Racer, 6)
	for i := range racers {
		racers[i] = testkit.Racer{Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/auth/google/callback",
			Body: map[string]any{"id_token": token}}}
	}
	for i, res := range app.Burst(t, racers) {
		if res.Status != http.StatusOK {
			t.Errorf("sign-in %d: status %d", i, res.Status)
		}
	}
	if n := app.Count(t, "users", ""); n != 1 {
		t.Fatalf("users = %d, want 1", n)
	}
}

func TestGoogleSignInRefusesBadTokens(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	unverified := false
	cases := map[string]testkit.GoogleClaims{
		"wrong audience":     {Email: "x@example.com", Audience: "someone-else"},
		"wrong issuer":       {Email: "x@example.com", Issuer: "https://evil.example.com"},
		"expired":            {Email: "x@example.com", IssuedAt: time.Now().Add(-2 * time.Hour), Expiry: time.Now().Add(-time.Hour)},
		"unverified email":   {Email: "x@example.com", EmailVerified: &unverified},
		"forged signature":   {Email: "x@example.com", SignWith: testkit.OtherRSAKey(t)},
		"no email in claims": {Subject: "123"},
	}
	for name, claims := range cases {
		t.Run(name, func(t *testing.T) {
			app.Do(t, nil, http.MethodPost, "/api/v1/auth/google/callback",
				map[string]any{"id_token": app.Issuer.IDToken(t, claims)}).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
		})
	}
	t.Run("not a JWT", func(t *testing.T) {
		app.Do(t, nil, http.MethodPost, "/api/v1/auth/google/callback",
			map[string]any{"id_token": "not-a-token"}).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("missing id_token", func(t *testing.T) {
		app.Do(t, nil, http.MethodPost, "/api/v1/auth/google/callback", map[string]any{}).
			ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	})
	if n := app.Count(t, "users", ""); n != 0 {
		t.Fatalf("a refused sign-in created %d users", n)
	}
}

func TestIssuerKeysAreCachedBetweenSignIns(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		app.SignIn(t, email)
	}
	if n := app.Issuer.JWKSFetches(); n != 1 {
		t.Fatalf("issuer keys fetched %d times, want once", n)
	}
}

func TestAccessTokenCodes(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")

	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Do(t, nil, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, &testkit.User{AccessToken: "garbage"}, http.MethodGet, "/api/v1/users/me", nil).
		ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")

	tampered := *alice
	parts := strings.Split(alice.AccessToken, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone-else","exp":9999999999,"iss":"perpetua-flow-api"}`))
	tampered.AccessToken = strings.Join(parts, ".")
	app.Do(t, &tampered, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")

	app.Clock.Advance(59 * time.Minute)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Clock.Advance(2 * time.Minute)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "TOKEN_EXPIRED")
}

func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")

	// The live client sends its expired access token along; auth routes ignore it.
	res := app.Send(t, nil, testkit.Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh",
		Body:    map[string]any{"refresh_token": alice.RefreshToken},
		Headers: map[string]string{"Authorization": "Bearer expired.token.here"}}).Expect(t, http.StatusOK)
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
	}
	res.Decode(t, &pair)
	if pair.RefreshToken == alice.RefreshToken || pair.AccessToken == "" || pair.TokenType != "Bearer" || pair.ExpiresIn != 3600 {
		t.Fatalf("refresh answer: %s", res.Body)
	}
	rotated := &testkit.User{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken}
	app.Do(t, rotated, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)

	// The spent token again within the grace window: another tab of the same
	// browser refreshing at the same moment gets a pair of the same session.
	again := app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": alice.RefreshToken}).
		Expect(t, http.StatusOK).JSON(t)
	app.Do(t, &testkit.User{AccessToken: again["access_token"].(string)}, http.MethodGet, "/api/v1/users/me", nil).
		Expect(t, http.StatusOK)

	// The spent token again later: theft. The family dies, including the new pairs.
	app.Clock.Advance(11 * time.Second)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": alice.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": pair.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	app.Do(t, rotated, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	if n := app.Count(t, "auth_sessions", "user_id = ? AND revoked_at IS NOT NULL AND revoke_reason = ?", alice.ID, "reuse"); n != 1 {
		t.Fatalf("revoked sessions = %d", n)
	}

	// Another sign-in (another family) is unaffected.
	other := app.SignIn(t, "alice@example.com")
	app.Do(t, other, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
}

func TestRefreshTokenExpires(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")
	app.Clock.Advance(7*24*time.Hour + time.Second)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": alice.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": "unknown"}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
}

func TestLogoutIsIdempotentAndEndsTheSession(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")

	res := app.Do(t, nil, http.MethodPost, "/api/v1/auth/logout", map[string]any{"refresh_token": alice.RefreshToken}).
		Expect(t, http.StatusOK)
	if res.Data(t)["logged_out"] != true {
		t.Fatalf("logout answer: %s", res.Body)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": alice.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")

	app.Do(t, nil, http.MethodPost, "/api/v1/auth/logout", map[string]any{"refresh_token": alice.RefreshToken}).Expect(t, http.StatusOK)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/logout", map[string]any{"refresh_token": "never-issued"}).Expect(t, http.StatusOK)
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/logout", nil).Expect(t, http.StatusOK)
}

func TestLogoutWithOnlyTheBearerEndsItsSession(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")
	otherTab := app.SignIn(t, "alice@example.com")

	app.Do(t, alice, http.MethodPost, "/api/v1/auth/logout", nil).Expect(t, http.StatusOK)

	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": alice.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	// Another sign-in of the same user is another session.
	app.Do(t, otherTab, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	// A bearer that is not ours changes nothing and still answers 200.
	app.Do(t, &testkit.User{AccessToken: "forged.token.here"}, http.MethodPost, "/api/v1/auth/logout", nil).
		Expect(t, http.StatusOK)
	app.Do(t, otherTab, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
}

func TestUsersMe(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")

	me := app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK).Data(t)
	if me["id"] != alice.ID.String() || me["timezone"] != "UTC" || me["google_id"] == "" {
		t.Fatalf("me: %v", me)
	}

	updated := app.Do(t, alice, http.MethodPatch, "/api/v1/users/me",
		map[string]any{"name": "Alice A.", "timezone": "Europe/Berlin"}).Expect(t, http.StatusOK).Data(t)
	if updated["name"] != "Alice A." || updated["timezone"] != "Europe/Berlin" {
		t.Fatalf("updated: %v", updated)
	}

	for name, body := range map[string]map[string]any{
		"unknown zone":  {"timezone": "Mars/Olympus"},
		"local zone":    {"timezone": "Local"},
		"empty name":    {"name": ""},
		"blank name":    {"name": "   "},
		"long name":     {"name": strings.Repeat("a", 101)},
		"wrong type":    {"name": 5},
		"null timezone": {"timezone": 7},
	} {
		t.Run(name, func(t *testing.T) {
			app.Do(t, alice, http.MethodPatch, "/api/v1/users/me", body).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
		})
	}
	res := app.Do(t, alice, http.MethodPatch, "/api/v1/users/me", map[string]any{"timezone": "Nowhere/Land"})
	var env struct {
		Error struct {
			Details []struct{ Field string } `json:"details"`
		} `json:"error"`
	}
	res.Decode(t, &env)
	if len(env.Error.Details) != 1 || env.Error.Details[0].Field != "timezone" {
		t.Fatalf("details: %s", res.Body)
	}
	again := app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Data(t)
	if again["timezone"] != "Europe/Berlin" {
		t.Fatalf("a refused change was applied: %v", again)
	}
}

func TestJWKSVerifiesAccessTokens(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	alice := app.SignIn(t, "alice@example.com")
	for _, path := range []string{"/api/v1/.well-known/jwks.json", "/.well-known/jwks.json"} {
		var set struct {
			Keys []struct{ Kty, Use, Alg, Kid, N, E string } `json:"keys"`
		}
		app.Do(t, nil, http.MethodGet, path, nil).Expect(t, http.StatusOK).Decode(t, &set)
		if len(set.Keys) != 1 {
			t.Fatalf("%s: %d keys", path, len(set.Keys))
		}
		k := set.Keys[0]
		if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || k.Kid == "" {
			t.Fatalf("%s: key %+v", path, k)
		}
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		tok, err := jwt.Parse(alice.AccessToken, func(tok *jwt.Token) (any, error) {
			if tok.Header["kid"] != k.Kid {
				t.Fatalf("kid %v, want %s", tok.Header["kid"], k.Kid)
			}
			return pub, nil
		}, jwt.WithTimeFunc(app.Clock.Now))
		if err != nil {
			t.Fatalf("verify with JWKS: %v", err)
		}
		claims := tok.Claims.(jwt.MapClaims)
		for _, c := range []string{"sub", "email", "tier", "sid", "jti", "iat", "exp", "iss"} {
			if _, ok := claims[c]; !ok {
				t.Errorf("claim %s missing", c)
			}
		}
	}
}

func TestDevLogin(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(auth.Module))
	res := app.Do(t, nil, http.MethodPost, "/api/v1/auth/dev/login", map[string]any{"email": "dev@example.com"}).
		Expect(t, http.StatusOK)
	if res.JSON(t)["user"].(map[string]any)["email"] != "dev@example.com" {
		t.Fatalf("dev login: %s", res.Body)
	}
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/dev/login", map[string]any{"email": "not-an-email"}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")

	off := testkit.Start(t, testkit.Modules(auth.Module), testkit.WithConfig("auth.dev_login_enabled", "false"))
	off.Do(t, nil, http.MethodPost, "/api/v1/auth/dev/login", map[string]any{"email": "dev@example.com"}).
		ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestTiersChangeInTheCallersTransaction(t *testing.T) {
	t.Parallel()
	var tiers auth.Tiers
	var changes atomic.Int32
	app := testkit.Start(t, testkit.Modules(auth.Module), testkit.WithFx(fx.Populate(&tiers), fx.Invoke(func(bus *events.Bus) {
		events.Subscribe(bus, "test", func(_ context.Context, _ *gorm.DB, e auth.TierChanged) error {
			if e.From == auth.TierFree && e.To == auth.TierPro {
				changes.Add(1)
			}
			return nil
		})
	})))
	alice := app.SignIn(t, "alice@example.com")
	set := func(tier string) error {
		return app.DB.Tx(context.Background(), func(tx *gorm.DB) error { return tiers.SetTier(context.Background(), tx, alice.ID, tier) })
	}
	if err := set(auth.TierPro); err != nil {
		t.Fatal(err)
	}
	if err := set(auth.TierPro); err != nil { // the same tier again: nothing happens
		t.Fatal(err)
	}
	me := app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK).Data(t)
	if me["tier"] != "pro" || changes.Load() != 1 {
		t.Fatalf("tier %v after %d changes", me["tier"], changes.Load())
	}
	if err := set("platinum"); err == nil {
		t.Fatal("an unknown tier was set")
	}
}
