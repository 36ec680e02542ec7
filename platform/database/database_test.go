package database_test

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

func open(t *testing.T) *database.DB {
	t.Helper()
	cfg, err := config.Load(config.Options{LookupEnv: func(string) (string, bool) { return "", false },
		Overrides: map[string]any{"database.url": testkit.NewDatabase(t)}})
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

// River's SQLite migrations need jsonb (SQLite 3.45+); a downgrade of the
// pinned modernc.org/sqlite must fail here, loudly.
func TestSQLiteHasJSONB(t *testing.T) {
	db := open(t)
	if db.Dialect != database.SQLite {
		t.Skip("SQLite only")
	}
	var out string
	if err := db.Gorm.Raw(`SELECT json(jsonb('{"a":1}'))`).Scan(&out).Error; err != nil {
		t.Fatalf("jsonb unavailable: %v", err)
	}
	if out != `{"a":1}` {
		t.Fatalf("jsonb round trip: %q", out)
	}
}

func TestMigrationsApplyTwiceAndDetectUniqueViolations(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	for range 2 {
		if err := db.Migrate(ctx, migrations.All(), migrations.River); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	err := db.Gorm.Exec(`INSERT INTO users (id, google_id, email, name, timezone, tier, version, created_at, updated_at)
		VALUES ('018f0000-0000-7000-8000-000000000001', 'g-1', 'a@b.co', 'a', 'UTC', 'free', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`).Error
	if err != nil {
		t.Fatal(err)
	}
	err = db.Gorm.Exec(`INSERT INTO users (id, google_id, email, name, timezone, tier, version, created_at, updated_at)
		VALUES ('018f0000-0000-7000-8000-0000000000ff', 'g-1', 'x@b.co', 'x', 'UTC', 'free', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`).Error
	if !database.IsUniqueViolation(err) {
		t.Fatalf("not recognised as a unique violation: %v", err)
	}
	if database.IsUniqueViolation(nil) {
		t.Fatal("nil is not a violation")
	}
	var n int
	if err := db.Gorm.Raw("SELECT count(*) FROM river_migration").Scan(&n).Error; err != nil || n != migrations.RiverVersion {
		t.Fatalf("river migrations: %d %v", n, err)
	}
}

func TestEscapeLike(t *testing.T) {
	if got := database.EscapeLike(`50%_off\`); got != `50\%\_off\\` {
		t.Fatalf("%q", got)
	}
}

func TestPingFailsOnAClosedPool(t *testing.T) {
	db := open(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	db.Close()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("ping succeeded on a closed pool")
	}
}
