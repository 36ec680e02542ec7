package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/httpx"
)

const checkTimeout = 3 * time.Second

// Health is the body of /health/live and /health/ready.
type Health struct {
	Status string                 `json:"status" enum:"ok,error"`
	Checks map[string]CheckResult `json:"checks,omitempty"`
}

// CheckResult is the outcome of one readiness check.
type CheckResult struct {
	Status  string `json:"status" enum:"ok,error"`
	Message string `json:"message,omitempty"`
}

// RunChecks runs every check concurrently and reports overall readiness.
func RunChecks(ctx context.Context, checks []platform.Check) Health {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	h := Health{Status: "ok", Checks: map[string]CheckResult{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := CheckResult{Status: "ok"}
			if err := c.Run(ctx); err != nil {
				res = CheckResult{Status: "error", Message: err.Error()}
			}
			mu.Lock()
			defer mu.Unlock()
			h.Checks[c.Name] = res
			if res.Status != "ok" {
				h.Status = "error"
			}
		}()
	}
	wg.Wait()
	return h
}

type healthOutput struct {
	Status int
	Body   Health
}

func registerHealth(api huma.API, checks []platform.Check) {
	live := httpx.WithRateLimit(httpx.Public(httpx.Route(http.MethodGet, "/health/live", "health-live",
		"Liveness: 200 while the process runs", "Health")), httpx.RateNone)
	huma.Register(api, live, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		return &healthOutput{Status: http.StatusOK, Body: Health{Status: "ok"}}, nil
	})
	ready := httpx.WithRateLimit(httpx.Public(httpx.Route(http.MethodGet, "/health/ready", "health-ready",
		"Readiness: 503 when the database or a required dependency is unreachable", "Health")), httpx.RateNone)
	ready.Responses = map[string]*huma.Response{"503": {Description: "Not ready"}}
	huma.Register(api, ready, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		h := RunChecks(ctx, checks)
		status := http.StatusOK
		if h.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		return &healthOutput{Status: status, Body: h}, nil
	})
}

// Ops is the operators' listener on OPS_PORT, in every role: health and the
// Prometheus metrics, which are not for the public API port (per-route
// traffic figures).
type Ops struct {
	srv  *http.Server
	port int
	log  *zap.Logger

	mu   sync.Mutex
	addr net.Addr
}

// OpsParams are the dependencies of NewOps.
type OpsParams struct {
	fx.In

	Config   *config.Config
	Log      *zap.Logger
	Registry *prometheus.Registry
	Checks   []platform.Check `group:"checks"`
}

// NewOps builds the ops listener.
func NewOps(p OpsParams) *Ops {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Health{Status: "ok"})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		h := RunChecks(r.Context(), p.Checks)
		status := http.StatusOK
		if h.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, h)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{Registry: p.Registry}))
	if p.Config.Server.PprofEnabled {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Ops{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		port: p.Config.Server.OpsPort,
		log:  p.Log,
	}
}

// Addr is the address the ops listener is bound to (after start).
func (o *Ops) Addr() net.Addr {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.addr
}

// Start listens on the ops port.
func (o *Ops) Start(context.Context) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(o.port))
	if err != nil {
		return ListenError("server.ops_port (OPS_PORT)", o.port, err)
	}
	o.mu.Lock()
	o.addr = ln.Addr()
	o.mu.Unlock()
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("ops server stopped", zap.Error(err))
		}
	}()
	o.log.Info("ops server listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Stop closes the ops listener.
func (o *Ops) Stop(ctx context.Context) error { return o.srv.Shutdown(ctx) }

// OpsModule runs the ops listener with the app.
var OpsModule = fx.Module("ops",
	fx.Provide(NewOps),
	fx.Invoke(func(lc fx.Lifecycle, o *Ops) {
		lc.Append(fx.Hook{OnStart: o.Start, OnStop: o.Stop})
	}),
)
