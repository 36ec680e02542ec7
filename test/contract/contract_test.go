// Package contract checks the conventions of docs/api.md on every answer:
// timestamps in UTC with Z, nullable keys present, JSON bodies on every
// success, the error envelope on every failure, request ids, CORS, the
// OpenAPI document.
package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/test/testkit"
)

var timestampLike = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}`)

// checkTimestamps fails for every string that looks like a timestamp but is
// not RFC 3339 in UTC with a Z suffix.
func checkTimestamps(t *testing.T, where string, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			checkTimestamps(t, where+"."+k, val)
		}
	case []any:
		for i, val := range x {
			checkTimestamps(t, fmt.Sprintf("%s[%d]", where, i), val)
		}
	case string:
		if timestampLike.MatchString(x) {
			if !strings.HasSuffix(x, "Z") {
				t.Errorf("%s: timestamp %q is not UTC with Z", where, x)
			}
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				t.Errorf("%s: %q is not RFC 3339: %v", where, x, err)
			}
		}
	}
}

// checkAnswer applies the rules every answer follows.
func checkAnswer(t *testing.T, name string, res *testkit.Response) {
	t.Helper()
	rid := res.Header.Get("X-Request-ID")
	if rid == "" {
		t.Errorf("%s: no X-Request-ID", name)
	}
	var body any
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Errorf("%s: status %d without a JSON body: %q", name, res.Status, res.Body)
		return
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", name, ct)
	}
	checkTimestamps(t, name, body)
	if res.Status >= 400 {
		env, _ := body.(map[string]any)
		e, ok := env["error"].(map[string]any)
		if !ok || len(env) != 1 {
			t.Errorf("%s: error without the envelope: %s", name, res.Body)
			return
		}
		for _, key := range []string{"code", "message", "request_id"} {
			if s, _ := e[key].(string); s == "" {
				t.Errorf("%s: error.%s missing: %s", name, key, res.Body)
			}
		}
		if _, ok := e["details"].([]any); !ok {
			t.Errorf("%s: error.details is not an array: %s", name, res.Body)
		}
		if e["request_id"] != rid {
			t.Errorf("%s: error.request_id %v differs from X-Request-ID %s", name, e["request_id"], rid)
		}
	}
}

var nullableKeys = map[string][]string{
	"task":         {"template_id", "due_date", "estimated_duration", "completed_at", "completed_by"},
	"user":         {"avatar_url"},
	"subtask":      {"completed_at"},
	"reminder":     {"offset_minutes", "fired_at"},
	"template":     {"estimated_duration", "next_due"},
	"note":         {"task_id", "voice_url", "voice_duration_seconds", "transcription_status"},
	"notification": {"task_id"},
	"activity":     {"request_id"},
}

func checkKeys(t *testing.T, name, kind string, obj map[string]any) {
	t.Helper()
	for _, key := range nullableKeys[kind] {
		if _, ok := obj[key]; !ok {
			t.Errorf("%s: %s key %q missing (nullable keys are always present)", name, kind, key)
		}
	}
}

func TestEveryAnswerFollowsTheConventions(t *testing.T) {
	t.Parallel()
	providers, _, _ := testkit.AIFakes(t)
	app := testkit.Start(t, providers)
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")

	do := func(name string, u *testkit.User, method, path string, body any) *testkit.Response {
		t.Helper()
		res := app.Do(t, u, method, path, body)
		checkAnswer(t, name, res)
		return res
	}
	signIn := do("google sign-in", nil, http.MethodPost, "/api/v1/auth/google/callback",
		map[string]any{"id_token": app.Issuer.IDToken(t, testkit.GoogleClaims{Email: "carol@example.com"})})
	checkKeys(t, "sign-in", "user", signIn.JSON(t)["user"].(map[string]any))
	checkKeys(t, "me", "user", do("me", alice, http.MethodGet, "/api/v1/users/me", nil).Data(t))
	do("patch me", alice, http.MethodPatch, "/api/v1/users/me", map[string]any{"timezone": "America/New_York"})

	task := do("create task", alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).Data(t)
	checkKeys(t, "create task", "task", task)
	id := task["id"].(string)
	withDue := do("create task with offset due date", alice, http.MethodPost, "/api/v1/tasks",
		map[string]any{"title": "t2", "due_date": app.Clock.Now().Add(time.Hour).In(time.FixedZone("X", -5*3600)).Format(time.RFC3339)}).Data(t)
	if !strings.HasSuffix(withDue["due_date"].(string), "Z") {
		t.Fatalf("offset due date came back as %v", withDue["due_date"])
	}
	for _, item := range do("list tasks", alice, http.MethodGet, "/api/v1/tasks", nil).List(t) {
		checkKeys(t, "list tasks", "task", item)
	}
	checkKeys(t, "get task", "task", do("get task", alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Data(t))
	do("patch task", alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "u", "version": 1})
	do("put task", alice, http.MethodPut, "/api/v1/tasks/"+id, map[string]any{"hidden": true})
	checkKeys(t, "complete", "task", do("complete", alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Data(t)["task"].(map[string]any))
	do("force-complete", alice, http.MethodPost, "/api/v1/tasks/"+withDue["id"].(string)+"/force-complete", map[string]any{})
	due := app.Clock.Now().Add(48 * time.Hour).Format(time.RFC3339)
	other := do("create task for children", alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "c", "due_date": due}).Data(t)["id"].(string)
	st := do("create subtask", alice, http.MethodPost, "/api/v1/tasks/"+other+"/subtasks", map[string]any{"title": "s"}).Data(t)
	checkKeys(t, "subtask", "subtask", st)
	do("list subtasks", alice, http.MethodGet, "/api/v1/tasks/"+other+"/subtasks", nil)
	do("put subtask", alice, http.MethodPut, "/api/v1/subtasks/"+st["id"].(string), map[string]any{"completed": false})
	do("reorder", alice, http.MethodPut, "/api/v1/tasks/"+other+"/subtasks/reorder", map[string]any{"subtask_ids": []string{st["id"].(string)}})
	rem := do("create reminder", alice, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": other, "type": "before", "offset_minutes": -15}).Data(t)
	checkKeys(t, "reminder", "reminder", rem)
	do("list reminders", alice, http.MethodGet, "/api/v1/reminders", nil)
	do("fire reminder", alice, http.MethodPost, "/api/v1/reminders/"+rem["id"].(string)+"/fire", nil)
	do("delete reminder", alice, http.MethodDelete, "/api/v1/reminders/"+rem["id"].(string), nil)
	tmpl := do("create template", alice, http.MethodPost, "/api/v1/templates", map[string]any{"title": "r", "rrule": "FREQ=DAILY"}).Data(t)
	checkKeys(t, "template", "template", tmpl)
	do("instantiate", alice, http.MethodPost, "/api/v1/templates/"+tmpl["id"].(string)+"/instantiate", nil)
	do("list templates", alice, http.MethodGet, "/api/v1/templates", nil)
	note := do("create note", alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "n"}).Data(t)
	checkKeys(t, "note", "note", note)
	do("list notes", alice, http.MethodGet, "/api/v1/notes", nil)
	do("delete note", alice, http.MethodDelete, "/api/v1/notes/"+note["id"].(string), nil)
	for _, n := range do("list notifications", alice, http.MethodGet, "/api/v1/notifications", nil).List(t) {
		checkKeys(t, "notification", "notification", n)
	}
	do("read all", alice, http.MethodPost, "/api/v1/notifications/read-all", nil)
	do("vapid key", alice, http.MethodGet, "/api/v1/notifications/vapid-public-key", nil)
	do("recovery list", alice, http.MethodGet, "/api/v1/recovery", nil)
	for _, a := range do("activity", alice, http.MethodGet, "/api/v1/activity", nil).List(t) {
		checkKeys(t, "activity", "activity", a)
	}
	// The assistant (its POSTs carry an Idempotency-Key, as they must).
	ai := func(name, path string, body any) map[string]any {
		t.Helper()
		res := app.Send(t, alice, testkit.Request{Method: http.MethodPost, Path: path, Body: body,
			Headers: map[string]string{"Idempotency-Key": uuid.NewString()}})
		checkAnswer(t, name, res)
		return res.Data(t)
	}
	ai("chat", "/api/v1/ai/chat", map[string]any{"message": "help", "context": map[string]any{"include_tasks": true}})
	ai("generate subtasks", "/api/v1/ai/generate-subtasks", map[string]any{"task_id": other})
	ai("confirm action", "/api/v1/ai/confirm-action", map[string]any{"action_type": "create_subtasks",
		"action_data": map[string]any{"task_id": other, "subtasks": []any{map[string]any{"title": "from ai"}}}})
	do("ai credits", alice, http.MethodGet, "/api/v1/ai/credits", nil)
	memo := do("create note to convert", alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "m"}).Data(t)["id"].(string)
	do("convert note", alice, http.MethodPost, "/api/v1/notes/"+memo+"/convert", map[string]any{})
	conv := do("confirm conversion", alice, http.MethodPost, "/api/v1/notes/"+memo+"/convert", map[string]any{"confirm": true}).Data(t)
	checkKeys(t, "converted task", "task", conv["created_task"].(map[string]any))
	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	ai("transcribe", "/api/v1/ai/transcribe", map[string]any{"audio_url": "https://cdn.example.com/m.mp3", "duration_seconds": 20})
	voice := do("voice note", alice, http.MethodPost, "/api/v1/notes",
		map[string]any{"voice_url": "https://cdn.example.com/v.mp3", "voice_duration_seconds": 20}).Data(t)
	checkKeys(t, "voice note", "note", voice)
	do("delete subtask", alice, http.MethodDelete, "/api/v1/subtasks/"+st["id"].(string), nil)
	do("delete template", alice, http.MethodDelete, "/api/v1/templates/"+tmpl["id"].(string), nil)
	do("delete task", alice, http.MethodDelete, "/api/v1/tasks/"+id, nil)
	do("refresh", nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": bob.RefreshToken})
	do("logout", nil, http.MethodPost, "/api/v1/auth/logout", map[string]any{"refresh_token": bob.RefreshToken})
	do("jwks", nil, http.MethodGet, "/.well-known/jwks.json", nil)
	do("live", nil, http.MethodGet, "/health/live", nil)
	do("ready", nil, http.MethodGet, "/health/ready", nil)

	// Failures.
	do("no token", nil, http.MethodGet, "/api/v1/tasks", nil)
	do("bad token", &testkit.User{AccessToken: "x"}, http.MethodGet, "/api/v1/tasks", nil)
	do("unknown route", alice, http.MethodGet, "/api/v1/nothing-here", nil)
	do("unknown root route", nil, http.MethodGet, "/nothing", nil)
	do("deleted task", alice, http.MethodGet, "/api/v1/tasks/"+id, nil)
	do("validation", alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": ""})
	do("bad refresh", nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": "nope"})
}

func TestBadInputGetsTheDocumented4xx(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	id := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	cases := []struct {
		name, method, path string
		body               any
		headers            map[string]string
		status             int
		code               string
	}{
		{"malformed JSON", http.MethodPost, "/api/v1/tasks", `{"title":`, nil, 400, "VALIDATION_ERROR"},
		{"not JSON at all", http.MethodPost, "/api/v1/tasks", `hello`, nil, 400, "VALIDATION_ERROR"},
		{"empty body", http.MethodPost, "/api/v1/tasks", nil, nil, 400, "VALIDATION_ERROR"},
		{"wrong type", http.MethodPatch, "/api/v1/tasks/" + id, map[string]any{"hidden": "yes"}, nil, 400, "VALIDATION_ERROR"},
		{"wrong version type", http.MethodPatch, "/api/v1/tasks/" + id, map[string]any{"version": "1"}, nil, 400, "VALIDATION_ERROR"},
		{"unknown enum", http.MethodPatch, "/api/v1/tasks/" + id, map[string]any{"priority": "urgent"}, nil, 400, "VALIDATION_ERROR"},
		{"huge limit", http.MethodGet, "/api/v1/tasks?limit=99999999999999999999", nil, nil, 400, "VALIDATION_ERROR"},
		{"negative offset", http.MethodGet, "/api/v1/tasks?offset=-5", nil, nil, 400, "VALIDATION_ERROR"},
		{"bad uuid in path", http.MethodGet, "/api/v1/tasks/abc", nil, nil, 400, "VALIDATION_ERROR"},
		{"bad uuid on delete", http.MethodDelete, "/api/v1/tasks/%27%3B--", nil, nil, 400, "VALIDATION_ERROR"},
		{"idempotency key not a uuid", http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"},
			map[string]string{"Idempotency-Key": "abc"}, 400, "VALIDATION_ERROR"},
		{"unknown route", http.MethodGet, "/api/v1/tasks/" + id + "/nope", nil, nil, 404, "NOT_FOUND"},
		{"deep unknown route", http.MethodPost, "/api/v2/tasks", map[string]any{}, nil, 404, "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := app.Send(t, alice, testkit.Request{Method: c.method, Path: c.path, Body: c.body, Headers: c.headers})
			checkAnswer(t, c.name, res)
			res.ExpectError(t, c.status, c.code)
		})
	}
}

func TestOversizeBodyIs413(t *testing.T) {
	t.Parallel()
	// A small limit keeps the whole body inside the socket buffers: the
	// server answers 413 from the headers, and the client has finished
	// writing before the connection closes.
	app := testkit.Start(t, testkit.WithConfig("server.body_limit_bytes", 4096))
	alice := app.SignIn(t, "alice@example.com")
	res := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", `{"title": "`+strings.Repeat("x", 8192)+`"}`)
	checkAnswer(t, "oversize body", res)
	res.ExpectError(t, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	if n := app.Count(t, "tasks", ""); n != 0 {
		t.Fatal("an oversize request executed")
	}
}

func TestBodylessRequestsWithJSONContentType(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	alice := app.SignIn(t, "alice@example.com")
	id := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).Data(t)["id"].(string)
	// testkit sends Content-Type: application/json on every request, as the client does.
	app.Do(t, alice, http.MethodGet, "/api/v1/tasks", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/force-complete", "{}").Expect(t, http.StatusOK)
	app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK)
}

func TestRequestIDIsEchoedWhenSane(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	res := app.Send(t, nil, testkit.Request{Method: http.MethodGet, Path: "/health/live",
		Headers: map[string]string{"X-Request-ID": "client-123.abc"}})
	if got := res.Header.Get("X-Request-ID"); got != "client-123.abc" {
		t.Fatalf("echoed %q", got)
	}
	res = app.Send(t, nil, testkit.Request{Method: http.MethodGet, Path: "/api/v1/tasks",
		Headers: map[string]string{"X-Request-ID": "bad id with spaces <script>"}})
	got := res.Header.Get("X-Request-ID")
	if got == "" || strings.Contains(got, " ") {
		t.Fatalf("an insane request id was echoed: %q", got)
	}
	if res.JSON(t)["error"].(map[string]any)["request_id"] != got {
		t.Fatalf("envelope request_id differs from header: %s", res.Body)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	res := app.Send(t, nil, testkit.Request{Method: http.MethodOptions, Path: "/api/v1/tasks/x", Headers: map[string]string{
		"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PATCH",
		"Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
	}})
	if res.Status >= 300 {
		t.Fatalf("preflight status %d", res.Status)
	}
	h := res.Header
	if h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("allow-origin %q", h.Get("Access-Control-Allow-Origin"))
	}
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
			t.Errorf("method %s not allowed: %q", m, h.Get("Access-Control-Allow-Methods"))
		}
	}
	allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
	for _, hdr := range []string{"authorization", "content-type", "idempotency-key"} {
		if !strings.Contains(allowed, hdr) {
			t.Errorf("header %s not allowed: %q", hdr, allowed)
		}
	}
	simple := app.Send(t, nil, testkit.Request{Method: http.MethodGet, Path: "/health/live",
		Headers: map[string]string{"Origin": "http://localhost:3000"}})
	exposed := strings.ToLower(simple.Header.Get("Access-Control-Expose-Headers"))
	for _, hdr := range []string{"x-request-id", "x-idempotent-replayed", "retry-after", "x-ratelimit-limit"} {
		if !strings.Contains(exposed, hdr) {
			t.Errorf("%s not exposed: %q", hdr, exposed)
		}
	}
	other := app.Send(t, nil, testkit.Request{Method: http.MethodOptions, Path: "/api/v1/tasks", Headers: map[string]string{
		"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}})
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("an unknown origin was allowed")
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	res := app.Do(t, nil, http.MethodGet, "/api/v1/tasks", nil)
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

type panicRoutes struct{}

func (panicRoutes) Register(api huma.API) {
	huma.Register(api, httpx.Public(httpx.Route(http.MethodGet, "/api/v1/test/panic", "test-panic", "panics", "Test")),
		func(ctx context.Context, _ *struct{}) (*struct{}, error) { panic("boom: secret detail") })
}

func TestPanicBecomesA500EnvelopeWithoutDetails(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithFx(fx.Provide(platform.AsRoutes(func() panicRoutes { return panicRoutes{} }))))
	res := app.Do(t, nil, http.MethodGet, "/api/v1/test/panic", nil)
	checkAnswer(t, "panic", res)
	res.ExpectError(t, http.StatusInternalServerError, "INTERNAL_ERROR")
	if strings.Contains(string(res.Body), "boom") || strings.Contains(string(res.Body), "goroutine") {
		t.Fatalf("the panic leaked: %s", res.Body)
	}
	// The server goes on.
	app.Do(t, nil, http.MethodGet, "/health/live", nil).Expect(t, http.StatusOK)
}

func TestOpenAPIAndDocs(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	app.Do(t, nil, http.MethodGet, "/openapi.json", nil).Expect(t, http.StatusOK).Decode(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	for path, methods := range map[string][]string{
		"/api/v1/auth/google/callback":      {"post"},
		"/api/v1/auth/refresh":              {"post"},
		"/api/v1/auth/logout":               {"post"},
		"/api/v1/.well-known/jwks.json":     {"get"},
		"/.well-known/jwks.json":            {"get"},
		"/api/v1/users/me":                  {"get", "patch"},
		"/api/v1/tasks":                     {"get", "post"},
		"/api/v1/tasks/{id}":                {"get", "patch", "put", "delete"},
		"/api/v1/tasks/{id}/complete":       {"post"},
		"/api/v1/tasks/{id}/force-complete": {"post"},
		"/health/live":                      {"get"},
		"/health/ready":                     {"get"},
	} {
		for _, m := range methods {
			if _, ok := doc.Paths[path][m]; !ok {
				t.Errorf("OpenAPI lacks %s %s", strings.ToUpper(m), path)
			}
		}
	}
	for _, page := range []string{"/docs", "/redoc"} {
		res := app.Do(t, nil, http.MethodGet, page, nil).Expect(t, http.StatusOK)
		if !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: content type %q", page, res.Header.Get("Content-Type"))
		}
	}

	off := testkit.Start(t, testkit.WithConfig("server.docs_enabled", false))
	for _, page := range []string{"/openapi.json", "/docs", "/redoc"} {
		off.Do(t, nil, http.MethodGet, page, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	}
}

// A task or subtask in another module's answer (a confirmed action, a note
// turned into a task) is the tasks routes' Task and Subtask: each module
// maps the tasks module's values to its own HTTP type, and this holds
// those types to the same keys and types, so that a field added for the
// web client cannot be forgotten in one of them.
func TestEveryTaskShapeIsTheTasksRoutesOne(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	app.Do(t, nil, http.MethodGet, "/openapi.json", nil).Expect(t, http.StatusOK).Decode(t, &doc)
	for want, copies := range map[string][]string{
		"TaskDTO":    {"ActedTaskDTO", "ConvertedTaskDTO"},
		"SubtaskDTO": {"ActedSubtaskDTO", "ConvertedSubtaskDTO"},
	} {
		base, ok := doc.Components.Schemas[want]
		if !ok || len(base.Properties) == 0 {
			t.Fatalf("no schema %s", want)
		}
		for _, name := range copies {
			c, ok := doc.Components.Schemas[name]
			if !ok {
				t.Errorf("no schema %s", name)
				continue
			}
			b1, _ := json.Marshal(base.Properties)
			b2, _ := json.Marshal(c.Properties)
			if string(b1) != string(b2) {
				t.Errorf("%s differs from %s:\n%s\n%s", name, want, b2, b1)
			}
			if fmt.Sprint(base.Required) != fmt.Sprint(c.Required) {
				t.Errorf("%s requires %v, %s %v", name, c.Required, want, base.Required)
			}
		}
	}
}
