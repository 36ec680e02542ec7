package observability

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// A call through Outbound is a client span carrying the trace to the
// service only while spans are exported; otherwise it goes straight to the
// transport beneath, without a span or a traceparent.
func TestOutboundCallsAreClientSpansOnlyWhileTracing(t *testing.T) {
	var traceparent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent = append(traceparent, r.Header.Get("traceparent"))
	}))
	defer srv.Close()
	client := &http.Client{Transport: Outbound(nil, "openai")}
	call := func(ctx context.Context) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}

	call(context.Background())
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracing(context.Background(), "api", "test", &TraceExporter{SpanExporter: exp}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tr.Tracer().Start(context.Background(), "request")
	call(ctx)
	parent.End()
	spans := exp.GetSpans() // the in-memory exporter forgets them at shutdown
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	call(context.Background())

	if len(traceparent) != 3 || traceparent[0] != "" || traceparent[1] == "" || traceparent[2] != "" {
		t.Fatalf("traceparent sent: %q, want only on the call made while tracing", traceparent)
	}
	var clients int
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindClient {
			clients++
			if s.Name != "openai POST" || s.Parent.SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("client span %q under %v", s.Name, s.Parent.SpanID())
			}
		}
	}
	if clients != 1 {
		t.Fatalf("%d client spans, want 1 (the call made while tracing)", clients)
	}
}
