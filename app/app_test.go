package app_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/fx"
	"gorm.io/gorm/schema"

	"github.com/perpetuaflow/api/app"
	"github.com/perpetuaflow/api/modules/account"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/userdata"
	"github.com/perpetuaflow/api/test/testkit"
)

type modelsIn struct {
	fx.In
	Models []platform.Models `group:"models"`
}

// TestMigrationsCreateEveryModel checks that the migrations create every
// table and column the modules' models map, on both dialects.
func TestMigrationsCreateEveryModel(t *testing.T) {
	t.Parallel()
	var in modelsIn
	a := testkit.Start(t, testkit.WithFx(fx.Populate(&in)))
	if len(in.Models) < 2 {
		t.Fatalf("only %d modules contribute models", len(in.Models))
	}
	m := a.DB.Gorm.Migrator()
	for _, group := range in.Models {
		for _, model := range group.List {
			s, err := schema.Parse(model, &sync.Map{}, a.DB.Gorm.NamingStrategy)
			if err != nil {
				t.Fatalf("%s: parse %T: %v", group.Module, model, err)
			}
			if !m.HasTable(s.Table) {
				t.Errorf("%s: table %s is not created by the migrations", group.Module, s.Table)
				continue
			}
			for _, f := range s.Fields {
				if f.DBName != "" && !m.HasColumn(model, f.DBName) {
					t.Errorf("%s: column %s.%s is not created by the migrations", group.Module, s.Table, f.DBName)
				}
			}
		}
	}
}

func TestParseRole(t *testing.T) {
	t.Parallel()
	sqlite := &config.Config{Database: config.DatabaseConfig{URL: "sqlite:x.db"}}
	pg := &config.Config{Database: config.DatabaseConfig{URL: "postgres://x"}}
	for _, c := range []struct {
		role string
		cfg  *config.Config
		ok   bool
	}{
		{"all", sqlite, true}, {"api", sqlite, false}, {"worker", sqlite, false},
		{"api", pg, true}, {"worker", pg, true}, {"all", pg, true}, {"both", pg, false},
	} {
		_, err := app.ParseRole(c.role, c.cfg)
		if (err == nil) != c.ok {
			t.Errorf("role %s on %s: err %v", c.role, c.cfg.Database.URL, err)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := app.Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	if code, out, _ := runCLI(t, "version"); code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
	t.Setenv("DATABASE_URL", "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if code, _, stderr := runCLI(t, "--role=worker"); code != 2 || !strings.Contains(stderr, "PostgreSQL") {
		t.Fatalf("worker on SQLite: %d %q", code, stderr)
	}
}

func TestStartRefusals(t *testing.T) {
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"bad value":             {map[string]string{"PORT": "http"}, "config: server.port (from PORT)"},
		"dev login in prod":     {map[string]string{"ENVIRONMENT": "production", "DEV_LOGIN_ENABLED": "true", "GOOGLE_CLIENT_ID": "x"}, "auth.dev_login_enabled"},
		"no client id in prod":  {map[string]string{"ENVIRONMENT": "production"}, "auth.google_client_id"},
		"no keys in production": {map[string]string{"ENVIRONMENT": "production", "GOOGLE_CLIENT_ID": "x"}, "auth.jwt_private_key"},
		"bad key":               {map[string]string{"JWT_PRIVATE_KEY": "not a key"}, "auth.jwt_private_key"},
		"needed module left out": {map[string]string{"PERPETUA_MODULES_DISABLED": "tasks"},
			"modules.disabled (from PERPETUA_MODULES_DISABLED): tasks cannot be left out: it is needed by ai, gamification, notes, notifications (leave them out too)"},
		"core module left out": {map[string]string{"PERPETUA_MODULES_DISABLED": "notes,auth"}, "auth cannot be left out"},
		"unknown module":       {map[string]string{"PERPETUA_MODULES_DISABLED": "billing2"}, `"billing2" is not a module`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
			t.Setenv("DATA_DIR", t.TempDir())
			t.Setenv("PORT", "0")
			t.Setenv("OPS_PORT", "0")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(t)
			if code != 1 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Fatalf("exit %d, stderr %q; want one line naming %s", code, stderr, c.want)
			}
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	url := testkit.NewDatabase(t)
	t.Setenv("DATABASE_URL", url)
	code, out, stderr := runCLI(t, "migrate")
	if code != 0 || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %d %q %q", code, out, stderr)
	}
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Migrate(context.Background(), cfg); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	a := testkit.Start(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(a.URL, "http://"), ":")
	t.Setenv("PORT", port)
	if code, _, stderr := runCLI(t, "healthcheck"); code != 0 {
		t.Fatalf("healthcheck of a ready server: %d %q", code, stderr)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "healthcheck"); code != 1 {
		t.Fatalf("healthcheck of a stopped server: %d", code)
	}
}

// A deployment leaves out an optional module: its routes answer 404, its
// items stay out of the recycle bin's list, and the rest works.
func TestModulesCanBeLeftOut(t *testing.T) {
	t.Parallel()
	db := testkit.NewDatabase(t)
	full := testkit.Start(t, testkit.WithDatabase(db))
	alice := full.SignIn(t, "alice@example.com")
	note := full.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "n"}).Expect(t, http.StatusCreated).Data(t)
	full.Do(t, alice, http.MethodDelete, "/api/v1/notes/"+note["id"].(string), nil).Expect(t, http.StatusOK)
	if err := full.Stop(); err != nil {
		t.Fatal(err)
	}

	lean := testkit.Start(t, testkit.WithDatabase(db), testkit.WithConfig("modules.disabled", "ai,notes,notifications"))
	lean.Clock.Set(full.Clock.Now())
	alice = lean.SignIn(t, "alice@example.com")
	lean.Do(t, alice, http.MethodGet, "/api/v1/notes", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	lean.Do(t, alice, http.MethodGet, "/api/v1/notifications", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	lean.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "still works"}).Expect(t, http.StatusCreated)
	if list := lean.Do(t, alice, http.MethodGet, "/api/v1/recovery", nil).Expect(t, http.StatusOK).JSON(t)["data"].([]any); len(list) != 0 {
		t.Fatalf("a note's tombstone is listed without the notes module: %v", list)
	}
	doc := lean.Do(t, nil, http.MethodGet, "/openapi.json", nil).Expect(t, http.StatusOK).JSON(t)
	for path := range doc["paths"].(map[string]any) {
		if strings.HasPrefix(path, "/api/v1/notes") || strings.HasPrefix(path, "/api/v1/notifications") {
			t.Errorf("%s is documented although its module is left out", path)
		}
	}
}

// A module that uses another module's face without declaring the need
// fails at start, and fx names the missing type.
func TestAnUndeclaredNeedIsNamedAtStart(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(config.Options{LookupEnv: func(string) (string, bool) { return "", false },
		Overrides: map[string]any{"database.url": "sqlite::memory:", "data_dir": t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	careless := platform.Module{Name: "careless", Option: fx.Module("careless", fx.Invoke(func(tasks.Lookup) {}))}
	err = fx.New(app.Compose(cfg, platform.RoleAll, []platform.Module{careless}), fx.NopLogger).Err()
	if err == nil || !strings.Contains(err.Error(), "tasks.Lookup") {
		t.Fatalf("start error %v, want one naming tasks.Lookup", err)
	}
	declared := platform.Module{Name: "careful", Needs: []string{"tasks"},
		Option: fx.Module("careful", fx.Invoke(func(tasks.Lookup) {}))}
	if err := fx.New(app.Compose(cfg, platform.RoleAll, []platform.Module{declared}), fx.NopLogger).Err(); err != nil {
		t.Fatalf("a declared need: %v", err)
	}
}

type userdataIn struct {
	fx.In
	Exporters []userdata.Exporter `group:"exporters"`
	Erasers   []userdata.Eraser   `group:"erasers"`
}

// userTables reads from the database every table with a user_id column.
func userTables(t *testing.T, a *testkit.App) []string {
	t.Helper()
	m := a.DB.Gorm.Migrator()
	tables, err := m.GetTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, table := range tables {
		cols, err := m.ColumnTypes(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if c.Name() == "user_id" {
				out = append(out, table)
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d tables with user_id found: %v", len(out), out)
	}
	return out
}

// fillUser gives u a row in as many tables as the API reaches.
func fillUser(t *testing.T, a *testkit.App, u *testkit.User) {
	t.Helper()
	task := a.Do(t, u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).Expect(t, http.StatusCreated).Data(t)
	a.Do(t, u, http.MethodPost, "/api/v1/notes", map[string]any{"content": "n", "task_id": task["id"]}).Expect(t, http.StatusCreated)
	a.Do(t, u, http.MethodPost, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK)
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a.Do(t, u, http.MethodPost, "/api/v1/notifications/push-subscription", map[string]any{
		"endpoint": "https://fcm.googleapis.com/fcm/send/" + u.ID.String(), "auth_key": "tBHItJI5svbpez7KI4CCXg",
		"p256dh_key": base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())}).Expect(t, http.StatusCreated)
}

// TestEveryUserTableIsExportedAndErased: every table with a user_id column
// (read from the database, so a module added later is checked too) is in an
// exporter's list (or one that says why it is not exported) and an
// eraser's (or one that says why it is kept); an exporter gives only the
// user's rows and no secret; erasing Alice leaves no row of hers in any
// such table but the kept ones, and Bob's rows as they were.
func TestEveryUserTableIsExportedAndErased(t *testing.T) {
	t.Parallel()
	var in userdataIn
	var erasure account.Accounts
	a := testkit.Start(t, testkit.WithFx(fx.Populate(&in, &erasure)))
	alice := a.SignIn(t, "alice@example.com")
	bob := a.SignIn(t, "bob@example.com")
	fillUser(t, a, alice)
	fillUser(t, a, bob)

	exported, erased, kept := map[string]bool{}, map[string]bool{}, map[string]bool{}
	names := map[string]bool{}
	for _, e := range in.Exporters {
		if names[e.Name] {
			t.Errorf("two exporters named %s", e.Name)
		}
		names[e.Name] = true
		if (e.Rows == nil) == (e.Skip == "") {
			t.Errorf("%s: an exporter has rows or a reason to skip, one of them", e.Name)
		}
		for _, table := range e.Tables {
			exported[table] = true
		}
	}
	for _, e := range in.Erasers {
		if (e.Erase == nil) == (e.Skip == "") {
			t.Errorf("%s: an eraser erases or says why the rows are kept, one of them", e.Name)
		}
		for _, table := range e.Tables {
			erased[table] = true
			if e.Erase == nil {
				kept[table] = true
			}
		}
	}
	tables := userTables(t, a)
	for _, table := range tables {
		if !exported[table] {
			t.Errorf("table %s has a user_id column and no exporter: add a userdata.Part to the module that owns it", table)
		}
		if !erased[table] {
			t.Errorf("table %s has a user_id column and no eraser: add a userdata.Part to the module that owns it", table)
		}
	}
	if !exported["users"] || !erased["users"] {
		t.Fatal("the users table is not exported and erased")
	}

	q := func(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
		return a.DB.SQL.QueryContext(ctx, a.DB.Rebind(query), args...)
	}
	counts := map[string]int{}
	secrets := []string{"token_hash", "secret_hash", "p256dh_key", "auth_key", "download_token"}
	for _, e := range in.Exporters {
		if e.Rows == nil {
			continue
		}
		err := e.Rows(context.Background(), q, alice.ID, func(r userdata.Row) error {
			counts[e.Name]++
			for _, s := range secrets {
				if _, ok := r[s]; ok {
					t.Errorf("%s exports %s", e.Name, s)
				}
			}
			if uid, ok := r["user_id"]; ok && fmt.Sprint(uid) != alice.ID.String() {
				t.Errorf("%s exports another user's row: %v", e.Name, r)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
	}
	for _, name := range []string{"user", "sessions", "tasks", "notes", "activity", "credit_ledger", "calendar_feed", "push_subscriptions"} {
		if counts[name] < 1 {
			t.Errorf("%s exported no row of Alice's (%v)", name, counts)
		}
	}
	if counts["user"] != 1 || counts["tasks"] != 1 {
		t.Errorf("counts %v: one user and one task are Alice's", counts)
	}

	before := map[string]int64{}
	for _, table := range tables {
		before[table] = a.Count(t, table, "user_id = ?", bob.ID)
	}
	e, err := erasure.EraseNow(context.Background(), alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		n := a.Count(t, table, "user_id = ?", alice.ID)
		if kept[table] {
			if n != 1 {
				t.Errorf("%s: %d rows of Alice's kept, want 1", table, n)
			}
		} else if n != 0 {
			t.Errorf("%s: %d rows of Alice's left after the erasure", table, n)
		}
		if got := a.Count(t, table, "user_id = ?", bob.ID); got != before[table] {
			t.Errorf("%s: Bob had %d rows, has %d after Alice's erasure", table, before[table], got)
		}
	}
	if n := a.Count(t, "users", "id = ?", alice.ID); n != 0 {
		t.Errorf("Alice's user row is still there")
	}
	if n := a.Count(t, "idempotency_keys", "subject = ?", alice.ID.String()); n != 0 {
		t.Errorf("%d stored answers of Alice's left", n)
	}
	if e.Erased["tasks"] != 1 || e.Erased["user"] != 1 || e.Kept["credit_ledger"] == nil {
		t.Errorf("erasure %+v: one task, one user, and the ledger's totals kept", e)
	}
}
