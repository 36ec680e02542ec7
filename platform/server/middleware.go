package server

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/observability"
)

// requestID gives every request an id (the client's X-Request-ID when it is
// sane), echoes it, and puts it and a logger carrying it in the request
// context.
func (s *Server) requestID(c *fiber.Ctx) error {
	rid := c.Get(fiber.HeaderXRequestID)
	if !httpx.SaneRequestID(rid) {
		rid = httpx.NewRequestID()
	}
	c.Set(fiber.HeaderXRequestID, rid)
	c.Locals(httpx.LocalRequestID, rid)
	ctx := observability.WithRequestID(c.UserContext(), rid)
	ctx = observability.WithLogger(ctx, s.log.With(zap.String("request_id", rid)))
	c.SetUserContext(ctx)
	return c.Next()
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: observability.Namespace, Name: "http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: observability.Namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: observability.Namespace, Name: "http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// observe writes the access log line and the request metrics. It turns a
// returned error into the response first, so both see the final status.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	if err := c.Next(); err != nil {
		if herr := s.App.ErrorHandler(c, err); herr != nil {
			s.log.Error("error handler failed", zap.Error(herr))
			c.Status(fiber.StatusInternalServerError)
		}
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route := c.Route().Path
	if route == "/" && c.Path() != "/" {
		route = "unmatched" // keeps label cardinality bounded under scanning
	}
	method := c.Method()
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())

	level := zap.InfoLevel
	switch {
	case status >= 500:
		level = zap.ErrorLevel
	case strings.HasPrefix(route, "/health/") || route == "/metrics":
		level = zap.DebugLevel
	}
	if ce := observability.Logger(c.UserContext(), s.log).Check(level, "request"); ce != nil {
		ce.Write(
			zap.String("method", method),
			zap.String("path", c.Path()),
			zap.String("route", route),
			zap.Int("status", status),
			zap.Duration("latency", elapsed),
			zap.String("ip", c.IP()),
			zap.String("user_id", httpx.Subject(c.UserContext())),
			zap.Int("bytes", len(c.Response().Body())),
		)
	}
	return nil
}

// recover turns a panic into a 500 envelope and logs the stack with the
// request id; the client sees only the id.
func (s *Server) recover(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			observability.Logger(c.UserContext(), s.log).Error("panic",
				zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Next()
}

// securityHeaders sets conservative headers on every answer. The docs pages
// load their scripts from a CDN, so they get no Content-Security-Policy.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cross-Origin-Resource-Policy", "same-site")
	if s.cfg.IsProduction() {
		c.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	p := c.Path()
	if p != "/docs" && p != "/redoc" {
		c.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	}
	if strings.HasPrefix(p, "/api/") {
		c.Set("Cache-Control", "no-store")
	}
	return c.Next()
}

func metricsHandler(reg *prometheus.Registry) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}
