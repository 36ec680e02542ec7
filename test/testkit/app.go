package testkit

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/app"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/server"
)

// App is a composed application running for one test.
type App struct {
	// URL is the public API (the ops listener in the worker role); OpsURL the
	// ops listener (health, metrics).
	URL    string
	OpsURL string
	Clock  *clock.Fake
	DB     *database.DB
	Issuer *Issuer
	Config *config.Config
	Queue  *jobs.Queue

	fx       *fx.App
	client   *http.Client
	stopOnce sync.Once
	stopErr  error
}

type options struct {
	role      platform.Role
	overrides map[string]any
	dbURL     string
	extra     []fx.Option
	modules   []platform.Module
}

// Option adjusts Start.
type Option func(*options)

// WithConfig overrides one configuration key.
func WithConfig(key string, value any) Option {
	return func(o *options) { o.overrides[key] = value }
}

// WithRole runs the app in another role than all.
func WithRole(r platform.Role) Option { return func(o *options) { o.role = r } }

// WithDatabase runs on an existing database (to share it between apps).
func WithDatabase(url string) Option { return func(o *options) { o.dbURL = url } }

// WithFx adds fx options (e.g. an event subscriber for a test).
func WithFx(opts ...fx.Option) Option { return func(o *options) { o.extra = append(o.extra, opts...) } }

// Start composes and starts the app on a fresh database with a fake clock
// standing at the current time, a local Google issuer, dev login, and rate
// limits high enough not to interfere (tests of limits lower them).
func Start(t testing.TB, opts ...Option) *App {
	t.Helper()
	o := &options{role: platform.RoleAll, overrides: map[string]any{}}
	for _, opt := range opts {
		opt(o)
	}
	if o.dbURL == "" {
		o.dbURL = NewDatabase(t)
	}
	iss := NewIssuer(t)
	defaults := map[string]any{
		"environment":                   "development",
		"data_dir":                      t.TempDir(),
		"log.level":                     "error",
		"database.url":                  o.dbURL,
		"database.auto_migrate":         "true",
		"server.port":                   0,
		"server.ops_port":               0,
		"server.shutdown_timeout":       "5s",
		"auth.google_issuer_url":        iss.URL,
		"auth.google_client_id":         iss.ClientID,
		"auth.dev_login_enabled":        "true",
		"auth.jwt_private_key":          PrivateKeyPEM(t),
		"rate_limit.general_per_minute": 100000,
		"rate_limit.ai_per_minute":      100000,
		"rate_limit.auth_per_minute":    100000,
		"jobs.poll_interval":            "50ms",
		// Tests change users' tiers and sessions straight in the database, as
		// another instance would; the cache's own tests turn it on.
		"auth.session_cache_ttl": "0s",
	}
	for k, v := range o.overrides {
		defaults[k] = v
	}
	cfg, err := config.Load(config.Options{LookupEnv: func(string) (string, bool) { return "", false }, Overrides: defaults})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	a := &App{Clock: fake, Issuer: iss, Config: cfg, client: &http.Client{Timeout: 30 * time.Second}}
	var srv *server.Server
	var ops *server.Ops
	populate := []fx.Option{
		fx.Decorate(func(clock.Clock) clock.Clock { return fake }),
		fx.Populate(&a.DB, &a.Queue),
		fx.NopLogger,
	}
	populate = append(populate, fx.Populate(&ops))
	if o.role.ServesAPI() {
		populate = append(populate, fx.Populate(&srv))
	}
	a.fx = fx.New(app.Compose(cfg, o.role, o.modules, append(populate, o.extra...)...))
	if err := a.fx.Err(); err != nil {
		t.Fatalf("compose app: %v", app.StartError(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.fx.Start(ctx); err != nil {
		t.Fatalf("start app: %v", app.StartError(err))
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("stop app: %v", err)
		}
	})
	a.OpsURL = "http://127.0.0.1:" + portOf(ops.Addr())
	a.URL = a.OpsURL
	if srv != nil {
		a.URL = "http://127.0.0.1:" + portOf(srv.Addr())
	}
	return a
}

// Stop shuts the app down as on SIGTERM (once; later calls return the first
// result).
func (a *App) Stop() error {
	a.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.stopErr = a.fx.Stop(ctx)
	})
	return a.stopErr
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// PrivateKeyPEM is an RSA key for access tokens, generated once per process.
func PrivateKeyPEM(t testing.TB) string {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey(t, 0))
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// User is a signed-in user.
type User struct {
	ID           uuid.UUID
	Email        string
	AccessToken  string
	RefreshToken string
}

// SignIn signs a user in through the Google flow (creating them the first
// time) and returns their tokens.
func (a *App) SignIn(t testing.TB, email string) *User {
	t.Helper()
	res := a.Do(t, nil, http.MethodPost, "/api/v1/auth/google/callback",
		map[string]any{"id_token": a.Issuer.IDToken(t, GoogleClaims{Email: email, Name: strings.Split(email, "@")[0], IssuedAt: a.Clock.Now()})})
	res.Expect(t, http.StatusOK)
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		User         struct {
			ID uuid.UUID `json:"id"`
		} `json:"user"`
	}
	res.Decode(t, &body)
	return &User{ID: body.User.ID, Email: email, AccessToken: body.AccessToken, RefreshToken: body.RefreshToken}
}

// Request is a request to send; zero values are fine.
type Request struct {
	Method  string
	Path    string
	Body    any // marshalled as JSON unless []byte or string
	Headers map[string]string
}

// Response is what came back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends method path with body as JSON, with u's token when u is not nil.
func (a *App) Do(t testing.TB, u *User, method, path string, body any) *Response {
	t.Helper()
	return a.Send(t, u, Request{Method: method, Path: path, Body: body})
}

// Send sends r, with u's token when u is not nil. The Content-Type is
// application/json on every request, as the web client sends it.
func (a *App) Send(t testing.TB, u *User, r Request) *Response {
	t.Helper()
	res, err := a.Call(u, r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Call is Send for goroutines other than the test's own: it reports a
// failure to send as an error instead of ending the test.
func (a *App) Call(u *User, r Request) (*Response, error) {
	return Call(a.client, a.URL, u, r)
}

// Call sends r to the server at base with client (tests of processes other
// than a composed App use it too).
func Call(client *http.Client, base string, u *User, r Request) (*Response, error) {
	var reader io.Reader
	switch b := r.Body.(type) {
	case nil:
	case []byte:
		reader = bytes.NewReader(b)
	case string:
		reader = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("marshal body: %w", err)
		}
		reader = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(r.Method, base+r.Path, reader)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if u != nil {
		req.Header.Set("Authorization", "Bearer "+u.AccessToken)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Expect fails the test unless the status is want.
func (r *Response) Expect(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %s", r.Status, want, r.Body)
	}
	return r
}

// Decode unmarshals the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// JSON returns the body as a generic map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.Decode(t, &m)
	return m
}

// Data returns the "data" object of an envelope.
func (r *Response) Data(t testing.TB) map[string]any {
	t.Helper()
	d, ok := r.JSON(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object in %s", r.Body)
	}
	return d
}

// List returns the "data" array of a list envelope.
func (r *Response) List(t testing.TB) []map[string]any {
	t.Helper()
	var env struct {
		Data []map[string]any `json:"data"`
	}
	r.Decode(t, &env)
	if env.Data == nil {
		t.Fatalf("no data array in %s", r.Body)
	}
	return env.Data
}

// ErrorCode returns error.code of an error envelope.
func (r *Response) ErrorCode(t testing.TB) string {
	t.Helper()
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	r.Decode(t, &env)
	return env.Error.Code
}

// ExpectError fails unless the answer is an error envelope with status and
// code.
func (r *Response) ExpectError(t testing.TB, status int, code string) *Response {
	t.Helper()
	r.Expect(t, status)
	if got := r.ErrorCode(t); got != code {
		t.Fatalf("error code %q, want %q; body: %s", got, code, r.Body)
	}
	return r
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Count returns the rows of table matching where.
func (a *App) Count(t testing.TB, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	q := a.DB.Gorm.Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Modules composes only the given modules, with the modules they declare
// they need, the core ones (auth, jobs) and the platform: a module's tests
// show which other modules it really uses, and a missing dependency fails at
// start, named by fx.
func Modules(mods ...platform.Module) Option {
	return func(o *options) { o.modules = append(o.modules, mods...) }
}
