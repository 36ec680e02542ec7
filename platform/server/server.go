// Package server runs the public HTTP API: Fiber underneath, Huma on top (so
// the OpenAPI 3.1 document, /docs and /redoc come from the declared types), and
// the middleware chain every request passes through.
//
// Fiber level, for every request: request id, access log and metrics, panic
// recovery, security headers, CORS. Huma level, for every operation:
// authentication (when the operation declares the bearer scheme), rate
// limiting, idempotency keys.
package server

import (
	"context"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/idempotency"
	"github.com/perpetuaflow/api/platform/observability"
	"github.com/perpetuaflow/api/platform/ratelimit"
)

// Version is reported in the OpenAPI document.
var Version = "1.0.0"

// Server is the public HTTP server.
type Server struct {
	App *fiber.App
	API huma.API

	cfg     *config.Config
	log     *zap.Logger
	access  *zap.Logger // the access log: no caller (always the same line)
	metrics *httpMetrics
	checks  []platform.Check
	ips     *httpx.ClientIPs

	mu   sync.Mutex
	addr net.Addr

	// life's lifetime is cancelled (cancel) when shutdown begins, before the
	// listener closes: long-lived handlers (streams) stop on it, since
	// Fiber's shutdown does not end open streams; shutdown then waits for
	// the streams running on connections taken over from the server.
	life   *httpx.ServerLife
	cancel context.CancelFunc

	tracer trace.Tracer // nil when tracing is off
}

// Params are the dependencies of New.
type Params struct {
	fx.In

	Config      *config.Config
	Log         *zap.Logger
	Registry    *prometheus.Registry
	Auth        httpx.Authenticator
	Limiter     *ratelimit.Limiter
	Idempotency *idempotency.Store
	Routes      []platform.Routes  `group:"routes"`
	Checks      []platform.Check   `group:"checks"`
	JSONItems   []httpx.ItemWriter `group:"json_items"`
	Tracing     *observability.Tracing
}

// New builds the server and registers every module's routes.
func New(p Params) (*Server, error) {
	cfg := p.Config
	ips, err := httpx.NewClientIPs(cfg.Server.ProxyHeader, cfg.Server.TrustedProxies)
	if err != nil {
		return nil, cfg.Refuse("server.trusted_proxies", "%v", err)
	}
	s := &Server{cfg: cfg, log: p.Log, access: p.Log.WithOptions(zap.WithCaller(false)), checks: p.Checks,
		metrics: newHTTPMetrics(p.Registry), ips: ips}
	if p.Tracing.Enabled() {
		s.tracer = p.Tracing.Tracer()
	}
	s.life = &httpx.ServerLife{}
	s.life.Lifetime, s.cancel = context.WithCancel(context.Background())

	s.App = fiber.New(fiber.Config{
		// Fiber reuses request buffers; strings kept beyond a handler (metric
		// labels, ids) would be overwritten by later requests otherwise.
		Immutable:             true,
		DisableStartupMessage: true,
		BodyLimit:             cfg.Server.BodyLimitBytes,
		ReadBufferSize:        cfg.Server.HeaderLimitBytes,
		// A connection holds its read buffer only while a request is read,
		// not while its answer is written: an open stream or an idle
		// keep-alive connection costs a few KB instead of the header limit.
		ReduceMemoryUsage: true,
		WriteBufferSize:   cfg.Server.WriteBufferBytes,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		ErrorHandler:      httpx.FiberErrorHandler(p.Log),
		AppName:           "perpetua",
	})
	// A worker that served a request whose connection a stream took over
	// is idle at once; it and any other idle worker are retired after 2 s
	// (fasthttp keeps them 10 s to 20 s: after a burst of streams, a
	// thousand idle goroutines and their stacks).
	s.App.Server().MaxIdleWorkerDuration = 2 * time.Second
	// A stream whose connection was taken over closes it itself (httpx's
	// takeOver), from a goroutine of its own: fasthttp's request and
	// connection wrapper go back to their pools while the stream waits.
	s.App.Server().KeepHijackedConns = true
	if s.tracer != nil {
		s.App.Use(s.traced)
	}
	s.App.Use(s.requestID, s.observe, s.recover, s.securityHeaders)
	s.App.Use(cors.New(cors.Config{
		AllowOrigins:  joinOrigins(cfg.Server.CORSOrigins),
		AllowMethods:  "GET,POST,PUT,PATCH,DELETE",
		AllowHeaders:  "Authorization,Content-Type,Idempotency-Key,X-Request-ID,X-Task-Id",
		ExposeHeaders: "X-Request-ID,X-Idempotent-Replayed,Retry-After,X-RateLimit-Limit,X-RateLimit-Remaining,X-RateLimit-Reset",
		MaxAge:        600,
	}))
	s.App.Use(s.checkText)

	hc := huma.DefaultConfig("Perpetua Flow API", Version)
	hc.Info.Description = "The HTTP API of Perpetua Flow, an AI-assisted task manager. " +
		"Errors always use the envelope {\"error\": {\"code\", \"message\", \"details\", \"request_id\"}}."
	hc.CreateHooks = nil // no $schema key in responses
	hc.Components.Schemas = httpx.NewSchemaRegistry()
	jsonFormat := huma.Format{Marshal: httpx.NewJSONFormat(p.JSONItems).Marshal, Unmarshal: httpx.UnmarshalRequest}
	hc.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	hc.SchemasPath = ""
	hc.AllowAdditionalPropertiesByDefault = true // the client may send keys we do not use
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		httpx.BearerScheme: {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
	}
	// Huma's own docs page loads its renderer from a CDN; ours are embedded.
	hc.DocsPath = ""
	hc.OpenAPIPath = ""
	if cfg.Server.DocsEnabled {
		hc.OpenAPIPath = "/openapi"
	}
	s.API = humafiber.NewV2(s.App, hc)
	s.API.UseMiddleware(s.authenticate(p.Auth), p.Limiter.Middleware(s.API), p.Idempotency.Middleware(s.API))

	if cfg.Server.DocsEnabled {
		registerDocs(s.App)
	}
	registerHealth(s.API, s.checks)
	for _, r := range p.Routes {
		r.Register(s.API)
	}
	return s, nil
}

// Lifetime is cancelled when the server begins to shut down.
func (s *Server) Lifetime() context.Context { return s.life.Lifetime }

// Addr is the address the server listens on (after start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start listens on the configured port (0 picks a free one) and serves in
// the background.
// ListenError says which setting names a port that cannot be listened on,
// and what to do about it.
func ListenError(key string, port int, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %d: another process listens on it: stop that process or choose another port", key, port)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%s %d: not allowed to listen on it (ports below 1024 need privileges): choose a port above 1024", key, port)
	}
	return fmt.Errorf("%s %d: cannot listen: %w", key, port, err)
}

func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(s.cfg.Server.Port))
	if err != nil {
		return ListenError("server.port (PORT)", s.cfg.Server.Port, err)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	go func() {
		if err := s.App.Listener(ln); err != nil {
			s.log.Error("http server stopped", zap.Error(err))
		}
	}()
	s.log.Info("http server listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Stop ends streams, lets in-flight requests finish (up to the shutdown
// timeout) and closes the listener.
func (s *Server) Stop(ctx context.Context) error {
	s.cancel()
	timeout := s.cfg.Server.ShutdownTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	waitCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.App.ShutdownWithTimeout(timeout); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Streams run on connections taken over from the server: it does not
	// wait for them.
	if err := s.life.Wait(waitCtx); err != nil {
		s.log.Warn("streams still open at the shutdown timeout")
	}
	s.log.Info("http server stopped")
	return nil
}

// Module provides the public server and starts it with the app.
var Module = fx.Module("server",
	fx.Provide(New),
	fx.Invoke(func(lc fx.Lifecycle, s *Server) {
		lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	}),
)

// authenticate is the Huma middleware for operations that declare the bearer
// scheme: no or a bad token is a 401 before anything else runs.
func (s *Server) authenticate(auth httpx.Authenticator) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		if !httpx.RequiresAuth(hctx.Operation()) {
			next(hctx)
			return
		}
		token, ok := httpx.BearerToken(hctx.Header("Authorization"))
		if !ok {
			httpx.WriteError(s.API, hctx, apperr.Unauthorized(apperr.CodeUnauthorized, "missing bearer token"))
			return
		}
		ctx, err := auth.Authenticate(hctx.Context(), token)
		if err != nil {
			httpx.WriteError(s.API, hctx, err)
			return
		}
		next(huma.WithContext(hctx, ctx))
	}
}

func joinOrigins(origins []string) string {
	out := ""
	for i, o := range origins {
		if i > 0 {
			out += ","
		}
		out += o
	}
	return out
}
