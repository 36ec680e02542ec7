package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/perpetuaflow/api/test/testkit"
)

// collector is a local OTLP/HTTP receiver: it decodes what it is sent as
// a collector does.
type collector struct {
	mu       sync.Mutex
	services []string
	spans    []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	c.record(&req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// record keeps what one export request holds.
func (c *collector) record(req *coltrace.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.services = append(c.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
}

// grpcCollector is the same receiver over OTLP/gRPC.
type grpcCollector struct {
	coltrace.UnimplementedTraceServiceServer
	c *collector
}

func (g grpcCollector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	g.c.record(req)
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) has(service, span string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.services, service) && slices.Contains(c.spans, span)
}

// With the standard OTEL_EXPORTER_OTLP_ENDPOINT set, the binary exports its
// spans over OTLP — HTTP by default, gRPC when OTEL_EXPORTER_OTLP_PROTOCOL
// says so — under OTEL_SERVICE_NAME.
func TestTracesGoToTheOTLPEndpoint(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		col := &collector{}
		srv := httptest.NewServer(col)
		defer srv.Close()
		exportsTo(t, col, "OTEL_EXPORTER_OTLP_ENDPOINT="+srv.URL)
	})
	t.Run("grpc", func(t *testing.T) {
		col := &collector{}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		coltrace.RegisterTraceServiceServer(srv, grpcCollector{c: col})
		go func() { _ = srv.Serve(ln) }()
		defer srv.Stop()
		exportsTo(t, col, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
	})
}

// exportsTo runs the binary with env and expects a request's span at col.
func exportsTo(t *testing.T, col *collector, env ...string) {
	port, ops := testkit.FreePort(t), testkit.FreePort(t)
	p := run(t, append([]string{"DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "t.db"), "DATA_DIR=" + t.TempDir(),
		"PORT=" + port, "OPS_PORT=" + ops, "ENVIRONMENT=development", "LOG_LEVEL=warn",
		"OTEL_SERVICE_NAME=perpetua-e2e", "OTEL_BSP_SCHEDULE_DELAY=50"}, env...),
		"serve", "--role=all")
	base := "http://127.0.0.1:" + port
	testkit.WaitReady(t, base, p)
	res, err := http.Get(base + "/api/v1/tasks")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !col.has("perpetua-e2e", "GET /api/v1/tasks") {
		if time.Now().After(deadline) {
			col.mu.Lock()
			t.Fatalf("the collector never got the request's span: services %v, spans %v", col.services, col.spans)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop(t)
}
