package app_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/platform/observability"
	"github.com/perpetuaflow/api/test/testkit"
)

// One request continues the caller's trace (traceparent): its server span
// is named by the route, carries the status and the user's id only hashed;
// on PostgreSQL its statements are spans of the trace; the job it enqueued
// runs (the worker fires the reminder) in a span linked to it; an error's
// envelope names the trace.
func TestARequestIsOneTraceWithItsSQLAndItsJobs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	a := testkit.Start(t, testkit.WithFx(fx.Supply(&observability.TraceExporter{SpanExporter: exp})),
		testkit.WithConfig("jobs.poll_interval", "50ms"))
	alice := a.SignIn(t, "alice@example.com")

	const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent := func(span string) map[string]string {
		return map[string]string{"traceparent": "00-" + caller + "-" + span + "-01"}
	}
	due := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	task := a.Send(t, alice, testkit.Request{Method: http.MethodPost, Path: "/api/v1/tasks", Headers: traceparent("00f067aa0ba902b7"),
		Body: map[string]any{"title": "Pack", "due_date": due}}).Expect(t, http.StatusCreated).Data(t)
	a.Send(t, alice, testkit.Request{Method: http.MethodPost, Path: "/api/v1/reminders", Headers: traceparent("00f067aa0ba902b8"),
		Body: map[string]any{"task_id": task["id"], "type": "before", "offset_minutes": -60, "method": "in_app"}}).
		Expect(t, http.StatusCreated)

	spansOf := func(traceID string) tracetest.SpanStubs {
		var out tracetest.SpanStubs
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID().String() == traceID {
				out = append(out, s)
			}
		}
		return out
	}
	var server *tracetest.SpanStub
	for _, s := range spansOf(caller) {
		if s.SpanKind == trace.SpanKindServer && s.Name == "POST /api/v1/tasks" {
			server = &s
		}
	}
	if server == nil {
		t.Fatalf("no server span POST /api/v1/tasks in the caller's trace: %v", names(spansOf(caller)))
	}
	if server.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("the server span's parent is %s, not the caller's span", server.Parent.SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range server.Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["http.route"] != "/api/v1/tasks" || attrs["http.response.status_code"] != "201" {
		t.Fatalf("server span attributes: %v", attrs)
	}
	if id := attrs["enduser.pseudo.id"]; id == "" || strings.Contains(id, alice.ID.String()[:8]) {
		t.Fatalf("the user id is missing or not hashed: %q", id)
	}
	if testkit.Postgres() {
		sql := 0
		for _, s := range spansOf(caller) {
			if s.Parent.SpanID() != server.SpanContext.SpanID() && !descends(spansOf(caller), s, server.SpanContext.SpanID()) {
				continue
			}
			for _, kv := range s.Attributes {
				if kv.Key == "db.query.text" || kv.Key == "db.statement" {
					sql++
					break
				}
			}
		}
		if sql == 0 {
			t.Fatalf("no SQL span under the request: %v", names(spansOf(caller)))
		}
	}

	t.Logf("the caller's trace: %v", names(spansOf(caller)))
	// The worker fires the reminder: its run is a span linked to the
	// request that enqueued it.
	var job *tracetest.SpanStub
	testkit.Eventually(t, 10*time.Second, "the reminder job's span", func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name != "river.work/reminder_fire" {
				continue
			}
			for _, l := range s.Links {
				if l.SpanContext.TraceID().String() == caller {
					job = &s
					return true
				}
			}
		}
		return false
	})
	if job.SpanKind != trace.SpanKindConsumer {
		t.Fatalf("job span kind %v", job.SpanKind)
	}
	if a.Count(t, "notifications", "user_id = ?", alice.ID) != 1 {
		t.Fatal("the reminder did not fire")
	}

	// An error's envelope names the trace, beside the request id.
	miss := a.Send(t, alice, testkit.Request{Method: http.MethodGet, Path: "/api/v1/tasks/00000000-0000-0000-0000-000000000001",
		Headers: traceparent("00f067aa0ba902b9")}).Expect(t, http.StatusNotFound).JSON(t)
	if e := miss["error"].(map[string]any); e["trace_id"] != caller || e["request_id"] == "" {
		t.Fatalf("error envelope: %v", e)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// descends says whether s is below the span ancestor in spans.
func descends(spans tracetest.SpanStubs, s tracetest.SpanStub, ancestor trace.SpanID) bool {
	for range 16 {
		if s.Parent.SpanID() == ancestor {
			return true
		}
		i := slices.IndexFunc(spans, func(p tracetest.SpanStub) bool { return p.SpanContext.SpanID() == s.Parent.SpanID() })
		if i < 0 {
			return false
		}
		s = spans[i]
	}
	return false
}
