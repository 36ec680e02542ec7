// Package auth owns users and sign-in: Google ID-token sign-in, RS256 access
// tokens and their JWKS, rotating refresh tokens with reuse detection,
// logout, the authentication middleware's Authenticator, and /users/me.
package auth

import (
	"net/url"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the auth module: every request is authenticated through it.
var Module = platform.Module{
	Name: "auth",
	Core: true,
	Option: fx.Module("auth",
		userdata.Contribute(
			userdata.Table("user", "users", "id").Then(userdata.PhaseAccount),
			userdata.Table("sessions", "auth_sessions", "user_id"),
			userdata.Secret("refresh tokens are hashes of secrets, nothing the user wrote; their sessions are exported", "refresh_tokens", "user_id"),
		),
		fx.Provide(
			newConfig,
			newSessionCache,
			newKeyring,
			newService,
			newDirectory,
			func(d *directory) Users { return d },
			func(d *directory) Tiers { return d },
			func(d *directory) Closing { return d },
			func(s *Service) Accounts { return s },
			func(s *Service) Sessions { return s },
			func(s *Service) httpx.Authenticator { return s },
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			events.AsSubscriber(forgetChangedTiers),
			events.AsSubscriber(forgetClosedAccounts),
		),
		// Configuration mistakes (dev login in production) stop every role.
		fx.Invoke(func(Config) {}),
	),
}

// Config is the auth section of the configuration.
type Config struct {
	Issuer             string        `mapstructure:"issuer"`
	AccessTTLMinutes   int           `mapstructure:"access_token_ttl_minutes"`
	RefreshTTLDays     int           `mapstructure:"refresh_token_ttl_days"`
	RefreshGrace       time.Duration `mapstructure:"refresh_reuse_grace"`
	PrivateKey         string        `mapstructure:"jwt_private_key"`
	PublicKey          string        `mapstructure:"jwt_public_key"`
	PrivateKeyPath     string        `mapstructure:"jwt_private_key_path"`
	PublicKeyPath      string        `mapstructure:"jwt_public_key_path"`
	PreviousPublicKeys []string      `mapstructure:"jwt_previous_public_keys"`
	GoogleClientID     string        `mapstructure:"google_client_id"`
	GoogleIssuerURL    string        `mapstructure:"google_issuer_url"`
	GoogleTimeout      time.Duration `mapstructure:"google_timeout"`
	DevLoginEnabled    string        `mapstructure:"dev_login_enabled"`
	SessionCacheTTL    time.Duration `mapstructure:"session_cache_ttl"`

	// DevLogin is DevLoginEnabled resolved against the environment.
	DevLogin bool `mapstructure:"-"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.Issuer == "":
		return config.Invalid("issuer", "must not be empty")
	case c.AccessTTLMinutes < 1:
		return config.Invalid("access_token_ttl_minutes", "must be at least 1")
	case c.RefreshTTLDays < 1:
		return config.Invalid("refresh_token_ttl_days", "must be at least 1")
	case c.RefreshGrace < 0 || c.RefreshGrace > time.Minute:
		return config.Invalid("refresh_reuse_grace", "must be between 0s and 1m")
	case c.SessionCacheTTL < 0 || c.SessionCacheTTL > time.Minute:
		return config.Invalid("session_cache_ttl", "must be between 0s and 1m")
	case c.GoogleTimeout <= 0:
		return config.Invalid("google_timeout", "must be positive")
	case c.DevLoginEnabled != "auto" && c.DevLoginEnabled != "true" && c.DevLoginEnabled != "false":
		return config.Invalid("dev_login_enabled", "must be auto, true or false, got %q", c.DevLoginEnabled)
	}
	u, err := url.Parse(c.GoogleIssuerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return config.Invalid("google_issuer_url", "must be an http(s) URL, got %q", c.GoogleIssuerURL)
	}
	return nil
}

// AccessTTL is the lifetime of access tokens.
func (c Config) AccessTTL() time.Duration { return time.Duration(c.AccessTTLMinutes) * time.Minute }

// RefreshTTL is the lifetime of refresh tokens.
func (c Config) RefreshTTL() time.Duration { return time.Duration(c.RefreshTTLDays) * 24 * time.Hour }

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	if err := cfg.Section("auth", &c); err != nil {
		return c, err
	}
	switch c.DevLoginEnabled {
	case "true":
		c.DevLogin = true
	case "auto":
		c.DevLogin = cfg.Environment == config.Development && cfg.IsSQLite()
	}
	if cfg.IsProduction() {
		if c.DevLoginEnabled == "true" {
			return c, cfg.Refuse("auth.dev_login_enabled", "refused in production")
		}
		if c.GoogleClientID == "" {
			return c, cfg.Refuse("auth.google_client_id", "required in production (set GOOGLE_CLIENT_ID)")
		}
	}
	return c, nil
}

func newKeyring(c Config, cfg *config.Config, log *zap.Logger) (*keyring, error) {
	return loadKeys(c, cfg.DataDir, cfg.IsProduction(), log.Named("auth"))
}

func models() platform.Models {
	return platform.Models{Module: "auth", List: []any{&User{}, &Session{}, &RefreshToken{}}}
}
