package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/platform/config"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 8000 || c.Environment != "development" || c.Database.URL != "sqlite:data/perpetua.db" ||
		c.RateLimit.GeneralPerMinute != 100 || c.RateLimit.AIPerMinute != 20 || c.RateLimit.AuthPerMinute != 10 ||
		c.Idempotency.TTL != 24*time.Hour || len(c.Server.CORSOrigins) != 1 || c.Server.CORSOrigins[0] != "http://localhost:3000" {
		t.Fatalf("defaults: %+v", c)
	}
	if !c.IsSQLite() || !c.AutoMigrate() {
		t.Fatal("SQLite default should migrate at start")
	}
}

func TestTheDefaultDatabaseLivesInTheDataDir(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Options{LookupEnv: env(map[string]string{"DATA_DIR": "/srv/perpetua"})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.URL != "sqlite:/srv/perpetua/perpetua.db" {
		t.Fatalf("database.url %q", c.Database.URL)
	}
	c, err = config.Load(config.Options{LookupEnv: env(map[string]string{"DATA_DIR": "/srv/perpetua",
		"DATABASE_URL": "sqlite:/elsewhere.db"})})
	if err != nil || c.Database.URL != "sqlite:/elsewhere.db" {
		t.Fatalf("an explicit DATABASE_URL was not kept: %v %v", c.Database.URL, err)
	}
}

func TestPlainAndPrefixedEnvironmentNames(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Options{LookupEnv: env(map[string]string{
		"PORT":                      "9000",
		"DATABASE_URL":              "postgres://u@h/db",
		"ENVIRONMENT":               "staging",
		"CORS_ORIGINS":              `["https://a.example", "https://b.example"]`,
		"RATE_LIMIT_AI":             "7",
		"PERPETUA_LOG_LEVEL":        "debug",
		"JWT_ACCESS_EXPIRY_MINUTES": "30",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9000 || c.Database.URL != "postgres://u@h/db" || c.Environment != "staging" ||
		c.RateLimit.AIPerMinute != 7 || c.Log.Level != "debug" || len(c.Server.CORSOrigins) != 2 {
		t.Fatalf("env not applied: %+v", c)
	}
	if c.AutoMigrate() {
		t.Fatal("PostgreSQL in staging should not migrate at start by default")
	}
	var auth struct {
		TTL int `mapstructure:"access_token_ttl_minutes"`
	}
	if err := c.Section("auth", &auth); err != nil || auth.TTL != 30 {
		t.Fatalf("module section: %v %+v", err, auth)
	}

	comma, err := config.Load(config.Options{LookupEnv: env(map[string]string{"CORS_ORIGINS": "https://a.example, https://b.example"})})
	if err != nil || len(comma.Server.CORSOrigins) != 2 || comma.Server.CORSOrigins[1] != "https://b.example" {
		t.Fatalf("comma list: %v %v", err, comma)
	}
	// The prefixed name wins over the plain one.
	both, err := config.Load(config.Options{LookupEnv: env(map[string]string{"PORT": "1", "PERPETUA_SERVER_PORT": "2"})})
	if err != nil || both.Server.Port != 2 {
		t.Fatalf("precedence: %v %d", err, both.Server.Port)
	}
}

func TestFileLayersBetweenDefaultsAndEnvironment(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("server:\n  port: 7000\n  ops_port: 7001\nlog:\n  level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.Options{File: path, LookupEnv: env(map[string]string{"PORT": "7500"})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 7500 || c.Server.OpsPort != 7001 || c.Log.Level != "warn" || c.Server.BodyLimitBytes != 1048576 {
		t.Fatalf("layers: %+v", c.Server)
	}
	if _, err := config.Load(config.Options{File: filepath.Join(t.TempDir(), "missing.yaml"), LookupEnv: env(nil)}); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

func TestBadValuesNameTheKeyAndVariable(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"not a number": {map[string]string{"PORT": "eighty"}, "server.port (from PORT)"},
		"out of range": {map[string]string{"PORT": "70000"}, "server.port (from PORT)"},
		"environment":  {map[string]string{"ENVIRONMENT": "prod"}, "environment (from ENVIRONMENT)"},
		"duration":     {map[string]string{"PERPETUA_IDEMPOTENCY_TTL": "forever"}, "idempotency.ttl (from PERPETUA_IDEMPOTENCY_TTL)"},
		"database":     {map[string]string{"DATABASE_URL": "mysql://x"}, "database.url (from DATABASE_URL)"},
		"level":        {map[string]string{"LOG_LEVEL": "loud"}, "log.level (from LOG_LEVEL)"},
		"log flush":    {map[string]string{"PERPETUA_LOG_FLUSH_INTERVAL": "1m"}, "log.flush_interval (from PERPETUA_LOG_FLUSH_INTERVAL)"},
		"write buffer": {map[string]string{"PERPETUA_SERVER_WRITE_BUFFER_BYTES": "512"}, "server.write_buffer_bytes (from PERPETUA_SERVER_WRITE_BUFFER_BYTES)"},
		"rate":         {map[string]string{"RATE_LIMIT_GENERAL": "0"}, "rate_limit.general_per_minute (from RATE_LIMIT_GENERAL)"},
		"memory":       {map[string]string{"PERPETUA_SERVER_MEMORY_LIMIT": "lots"}, "server.memory_limit (from PERPETUA_SERVER_MEMORY_LIMIT)"},
		"cors":         {map[string]string{"CORS_ORIGINS": "[not json"}, "server.cors_origins (from CORS_ORIGINS)"},
		"star in prod": {map[string]string{"ENVIRONMENT": "production", "CORS_ORIGINS": "*"}, "server.cors_origins"},
		"redis":        {map[string]string{"REDIS_URL": "localhost:6379"}, "redis.url (from REDIS_URL)"},
		"auto migrate": {map[string]string{"PERPETUA_DATABASE_AUTO_MIGRATE": "sometimes"}, "database.auto_migrate"},
		"pooler":       {map[string]string{"PERPETUA_DATABASE_POOLER": "pgpool"}, "database.pooler (from PERPETUA_DATABASE_POOLER)"},
		"pooler, sqlite": {map[string]string{"PERPETUA_DATABASE_POOLER": "pgbouncer", "DATABASE_URL": "sqlite:x.db"},
			"database.pooler (from PERPETUA_DATABASE_POOLER)"},
		"direct url": {map[string]string{"PERPETUA_DATABASE_DIRECT_URL": "localhost:5432"}, "database.direct_url"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(config.Options{LookupEnv: env(c.env)})
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q should be one line naming %q", msg, c.want)
			}
		})
	}
}

type section struct {
	Size int `mapstructure:"max_tasks"`
}

func (s section) Validate() error {
	if s.Size > 10 {
		return config.Invalid("max_tasks", "too many")
	}
	return nil
}

func TestSectionValidationNamesTheFullKey(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Options{LookupEnv: env(map[string]string{"PERPETUA_LIMITS_FREE_MAX_TASKS": "50"})})
	if err != nil {
		t.Fatal(err)
	}
	var s section
	err = c.Section("limits.free", &s)
	if err == nil || !strings.Contains(err.Error(), "limits.free.max_tasks (from PERPETUA_LIMITS_FREE_MAX_TASKS): too many") {
		t.Fatalf("error: %v", err)
	}
}
