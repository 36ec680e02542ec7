package server

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/observability"
)

const localClientIP = "client_ip"

// clientIP is the client's address: the socket's, or behind trusted proxies
// the one they saw (see httpx.ClientIPs).
func (s *Server) clientIP(c *fiber.Ctx) string {
	remote, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	var values []string
	if h := s.ips.Header(); h != "" {
		for _, v := range c.Request().Header.PeekAll(h) {
			values = append(values, string(v))
		}
	}
	return s.ips.Resolve(remote, values).String()
}

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
	ip := s.clientIP(c)
	c.Locals(localClientIP, ip)
	ctx := httpx.WithClientIP(observability.WithRequestID(c.UserContext(), rid), ip)
	// Lazy: most requests log nothing but their access line, which names
	// the request id itself.
	fields := []zap.Field{zap.String("request_id", rid)}
	if tid := observability.TraceID(ctx); tid != "" {
		fields = append(fields, zap.String("trace_id", tid))
	}
	ctx = observability.WithLogger(ctx, s.log.WithLazy(fields...))
	c.SetUserContext(httpx.WithLifetime(ctx, s.life))
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
	if ce := s.access.Check(level, "request"); ce != nil {
		rid, _ := c.Locals(httpx.LocalRequestID).(string)
		ce.Write(
			zap.String("request_id", rid),
			zap.String("method", method),
			zap.String("path", c.Path()),
			zap.String("route", route),
			zap.Int("status", status),
			zap.Duration("latency", elapsed),
			zap.Any("ip", c.Locals(localClientIP)),
			zap.String("user_id", httpx.Subject(c.UserContext())),
			zap.Int("bytes", bodySize(c)),
			zap.String("trace_id", observability.TraceID(c.UserContext())),
		)
	}
	return nil
}

// bodySize is the length of the response body, or -1 for a stream (still
// being written: reading it here would wait for its end).
func bodySize(c *fiber.Ctx) int {
	if c.Response().IsBodyStream() {
		return -1
	}
	return len(c.Response().Body())
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

const docsCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"

func isDocsPath(p string) bool {
	return p == "/docs" || strings.HasPrefix(p, "/docs/") || p == "/redoc" || strings.HasPrefix(p, "/redoc/")
}

// checkText refuses, once for every route, string input that cannot be
// stored as text (invalid UTF-8, NUL) in the body or the query: 400 naming
// the field, before any handler or database sees it.
func (s *Server) checkText(c *fiber.Ctx) error {
	if err := httpx.CheckQueryText(c.Request().URI().QueryArgs().All()); err != nil {
		return err
	}
	if body := c.Body(); len(body) > 0 {
		if err := httpx.CheckJSONText(body); err != nil {
			return err
		}
	}
	return c.Next()
}

// securityHeaders sets conservative headers on every answer. The docs pages
// run their embedded renderers (inline start-up script, web workers), all
// from this origin.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cross-Origin-Resource-Policy", "same-site")
	if s.cfg.IsProduction() {
		c.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	p := c.Path()
	if isDocsPath(p) {
		c.Set("Content-Security-Policy", docsCSP)
	} else {
		c.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	}
	if strings.HasPrefix(p, "/api/") {
		c.Set("Cache-Control", "no-store")
	}
	return c.Next()
}
