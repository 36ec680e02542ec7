// Package config loads the process configuration: configs/default.yaml, then an
// optional file, then environment variables. A bad value is reported as one
// error naming the key (and the variable it came from), so the process can stop
// with one clear line.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/perpetuaflow/api/configs"
)

// EnvPrefix prefixes the generic environment names: server.port is
// PERPETUA_SERVER_PORT.
const EnvPrefix = "PERPETUA_"

// aliases are the plain environment names deployers already use (from the
// original service's .env). They are fixed: scripts rely on them.
var aliases = map[string][]string{
	"environment":                     {"ENVIRONMENT"},
	"data_dir":                        {"DATA_DIR"},
	"frontend_url":                    {"FRONTEND_URL"},
	"log.level":                       {"LOG_LEVEL"},
	"log.format":                      {"LOG_FORMAT"},
	"server.port":                     {"PORT"},
	"server.ops_port":                 {"OPS_PORT"},
	"server.cors_origins":             {"CORS_ORIGINS"},
	"server.public_url":               {"PUBLIC_URL"},
	"database.url":                    {"DATABASE_URL"},
	"redis.url":                       {"REDIS_URL"},
	"rate_limit.general_per_minute":   {"RATE_LIMIT_GENERAL"},
	"rate_limit.ai_per_minute":        {"RATE_LIMIT_AI"},
	"rate_limit.auth_per_minute":      {"RATE_LIMIT_AUTH"},
	"auth.jwt_private_key":            {"JWT_PRIVATE_KEY"},
	"auth.jwt_public_key":             {"JWT_PUBLIC_KEY"},
	"auth.jwt_private_key_path":       {"JWT_PRIVATE_KEY_PATH"},
	"auth.jwt_public_key_path":        {"JWT_PUBLIC_KEY_PATH"},
	"auth.access_token_ttl_minutes":   {"JWT_ACCESS_EXPIRY_MINUTES"},
	"auth.refresh_token_ttl_days":     {"JWT_REFRESH_EXPIRY_DAYS"},
	"auth.google_client_id":           {"GOOGLE_CLIENT_ID"},
	"auth.google_issuer_url":          {"GOOGLE_ISSUER_URL"},
	"auth.dev_login_enabled":          {"DEV_LOGIN_ENABLED"},
	"push.vapid_public_key":           {"VAPID_PUBLIC_KEY"},
	"push.vapid_private_key":          {"VAPID_PRIVATE_KEY"},
	"push.vapid_contact_email":        {"VAPID_CONTACT_EMAIL"},
	"ai.api_key":                      {"OPENAI_API_KEY"},
	"ai.base_url":                     {"OPENAI_BASE_URL"},
	"ai.model":                        {"OPENAI_MODEL"},
	"ai.transcription.api_key":        {"DEEPGRAM_API_KEY"},
	"ai.transcription.base_url":       {"DEEPGRAM_BASE_URL"},
	"billing.checkout.api_url":        {"CHECKOUT_API_URL"},
	"billing.checkout.secret_key":     {"CHECKOUT_SECRET_KEY"},
	"billing.checkout.webhook_secret": {"CHECKOUT_WEBHOOK_SECRET"},
}

// Environments.
const (
	Development = "development"
	Staging     = "staging"
	Production  = "production"
)

// Config is the platform part of the configuration. Modules read their own
// sections with Section, so that the keys a module uses live beside it.
type Config struct {
	Environment string            `mapstructure:"environment"`
	DataDir     string            `mapstructure:"data_dir"`
	FrontendURL string            `mapstructure:"frontend_url"`
	Log         LogConfig         `mapstructure:"log"`
	Server      ServerConfig      `mapstructure:"server"`
	Database    DatabaseConfig    `mapstructure:"database"`
	Redis       RedisConfig       `mapstructure:"redis"`
	RateLimit   RateLimitConfig   `mapstructure:"rate_limit"`
	Idempotency IdempotencyConfig `mapstructure:"idempotency"`
	Modules     ModulesConfig     `mapstructure:"modules"`

	v          *viper.Viper
	sources    map[string]string // key -> the environment variable (or "file PATH") it was taken from
	overridden map[string]bool   // keys set by Options.Overrides
}

// LogConfig configures the zap logger.
type LogConfig struct {
	Level string `mapstructure:"level"`
	// Format is json, console, or empty: console in development on a
	// terminal, else json.
	Format string `mapstructure:"format"`
	// FlushInterval is how long info and debug lines may wait in a buffer
	// before they are written (a warning or an error writes them at once);
	// 0 writes every line as it is logged.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// ServerConfig configures the HTTP listeners.
type ServerConfig struct {
	Port             int           `mapstructure:"port"`
	OpsPort          int           `mapstructure:"ops_port"`
	BodyLimitBytes   int           `mapstructure:"body_limit_bytes"`
	HeaderLimitBytes int           `mapstructure:"header_limit_bytes"`
	WriteBufferBytes int           `mapstructure:"write_buffer_bytes"`
	ReadTimeout      time.Duration `mapstructure:"read_timeout"`
	WriteTimeout     time.Duration `mapstructure:"write_timeout"`
	IdleTimeout      time.Duration `mapstructure:"idle_timeout"`
	ShutdownTimeout  time.Duration `mapstructure:"shutdown_timeout"`
	DocsEnabled      bool          `mapstructure:"docs_enabled"`
	PprofEnabled     bool          `mapstructure:"pprof_enabled"`
	MemoryLimit      string        `mapstructure:"memory_limit"`
	CORSOrigins      []string      `mapstructure:"cors_origins"`
	ProxyHeader      string        `mapstructure:"proxy_header"`
	// PublicURL is the API's address as users' apps reach it (links the API
	// hands out, such as calendar feeds); empty: http://localhost:<port>.
	PublicURL      string   `mapstructure:"public_url"`
	TrustedProxies []string `mapstructure:"trusted_proxies"`
}

// DatabaseConfig configures the database connection.
type DatabaseConfig struct {
	URL string `mapstructure:"url"`
	// Pooler names what url points at when it is not PostgreSQL itself:
	// "pgbouncer" (transaction pooling) switches pgx to statements
	// PgBouncer can pass and keeps sessions (LISTEN, the migration lock)
	// on DirectURL; "none" is PostgreSQL.
	Pooler string `mapstructure:"pooler"`
	// DirectURL is PostgreSQL itself, behind the pooler: the few
	// connections that need a session of their own use it.
	DirectURL       string        `mapstructure:"direct_url"`
	AutoMigrate     string        `mapstructure:"auto_migrate"`
	MaxOpenConns    int           `mapstructure:"max_open_conns"`
	MaxIdleConns    int           `mapstructure:"max_idle_conns"`
	ConnMaxLifetime time.Duration `mapstructure:"conn_max_lifetime"`
	BusyTimeout     time.Duration `mapstructure:"busy_timeout"`
	SlowQuery       time.Duration `mapstructure:"slow_query_threshold"`
}

// RedisConfig configures the optional Redis connection.
type RedisConfig struct {
	URL string `mapstructure:"url"`
}

// RateLimitConfig holds the per-minute request budgets.
type RateLimitConfig struct {
	GeneralPerMinute int `mapstructure:"general_per_minute"`
	AIPerMinute      int `mapstructure:"ai_per_minute"`
	AuthPerMinute    int `mapstructure:"auth_per_minute"`
}

// IdempotencyConfig configures the Idempotency-Key store.
type IdempotencyConfig struct {
	TTL         time.Duration `mapstructure:"ttl"`
	WaitTimeout time.Duration `mapstructure:"wait_timeout"`
}

// ModulesConfig says which optional modules a deployment leaves out.
type ModulesConfig struct {
	Disabled []string `mapstructure:"disabled"`
}

// Options tell Load where to look. The zero value reads the process
// environment and no file.
type Options struct {
	// File is an optional YAML file layered over the defaults.
	File string
	// LookupEnv reads environment variables; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// Overrides are set last, by key (tests use them).
	Overrides map[string]any
}

// Load builds the configuration and validates it.
func Load(opts Options) (*Config, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.Default)); err != nil {
		return nil, fmt.Errorf("config: read defaults: %w", err)
	}
	file := opts.File
	var fileKeys []string
	if file == "" {
		file, _ = lookup(EnvPrefix + "CONFIG")
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		err = v.MergeConfig(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
		fileKeys, err = keysOf(file)
		if err != nil {
			return nil, err
		}
	}
	// Every key is a default, so the environment can set any of them: viper's
	// Unmarshal ignores environment-only keys otherwise.
	sources := map[string]string{}
	for _, key := range fileKeys {
		sources[key] = "file " + file
	}
	for _, key := range v.AllKeys() {
		names := append([]string{EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))}, aliases[key]...)
		for _, name := range names {
			if val, ok := lookup(name); ok {
				v.Set(key, val)
				sources[key] = name
				break
			}
		}
	}
	overridden := map[string]bool{}
	for key, val := range opts.Overrides {
		v.Set(key, val)
		delete(sources, key)
		overridden[key] = true
	}

	c := &Config{v: v, sources: sources, overridden: overridden}
	if err := c.decode("", c); err != nil {
		return nil, err
	}
	if c.Database.URL == "" {
		// The embedded database lives with the other generated files.
		c.Database.URL = "sqlite:" + filepath.Join(c.DataDir, "perpetua.db")
		c.v.Set("database.url", c.Database.URL)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// keysOf lists the keys a YAML file sets.
func keysOf(file string) ([]string, error) {
	v := viper.New()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", file, err)
	}
	return v.AllKeys(), nil
}

// Section decodes the configuration under key into out (a pointer to a struct
// with mapstructure tags). If out has a Validate() error method it is called,
// and its error is reported under key.
func (c *Config) Section(key string, out any) error {
	if err := c.decode(key, out); err != nil {
		return err
	}
	if val, ok := out.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return c.keyError(key, err)
		}
	}
	return nil
}

// Refuse reports a bad value for key (a full key such as modules.disabled),
// naming the environment variable it came from, for checks made outside
// this package.
func (c *Config) Refuse(key, format string, args ...any) error {
	return c.keyError("", Invalid(key, format, args...))
}

// Invalid reports a bad value for key, naming the environment variable it came
// from. Validate methods return it (with the key relative to their section).
func Invalid(key, format string, args ...any) error {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// KeyError is a configuration error tied to one key.
type KeyError struct {
	Key    string
	Source string
	Msg    string
}

func (e *KeyError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("config: %s (from %s): %s", e.Key, e.Source, e.Msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, e.Msg)
}

func (c *Config) keyError(section string, err error) error {
	var ke *KeyError
	if !errors.As(err, &ke) {
		return fmt.Errorf("config: %s: %w", section, err)
	}
	key := ke.Key
	if section != "" {
		key = section + "." + key
	}
	return &KeyError{Key: key, Source: c.sources[key], Msg: ke.Msg}
}

func (c *Config) decode(key string, out any) error {
	// AllSettings merges every layer leaf by leaf; Get on a parent key would
	// return only the highest layer's partial map.
	var raw any = c.v.AllSettings()
	for _, part := range strings.Split(key, ".") {
		if part == "" {
			continue
		}
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("config: %s: not a section", key)
		}
		raw = m[part]
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			stringToList,
		),
	})
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := dec.Decode(raw); err != nil {
		var de *mapstructure.DecodeError
		if errors.As(err, &de) {
			name := strings.TrimPrefix(de.Name(), ".")
			full := name
			if key != "" {
				full = key + "." + name
			}
			msg := de.Unwrap().Error()
			return &KeyError{Key: full, Source: c.sources[full], Msg: msg}
		}
		first := strings.SplitN(err.Error(), "\n", 2)[0]
		return fmt.Errorf("config: %s: %s", key, first)
	}
	return nil
}

// stringToList accepts a list from the environment either as JSON
// (["a","b"]) or comma-separated (a,b).
func stringToList(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	s := strings.TrimSpace(data.(string))
	if s == "" {
		return []string{}, nil
	}
	if strings.HasPrefix(s, "[") {
		var list []string
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, fmt.Errorf("not a JSON list of strings: %w", err)
		}
		return list, nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

func (c *Config) validate() error {
	check := func(ok bool, key, format string, args ...any) error {
		if ok {
			return nil
		}
		return c.keyError("", Invalid(key, format, args...))
	}
	errs := []error{
		check(c.Environment == Development || c.Environment == Staging || c.Environment == Production,
			"environment", "must be development, staging or production, got %q", c.Environment),
		check(httpURL(c.FrontendURL), "frontend_url", "must be an http(s) URL such as https://app.example.com, got %q", c.FrontendURL),
		check(validLevel(c.Log.Level), "log.level", "must be debug, info, warn or error, got %q", c.Log.Level),
		check(c.Log.Format == "" || c.Log.Format == "json" || c.Log.Format == "console", "log.format",
			"must be json or console (or empty: console in development on a terminal), got %q", c.Log.Format),
		check(c.Log.FlushInterval >= 0 && c.Log.FlushInterval <= 10*time.Second, "log.flush_interval",
			"must be between 0s (every line at once) and 10s, got %s", c.Log.FlushInterval),
		check(c.Server.Port >= 0 && c.Server.Port <= 65535, "server.port", "must be 0-65535, got %d", c.Server.Port),
		check(c.Server.OpsPort >= 0 && c.Server.OpsPort <= 65535, "server.ops_port", "must be 0-65535, got %d", c.Server.OpsPort),
		check(c.Server.BodyLimitBytes > 0, "server.body_limit_bytes", "must be positive"),
		check(c.Server.WriteBufferBytes >= 4096 && c.Server.WriteBufferBytes <= 1<<20, "server.write_buffer_bytes",
			"must be between 4096 and 1048576, got %d", c.Server.WriteBufferBytes),
		check(c.Server.HeaderLimitBytes >= 4096 && c.Server.HeaderLimitBytes <= 1<<20, "server.header_limit_bytes",
			"must be 4096-1048576"),
		check(c.Server.ReadTimeout > 0, "server.read_timeout", "must be positive"),
		check(c.Server.WriteTimeout > 0, "server.write_timeout", "must be positive"),
		check(c.Server.ShutdownTimeout > 0, "server.shutdown_timeout", "must be positive"),
		check(c.Server.PublicURL == "" || httpURL(c.Server.PublicURL), "server.public_url",
			"must be an http(s) URL such as https://api.example.com, got %q", c.Server.PublicURL),
		check(validSize(c.Server.MemoryLimit), "server.memory_limit", "must be a size such as 64MiB, or 0, got %q", c.Server.MemoryLimit),
		check(strings.HasPrefix(c.Database.URL, "sqlite:") || strings.HasPrefix(c.Database.URL, "postgres://") ||
			strings.HasPrefix(c.Database.URL, "postgresql://"),
			"database.url", "must start with postgres:// or sqlite:"),
		check(c.Database.AutoMigrate == "auto" || c.Database.AutoMigrate == "true" || c.Database.AutoMigrate == "false",
			"database.auto_migrate", "must be auto, true or false, got %q", c.Database.AutoMigrate),
		check(c.Database.MaxOpenConns > 0, "database.max_open_conns", "must be positive"),
		check(c.Database.Pooler == "none" || c.Database.Pooler == "pgbouncer", "database.pooler",
			"must be none or pgbouncer, got %q", c.Database.Pooler),
		check(c.Database.Pooler == "none" || !c.IsSQLite(), "database.pooler", "is for PostgreSQL (database.url is SQLite)"),
		check(c.Database.DirectURL == "" || strings.HasPrefix(c.Database.DirectURL, "postgres://") ||
			strings.HasPrefix(c.Database.DirectURL, "postgresql://"), "database.direct_url", "must start with postgres://"),
		check(c.RateLimit.GeneralPerMinute > 0, "rate_limit.general_per_minute", "must be positive"),
		check(c.RateLimit.AIPerMinute > 0, "rate_limit.ai_per_minute", "must be positive"),
		check(c.RateLimit.AuthPerMinute > 0, "rate_limit.auth_per_minute", "must be positive"),
		check(c.Idempotency.TTL > 0, "idempotency.ttl", "must be positive"),
		check(c.Idempotency.WaitTimeout > 0, "idempotency.wait_timeout", "must be positive"),
		check(c.Redis.URL == "" || strings.HasPrefix(c.Redis.URL, "redis://") || strings.HasPrefix(c.Redis.URL, "rediss://"),
			"redis.url", "must start with redis:// or rediss://"),
	}
	for _, p := range c.Server.TrustedProxies {
		_, errPrefix := netip.ParsePrefix(p)
		_, errAddr := netip.ParseAddr(p)
		errs = append(errs, check(errPrefix == nil || errAddr == nil, "server.trusted_proxies",
			"%q is not an IP address or CIDR range", p))
	}
	for _, o := range c.Server.CORSOrigins {
		errs = append(errs, check(o == "*" || strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://"),
			"server.cors_origins", "%q is not an http(s) origin", o))
	}
	if c.IsProduction() {
		errs = append(errs, check(!containsStar(c.Server.CORSOrigins), "server.cors_origins", "\"*\" is refused in production"))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// httpURL reports whether s is an absolute http(s) URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func containsStar(list []string) bool {
	for _, s := range list {
		if s == "*" {
			return true
		}
	}
	return false
}

func validLevel(l string) bool {
	switch l {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// MemoryLimitBytes is server.memory_limit in bytes (0: none).
func (c *Config) MemoryLimitBytes() int64 {
	n, _ := humanize.ParseBytes(c.Server.MemoryLimit)
	return int64(min(n, 1<<62))
}

func validSize(s string) bool {
	_, err := humanize.ParseBytes(s)
	return err == nil
}

// PublicBaseURL is where users' apps reach the API, without a trailing
// slash.
func (c *Config) PublicBaseURL() string {
	if c.Server.PublicURL != "" {
		return strings.TrimRight(c.Server.PublicURL, "/")
	}
	return fmt.Sprintf("http://localhost:%d", c.Server.Port)
}

// IsProduction reports whether unsafe settings must be refused.
func (c *Config) IsProduction() bool { return c.Environment == Production }

// IsSQLite reports whether the configured database is the embedded SQLite.
func (c *Config) IsSQLite() bool { return strings.HasPrefix(c.Database.URL, "sqlite:") }

// AutoMigrate reports whether migrations run at start.
func (c *Config) AutoMigrate() bool {
	switch c.Database.AutoMigrate {
	case "true":
		return true
	case "false":
		return false
	}
	return c.IsSQLite() || c.Environment == Development
}

// Tiered is a configuration section with one sub-section per tier (such as
// limits.free and limits.pro), each decoded into T: a module reads only the
// keys it uses.
type Tiered[T any] struct {
	byName   map[string]T
	fallback string
}

// LoadTiered decodes every sub-section of section into T (validating each);
// For falls back to the fallback tier for names it does not know.
func LoadTiered[T any](c *Config, section, fallback string) (Tiered[T], error) {
	t := Tiered[T]{byName: map[string]T{}, fallback: fallback}
	sub, _ := c.v.AllSettings()[section].(map[string]any)
	for name := range sub {
		var v T
		if err := c.Section(section+"."+name, &v); err != nil {
			return t, err
		}
		t.byName[name] = v
	}
	if _, ok := t.byName[fallback]; !ok {
		return t, &KeyError{Key: section + "." + fallback, Msg: "missing"}
	}
	return t, nil
}

// For returns the values of tier.
func (t Tiered[T]) For(tier string) T {
	if v, ok := t.byName[tier]; ok {
		return v
	}
	return t.byName[t.fallback]
}

// DefaultValue is key's value in configs/default.yaml (nil when it has none).
func DefaultValue(key string) any {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.Default)); err != nil {
		return nil
	}
	return v.Get(key)
}

// Setting is one key of the effective configuration and where its value
// came from.
type Setting struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	// Source is "default", "file", the environment variable's name, or
	// "override".
	Source string `json:"source"`
	Secret bool   `json:"secret,omitempty"`
}

// secretWords mark the keys whose values are never printed.
var secretWords = []string{"private_key", "secret", "api_key", "password", "token"}

// Variables lists every environment variable the configuration is read
// from: PERPETUA_CONFIG, each key's PERPETUA_ name and its plain names.
func (c *Config) Variables() []string {
	out := []string{EnvPrefix + "CONFIG"}
	for _, key := range c.v.AllKeys() {
		out = append(out, EnvPrefix+strings.ToUpper(strings.ReplaceAll(key, ".", "_")))
		out = append(out, aliases[key]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Redacted stands for a secret's value.
const Redacted = "(redacted)"

// Settings lists every key of the effective configuration, sorted, with
// its source; secrets (keys, passwords, the password in a URL) redacted.
func (c *Config) Settings() []Setting {
	keys := c.v.AllKeys()
	slices.Sort(keys)
	out := make([]Setting, 0, len(keys))
	for _, key := range keys {
		s := Setting{Key: key, Value: c.v.Get(key), Source: "default"}
		if src, ok := c.sources[key]; ok {
			s.Source = src
		} else if c.overridden[key] {
			s.Source = "override"
		}
		for _, w := range secretWords {
			if strings.Contains(key, w) && !strings.HasSuffix(key, "_path") && !strings.HasSuffix(key, "_ttl") &&
				!strings.Contains(key, "_ttl_") {
				s.Secret = true
			}
		}
		if s.Secret {
			if str, ok := s.Value.(string); !ok || str != "" {
				s.Value = Redacted
			}
		} else if str, ok := s.Value.(string); ok && strings.Contains(str, "://") {
			if u, err := url.Parse(str); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
					s.Value = strings.Replace(u.String(), "xxxxx", Redacted, 1)
				}
			}
		}
		out = append(out, s)
	}
	return out
}
