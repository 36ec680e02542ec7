package observability

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Tracing is OpenTelemetry tracing, off unless an OTLP endpoint is set in
// the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_EXPORTER_OTLP_PROTOCOL grpc or
// http/protobuf, the default; OTEL_SERVICE_NAME; OTEL_TRACES_SAMPLER; …,
// which the SDK reads). When on it is the global provider, so that the
// instrumented clients (otelhttp, otelpgx, River's middleware) use it.
type Tracing struct {
	// Provider gives tracers: the SDK's when on, a no-op one when off.
	Provider trace.TracerProvider
	enabled  bool
	shutdown func(context.Context) error
}

// Enabled says whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.enabled }

// Shutdown exports what is buffered and stops.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Tracer is the tracer of our own spans.
func (t *Tracing) Tracer() trace.Tracer {
	return t.Provider.Tracer("github.com/perpetuaflow/api")
}

// tracingEndpoint reports whether the environment names an OTLP endpoint
// for traces (and the SDK is not disabled).
func tracingEndpoint(lookup func(string) string) bool {
	if strings.EqualFold(lookup("OTEL_SDK_DISABLED"), "true") || lookup("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return lookup("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// TraceExporter, given to NewTracing, receives every span as it ends
// (tests: the SDK's in-memory exporter).
type TraceExporter struct{ sdktrace.SpanExporter }

// NewTracing starts tracing for a process of role: to the test's exporter
// when given, else to the OTLP endpoint of the environment, else off.
func NewTracing(ctx context.Context, role, version string, test *TraceExporter, log *zap.Logger) (*Tracing, error) {
	var exporter sdktrace.SpanExporter
	processor := func(e sdktrace.SpanExporter) sdktrace.TracerProviderOption { return sdktrace.WithBatcher(e) }
	if test != nil {
		exporter, processor = test.SpanExporter, sdktrace.WithSyncer
	} else {
		if !tracingEndpoint(os.Getenv) {
			return &Tracing{Provider: noop.NewTracerProvider()}, nil
		}
		var err error
		if exporter, err = otlpExporter(ctx); err != nil {
			return nil, err
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "perpetua-flow-api"),
			attribute.String("service.version", version),
			attribute.String("perpetua.role", role)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(processor(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Named("tracing").Warn("spans not exported", zap.Error(err))
	}))
	exporting.Add(1)
	var once sync.Once
	return &Tracing{Provider: tp, enabled: true, shutdown: func(ctx context.Context) error {
		once.Do(func() { exporting.Add(-1) })
		return tp.Shutdown(ctx)
	}}, nil
}

// otlpExporter is the OTLP exporter the environment asks for (gRPC or
// HTTP; endpoint, headers, TLS and timeout read from it by the exporter).
func otlpExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		return otlptracehttp.New(ctx)
	case "grpc":
		return otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not grpc or http/protobuf", protocol)
	}
}

// TraceID is the id of the trace ctx is part of ("" when none is recorded).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	return sc.TraceID().String()
}

// Outbound wraps the transport of a client of an outside service (nil:
// http.DefaultTransport): while spans are exported, each call is a client
// span named after the service, and carries the trace to it (traceparent);
// otherwise the call goes straight to base (a span that goes nowhere still
// costs its allocations, and a streamed answer holds them for its life).
func Outbound(base http.RoundTripper, service string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &outbound{base: base, traced: otelhttp.NewTransport(base, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return service + " " + r.Method
	}))}
}

// exporting counts this process's Tracings that export spans (the tracer
// provider they install is the process's own).
var exporting atomic.Int32

type outbound struct{ base, traced http.RoundTripper }

func (o *outbound) RoundTrip(r *http.Request) (*http.Response, error) {
	if exporting.Load() > 0 {
		return o.traced.RoundTrip(r)
	}
	return o.base.RoundTrip(r)
}

// CloseIdleConnections closes base's idle connections (http.Client's
// CloseIdleConnections asks the transport).
func (o *outbound) CloseIdleConnections() {
	if c, ok := o.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
