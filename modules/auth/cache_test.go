package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/test/testkit"
)

// cached starts an app whose instance remembers sessions for a minute.
func cached(t *testing.T, opts ...testkit.Option) *testkit.App {
	t.Helper()
	return testkit.Start(t, append([]testkit.Option{testkit.Modules(auth.Module),
		testkit.WithConfig("auth.session_cache_ttl", "1m")}, opts...)...)
}

func TestSessionEndedOnThisInstanceIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	app := cached(t)
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK) // now cached
	app.Do(t, alice, http.MethodPost, "/api/v1/auth/logout", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")

	// Refresh-token reuse revokes the family, cached tokens included.
	bob := app.SignIn(t, "bob@example.com")
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": bob.RefreshToken}).
		Expect(t, http.StatusOK).Decode(t, &pair)
	rotated := &testkit.User{AccessToken: pair.AccessToken}
	app.Do(t, rotated, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Do(t, bob, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Clock.Advance(11 * time.Second) // past the grace window, within the cache's minute
	app.Do(t, nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": bob.RefreshToken}).
		ExpectError(t, http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	app.Do(t, rotated, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	app.Do(t, bob, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

func TestSessionEndedElsewhereIsRefusedWithinTheTTL(t *testing.T) {
	t.Parallel()
	app := cached(t, testkit.WithConfig("auth.session_cache_ttl", "2s"))
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	// Another instance revokes the session: this one learns it from the
	// database once its entry is older than the TTL.
	if err := app.DB.Gorm.Exec("UPDATE auth_sessions SET revoked_at = ?, revoke_reason = 'logout' WHERE user_id = ?",
		app.Clock.Now(), alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Clock.Advance(1999 * time.Millisecond)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Clock.Advance(time.Millisecond)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

func TestCachedSessionExpiresWithItsToken(t *testing.T) {
	t.Parallel()
	app := cached(t)
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	app.Clock.Advance(59*time.Minute + 59*time.Second)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK) // read again, cached again
	app.Clock.Advance(time.Second)
	app.Do(t, alice, http.MethodGet, "/api/v1/users/me", nil).ExpectError(t, http.StatusUnauthorized, "TOKEN_EXPIRED")
}

func TestTierChangeAppliesToCachedSessionsAtOnce(t *testing.T) {
	t.Parallel()
	var tiers auth.Tiers
	app := cached(t, testkit.Modules(auth.Module, tasks.Module), testkit.WithFx(fx.Populate(&tiers)))
	alice := app.SignIn(t, "alice@example.com")
	long := map[string]any{"title": "x", "description": strings.Repeat("d", 1500)}
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", long).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	ctx := context.Background()
	if err := app.DB.Tx(ctx, func(tx *gorm.DB) error { return tiers.SetTier(ctx, tx, alice.ID, auth.TierPro) }); err != nil {
		t.Fatal(err)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks", long).Expect(t, http.StatusCreated)
}
