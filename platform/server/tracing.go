package server

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/perpetuaflow/api/platform/httpx"
)

// traced records a server span per request (when tracing is on): it
// continues the caller's trace (traceparent), is named by the route
// template, and carries the final status and the caller's user id, hashed.
// It runs first, so that every log line of the request names the trace.
func (s *Server) traced(c *fiber.Ctx) error {
	ctx := otel.GetTextMapPropagator().Extract(c.UserContext(), headerCarrier{c})
	ctx, span := s.tracer.Start(ctx, c.Method(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.Method()), attribute.String("url.path", c.Path())))
	defer span.End()
	c.SetUserContext(ctx)
	err := c.Next() // observe has turned an error into the response
	route := c.Route().Path
	if route == "/" && c.Path() != "/" {
		route = "unmatched"
	}
	status := c.Response().StatusCode()
	span.SetName(c.Method() + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if rid, ok := c.Locals(httpx.LocalRequestID).(string); ok {
		span.SetAttributes(attribute.String("perpetua.request_id", rid))
	}
	if sub := httpx.Subject(c.UserContext()); sub != "" {
		sum := sha256.Sum256([]byte(sub))
		span.SetAttributes(attribute.String("enduser.pseudo.id", hex.EncodeToString(sum[:8])))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	return err
}

// headerCarrier reads and writes a Fiber request's headers for the
// propagator.
type headerCarrier struct{ c *fiber.Ctx }

var _ propagation.TextMapCarrier = headerCarrier{}

func (h headerCarrier) Get(key string) string { return h.c.Get(key) }
func (h headerCarrier) Set(key, value string) { h.c.Request().Header.Set(key, value) }
func (h headerCarrier) Keys() []string {
	var keys []string
	for k := range h.c.Request().Header.All() {
		keys = append(keys, string(k))
	}
	return keys
}
