// Package testkit gives a test a fresh database, a composed app on it, a
// signed-in user and an HTTP client in a few lines, so that each test shows
// only what it is about.
//
// The database is PostgreSQL when TEST_DATABASE_URL is set (each test gets its
// own database, dropped afterwards) and an SQLite file in the test's temporary
// directory otherwise.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
)

// EnvDatabaseURL names the variable that selects PostgreSQL for tests.
const EnvDatabaseURL = "TEST_DATABASE_URL"

// Postgres reports whether the tests run on PostgreSQL.
func Postgres() bool { return os.Getenv(EnvDatabaseURL) != "" }

// Dialect is "postgres" or "sqlite", for test names and skips.
func Dialect() string {
	if Postgres() {
		return "postgres"
	}
	return "sqlite"
}

// NewDatabase returns the DATABASE_URL of a new, empty database that is
// removed when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDatabaseURL)
	if base == "" {
		return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvDatabaseURL, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "pftest_" + hex.EncodeToString(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvDatabaseURL, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// OpenDB opens a new, empty database (see NewDatabase) with the
// application's configuration and overrides (key, value pairs), not
// migrated.
func OpenDB(t testing.TB, overrides ...any) *database.DB {
	t.Helper()
	o := map[string]any{"database.url": NewDatabase(t)}
	for i := 0; i+1 < len(overrides); i += 2 {
		o[overrides[i].(string)] = overrides[i+1]
	}
	cfg, err := config.Load(config.Options{LookupEnv: func(string) (string, bool) { return "", false }, Overrides: o})
	if err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(context.Background(), cfg, zap.NewNop(), clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// InternalURLs is the table of URLs that name internal hosts
// (platform/safeurl/testdata/internal_urls.txt): safeurl's own test and
// every route that takes a URL from a user must refuse each.
func InternalURLs(t testing.TB) []string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "platform", "safeurl", "testdata", "internal_urls.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}
