package ai_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	sse "github.com/tmaxmax/go-sse"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/activity"
	"github.com/perpetuaflow/api/modules/ai"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/gamification"
	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/test/testkit"
)

const okAnswer = `{"response": "Start with the smallest step.", "suggested_actions": []}`

// start composes the assistant with an OpenAI-compatible fake and a
// Deepgram fake.
func start(t *testing.T, opts ...testkit.Option) (*testkit.App, *testkit.OpenAI, *testkit.Deepgram) {
	t.Helper()
	o := testkit.NewOpenAI(t, testkit.Reply{Content: okAnswer})
	dg := testkit.NewDeepgram(t, testkit.Heard{Transcript: "buy oat milk and call the plumber", Seconds: 45,
		Language: "en", Confidence: 0.97})
	base := []testkit.Option{
		testkit.Modules(ai.Module, activity.Module, gamification.Module, notifications.Module),
		testkit.WithConfig("ai.api_key", o.Key),
		testkit.WithConfig("ai.base_url", o.URL),
		testkit.WithConfig("ai.timeout", "5s"),
		testkit.WithConfig("ai.stream_heartbeat", "50ms"),
		testkit.WithConfig("ai.transcription.api_key", dg.Key),
		testkit.WithConfig("ai.transcription.base_url", dg.URL),
		testkit.WithConfig("ai.transcription.retry_backoff", "10ms"),
	}
	return testkit.Start(t, append(base, opts...)...), o, dg
}

// post sends an AI request, with the Idempotency-Key the AI routes require.
func post(t *testing.T, app *testkit.App, u *testkit.User, path string, body any, headers ...string) *testkit.Response {
	t.Helper()
	h := map[string]string{"Idempotency-Key": uuid.NewString()}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return app.Send(t, u, testkit.Request{Method: http.MethodPost, Path: path, Body: body, Headers: h})
}

// spent is the credits the user was charged, from the ledger.
func spent(t *testing.T, app *testkit.App, u *testkit.User) int {
	t.Helper()
	var n int
	if err := app.DB.Gorm.Raw("SELECT COALESCE(-SUM(amount), 0) FROM credit_ledger WHERE user_id = ? AND entry = 'spend'", u.ID).
		Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func makePro(t *testing.T, app *testkit.App, u *testkit.User) {
	t.Helper()
	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", u.ID).Error; err != nil {
		t.Fatal(err)
	}
}

func addTask(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) string {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/tasks", body).Expect(t, http.StatusCreated).Data(t)["id"].(string)
}

func TestWithoutAnAPIKeyEveryAIRouteSaysHowToConfigureIt(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(ai.Module))
	alice := app.SignIn(t, "alice@example.com")
	taskID := addTask(t, app, alice, map[string]any{"title": "Plan the trip"})
	note := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "call mom"}).Expect(t, http.StatusCreated).Data(t)
	for path, body := range map[string]any{
		"/api/v1/ai/chat":                                   map[string]any{"message": "hi"},
		"/api/v1/ai/chat/stream":                            map[string]any{"message": "hi"},
		"/api/v1/ai/generate-subtasks":                      map[string]any{"task_id": taskID},
		"/api/v1/notes/" + note["id"].(string) + "/convert": map[string]any{},
	} {
		res := post(t, app, alice, path, body).ExpectError(t, http.StatusServiceUnavailable, ai.CodeAIUnavailable)
		if !strings.Contains(string(res.Body), "OPENAI_API_KEY") {
			t.Fatalf("%s: the message does not say how to configure it: %s", path, res.Body)
		}
	}
	makePro(t, app, alice)
	res := post(t, app, alice, "/api/v1/ai/transcribe", map[string]any{"audio_url": "https://cdn.example.com/a.mp3", "duration_seconds": 30}).
		ExpectError(t, http.StatusServiceUnavailable, ai.CodeTranscriptionUnavailable)
	if !strings.Contains(string(res.Body), "DEEPGRAM_API_KEY") {
		t.Fatalf("transcribe: %s", res.Body)
	}
	// The Idempotency-Key is required on the AI routes.
	app.Do(t, alice, http.MethodPost, "/api/v1/ai/chat", map[string]any{"message": "hi"}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	if n := app.Count(t, "ai_sessions", "requests > 0"); n != 0 {
		t.Fatalf("unanswered requests were counted: %d", n)
	}
}

func TestChatAnswersWithContextAndChargesOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	urgent := addTask(t, app, alice, map[string]any{"title": "File taxes", "priority": "high"})
	addTask(t, app, alice, map[string]any{"title": "Water plants", "priority": "low"})
	other := uuid.NewString()
	o.Script(testkit.Reply{Content: fmt.Sprintf(`{"response": "Do the taxes first.", "suggested_actions": [
		{"type": "update_task", "task_id": %q, "description": "It is urgent", "data": {"priority": "high"}},
		{"type": "complete_task", "task_id": %q, "description": "an id not in the context", "data": {}}]}`, urgent, other)})

	res := post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "What first?",
		"context": map[string]any{"include_tasks": true, "task_limit": 5}}).Expect(t, http.StatusOK).Data(t)
	if res["response"] != "Do the taxes first." || res["credits_used"] != float64(1) || res["credits_remaining"] != float64(14) ||
		res["ai_request_warning"] != false {
		t.Fatalf("answer %v", res)
	}
	actions := res["suggested_actions"].([]any)
	if len(actions) != 1 || actions[0].(map[string]any)["task_id"] != urgent ||
		actions[0].(map[string]any)["data"].(map[string]any)["task_id"] != urgent {
		t.Fatalf("actions (the unknown task must be dropped): %v", actions)
	}
	req := o.Requests()[0]
	if !strings.Contains(req.Text(), "File taxes") || !strings.Contains(req.Text(), "Water plants") ||
		strings.Index(req.Text(), "File taxes") > strings.Index(req.Text(), "Water plants") {
		t.Fatalf("context: open tasks, highest priority first:\n%s", req.Text())
	}
	if req.ResponseFormat == nil || req.ResponseFormat.Type != "json_schema" || req.ResponseFormat.JSONSchema == nil {
		t.Fatalf("structured answers must ask for a JSON schema: %+v", req.ResponseFormat)
	}
	if spent(t, app, alice) != 1 {
		t.Fatalf("spent %d", spent(t, app, alice))
	}

	// X-Task-Id: that task with its subtasks; another user's task is 404.
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+urgent+"/subtasks", map[string]any{"title": "Find the receipts"}).Expect(t, http.StatusCreated)
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "Help"}, "X-Task-Id", urgent).Expect(t, http.StatusOK)
	if text := o.Requests()[1].Text(); !strings.Contains(text, "Find the receipts") || strings.Contains(text, "Water plants") {
		t.Fatalf("task context:\n%s", text)
	}
	bob := app.SignIn(t, "bob@example.com")
	post(t, app, bob, "/api/v1/ai/chat", map[string]any{"message": "Help"}, "X-Task-Id", urgent).
		ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	if spent(t, app, bob) != 0 || app.Count(t, "ai_sessions", "user_id = ? AND requests > 0", bob.ID) != 0 {
		t.Fatal("a refused request was charged or counted")
	}

	// A provider failure is a 503 and costs nothing.
	o.Script(testkit.Reply{Status: http.StatusInternalServerError})
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "again"}).ExpectError(t, http.StatusServiceUnavailable, ai.CodeAIUnavailable)
	// An answer that does not match the schema is asked for once more...
	o.Script(testkit.Reply{Content: "not json"}, testkit.Reply{Content: okAnswer})
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "again"}).Expect(t, http.StatusOK)
	// ...and twice wrong is a 503, not charged.
	o.Script(testkit.Reply{Content: `{"answer": "wrong shape"}`}, testkit.Reply{Content: "still not"})
	n := len(o.Requests())
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "again"}).ExpectError(t, http.StatusServiceUnavailable, ai.CodeAIUnavailable)
	if len(o.Requests()) != n+2 {
		t.Fatalf("%d calls for an invalid answer, want 2", len(o.Requests())-n)
	}
	if got := spent(t, app, alice); got != 3 {
		t.Fatalf("spent %d, want 3 (three answers)", got)
	}
	if b := app.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t); b["total"] != float64(12) {
		t.Fatalf("balance %v, want a total of 12", b)
	}
}

func TestAProviderThatHangsIsA503AfterTheTimeout(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t, testkit.WithConfig("ai.timeout", "300ms"))
	alice := app.SignIn(t, "alice@example.com")
	o.Script(testkit.Reply{Hang: true})
	res := post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "hello"}).ExpectError(t, http.StatusServiceUnavailable, ai.CodeAIUnavailable)
	if !strings.Contains(string(res.Body), "too long") {
		t.Fatalf("message: %s", res.Body)
	}
	testkit.Eventually(t, 5*time.Second, "the provider call to be cancelled", func() bool { return o.Cancelled() == 1 })
	if spent(t, app, alice) != 0 {
		t.Fatal("a timed-out call was charged")
	}
}

func TestInsufficientCreditsAre402BeforeTheProviderIsCalled(t *testing.T) {
	t.Parallel()
	var ledger *billing.Ledger
	app, o, _ := start(t, testkit.WithFx(fx.Populate(&ledger)))
	alice := app.SignIn(t, "alice@example.com")
	ctx := context.Background()
	if err := app.DB.Tx(ctx, func(tx *gorm.DB) error {
		_, err := ledger.Spend(ctx, tx, alice.ID, 15, "test: spend everything")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "hi"}).ExpectError(t, http.StatusPaymentRequired, "INSUFFICIENT_CREDITS")
	if len(o.Requests()) != 0 {
		t.Fatal("the provider was called without credits")
	}
}

func TestTheSessionCapIsTenRequestsPerSignIn(t *testing.T) {
	t.Parallel()
	app, _, _ := start(t, testkit.WithConfig("ai.session_requests", 10))
	alice := app.SignIn(t, "alice@example.com")
	for i := 1; i <= 10; i++ {
		d := post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "hi"}).Expect(t, http.StatusOK).Data(t)
		if warn := d["ai_request_warning"].(bool); warn != (i >= 8) {
			t.Fatalf("request %d: ai_request_warning %v", i, warn)
		}
	}
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "hi"}).ExpectError(t, http.StatusTooManyRequests, ai.CodeSessionLimit)
	// A new sign-in is a new session.
	again := app.SignIn(t, "alice@example.com")
	post(t, app, again, "/api/v1/ai/chat", map[string]any{"message": "hi"}).Expect(t, http.StatusOK)
}

func TestConcurrentRequestsNeverPassTheSessionCap(t *testing.T) {
	t.Parallel()
	app, _, _ := start(t, testkit.WithConfig("ai.session_requests", 3))
	alice := app.SignIn(t, "alice@example.com")
	reqs := make([]testkit.Racer, 8)
	for i := range reqs {
		reqs[i] = testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost, Path: "/api/v1/ai/chat",
			Body: map[string]any{"message": "hi"}, Headers: map[string]string{"Idempotency-Key": uuid.NewString()}}}
	}
	counts := testkit.Statuses(app.Burst(t, reqs))
	if counts[http.StatusOK] != 3 || counts[http.StatusTooManyRequests] != 5 {
		t.Fatalf("statuses %v, want 3×200 and 5×429", counts)
	}
	if got := spent(t, app, alice); got != 3 {
		t.Fatalf("spent %d, want 3", got)
	}
}

// events reads a server-sent event stream to its end with a real SSE parser.
func events(t *testing.T, res *http.Response) []sse.Event {
	t.Helper()
	var out []sse.Event
	for ev, err := range sse.Read(res.Body, nil) {
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func openStream(t *testing.T, app *testkit.App, u *testkit.User, body any, key string) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/api/v1/ai/chat/stream", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+u.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Idempotency-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestChatStreamsTextThenDoneThenDONE(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	task := addTask(t, app, alice, map[string]any{"title": "Write the report"})
	o.Script(testkit.Reply{Chunks: []string{"Start with", " an outline.", "\nACT", "IONS: [{\"type\": \"create_subtasks\", \"task_id\": \"" + task +
		"\", \"description\": \"Split it\", \"data\": {\"subtasks\": [{\"title\": \"Outline\"}]}}]"}})
	key := uuid.NewString()
	ask := map[string]any{"message": "How do I start?", "context": map[string]any{"include_tasks": true}}
	res := openStream(t, app, alice, ask, key)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	evs := events(t, res)
	var text strings.Builder
	for _, ev := range evs[:len(evs)-2] {
		var piece struct {
			Text *string `json:"text"`
		}
		if ev.Type != "" || json.Unmarshal([]byte(ev.Data), &piece) != nil || piece.Text == nil {
			t.Fatalf("text event %+v", ev)
		}
		text.WriteString(*piece.Text)
	}
	if text.String() != "Start with an outline." {
		t.Fatalf("streamed text %q (the ACTIONS line must not be streamed)", text.String())
	}
	var done struct {
		Done             bool             `json:"done"`
		SuggestedActions []map[string]any `json:"suggested_actions"`
		CreditsUsed      int              `json:"credits_used"`
		CreditsRemaining int              `json:"credits_remaining"`
	}
	if err := json.Unmarshal([]byte(evs[len(evs)-2].Data), &done); err != nil || !done.Done || done.CreditsUsed != 1 ||
		done.CreditsRemaining != 14 || len(done.SuggestedActions) != 1 || done.SuggestedActions[0]["type"] != "create_subtasks" {
		t.Fatalf("done event %q", evs[len(evs)-2].Data)
	}
	if evs[len(evs)-1].Data != "[DONE]" {
		t.Fatalf("last event %q", evs[len(evs)-1].Data)
	}
	if spent(t, app, alice) != 1 {
		t.Fatal("a completed stream must be charged once")
	}
	// The same key again replays the stream; it is not charged twice.
	again := openStream(t, app, alice, ask, key)
	if again.Header.Get("X-Idempotent-Replayed") != "true" || len(events(t, again)) != len(evs) {
		t.Fatal("the replay differs")
	}
	if spent(t, app, alice) != 1 || len(o.Requests()) != 1 {
		t.Fatal("a replay ran again")
	}
}

func TestAStreamCutByTheProviderIsAnErrorEventAndFree(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	o.Script(testkit.Reply{Chunks: []string{"Half an ", "answer", " never finished"}, CutAfter: 2})
	evs := events(t, openStream(t, app, alice, map[string]any{"message": "hi"}, uuid.NewString()))
	last := evs[len(evs)-1]
	var env struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if last.Type != "error" || json.Unmarshal([]byte(last.Data), &env) != nil || env.Error.Code != ai.CodeAIUnavailable || env.Error.RequestID == "" {
		t.Fatalf("last event %+v", last)
	}
	if spent(t, app, alice) != 0 || app.Count(t, "ai_sessions", "user_id = ? AND requests > 0", alice.ID) != 0 {
		t.Fatal("a cut stream was charged or counted")
	}
}

// streamsRunning counts goroutines running a streamed answer.
func streamsRunning() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "ai.(*ChatStream).Run")
}

func TestAClientThatLeavesMidStreamCancelsTheCallAndPaysNothing(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	o.Script(testkit.Reply{Chunks: []string{"One", " two", " three"}, HoldAfter: 2})
	res := openStream(t, app, alice, map[string]any{"message": "count"}, uuid.NewString())
	<-o.Started()
	for ev, err := range sse.Read(res.Body, nil) {
		if err != nil || ev.Data == "" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		break // got a piece; now leave
	}
	res.Body.Close()
	testkit.Eventually(t, 10*time.Second, "the provider call to be cancelled", func() bool { return o.Cancelled() == 1 })
	testkit.Eventually(t, 10*time.Second, "the stream's goroutine to end", func() bool { return streamsRunning() == 0 })
	testkit.Eventually(t, 5*time.Second, "the session request to be given back", func() bool {
		return app.Count(t, "ai_sessions", "user_id = ? AND requests > 0", alice.ID) == 0
	})
	if spent(t, app, alice) != 0 {
		t.Fatal("an abandoned stream was charged")
	}
}

func TestShutdownEndsOpenStreamsCleanly(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	o.Script(testkit.Reply{Chunks: []string{"One", " two", " three"}, HoldAfter: 1})
	res := openStream(t, app, alice, map[string]any{"message": "count"}, uuid.NewString())
	<-o.Started()
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop() }()
	evs := events(t, res)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	if last := evs[len(evs)-1]; last.Type != "error" || !strings.Contains(last.Data, ai.CodeAIUnavailable) {
		t.Fatalf("last event %+v", last)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shutdown waited for the stream")
	}
	var n int
	app.DB.Gorm.Raw("SELECT COUNT(*) FROM credit_ledger WHERE user_id = ? AND entry = 'spend'", alice.ID).Scan(&n)
	if n != 0 {
		t.Fatal("an interrupted stream was charged")
	}
}

func TestGenerateSubtasksKeepsToTheTierAndCreatesNothing(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	task := addTask(t, app, alice, map[string]any{"title": "Move house"})
	six := `{"subtasks": [{"title": "Book a van"}, {"title": "  Pack   books "}, {"title": "book a van"}, {"title": ""},
		{"title": "Change address"}, {"title": "Clean"}, {"title": "Return keys"}, {"title": "Party"}]}`
	o.Script(testkit.Reply{Content: six}, testkit.Reply{Content: six})
	d := post(t, app, alice, "/api/v1/ai/generate-subtasks", map[string]any{"task_id": task}).Expect(t, http.StatusOK).Data(t)
	got := d["suggested_subtasks"].([]any)
	want := []string{"Book a van", "Pack books", "Change address", "Clean"}
	if len(got) != len(want) || d["credits_used"] != float64(1) {
		t.Fatalf("free suggestions %v", d)
	}
	for i, w := range want {
		if got[i].(map[string]any)["title"] != w {
			t.Fatalf("suggestion %d: %v, want %q", i, got[i], w)
		}
	}
	if !strings.Contains(o.Requests()[0].Text(), "at most 4") {
		t.Fatal("the prompt must ask for the tier's number")
	}
	makePro(t, app, alice)
	d = post(t, app, alice, "/api/v1/ai/generate-subtasks", map[string]any{"task_id": task}).Expect(t, http.StatusOK).Data(t)
	if len(d["suggested_subtasks"].([]any)) != 6 || !strings.Contains(o.Requests()[1].Text(), "at most 10") {
		t.Fatalf("pro suggestions %v", d)
	}
	if n := app.Count(t, "subtasks", ""); n != 0 {
		t.Fatalf("suggestions created %d subtasks", n)
	}
	bob := app.SignIn(t, "bob@example.com")
	post(t, app, bob, "/api/v1/ai/generate-subtasks", map[string]any{"task_id": task}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
}

func TestConfirmActionActsThroughTheTaskRulesAndOwnership(t *testing.T) {
	t.Parallel()
	app, _, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	task := addTask(t, app, alice, map[string]any{"title": "Paint the fence"})
	confirm := func(u *testkit.User, typ string, data map[string]any) *testkit.Response {
		return post(t, app, u, "/api/v1/ai/confirm-action", map[string]any{"action_type": typ, "action_data": data})
	}
	// Another user's task: 404, and nothing changes.
	confirm(bob, "complete_task", map[string]any{"task_id": task}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	confirm(bob, "create_subtasks", map[string]any{"task_id": task, "subtasks": []any{map[string]any{"title": "x"}}}).
		ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	confirm(bob, "update_task", map[string]any{"task_id": task, "title": "mine now"}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	got := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+task, nil).Expect(t, http.StatusOK).Data(t)
	if got["title"] != "Paint the fence" || got["completed"] != false || got["subtask_count"] != float64(0) || got["version"] != float64(1) {
		t.Fatalf("another user's action changed the task: %v", got)
	}
	// Bad data names the field.
	res := confirm(alice, "update_task", map[string]any{"task_id": task, "priority": "urgent"}).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	if !strings.Contains(string(res.Body), "action_data.priority") {
		t.Fatalf("details: %s", res.Body)
	}
	confirm(alice, "create_subtasks", map[string]any{"task_id": "not-a-uuid"}).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")

	// The tier's subtask limit holds (free: 4).
	five := []any{}
	for i := range 5 {
		five = append(five, map[string]any{"title": fmt.Sprintf("coat %d", i)})
	}
	confirm(alice, "create_subtasks", map[string]any{"task_id": task, "subtasks": five}).ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	d := confirm(alice, "create_subtasks", map[string]any{"task_id": task, "subtasks": five[:2], "description": "ignored"}).
		Expect(t, http.StatusOK).Data(t)
	if subs := d["subtasks"].([]any); len(subs) != 2 || subs[0].(map[string]any)["source"] != "ai" ||
		d["task"].(map[string]any)["subtask_count"] != float64(2) {
		t.Fatalf("create_subtasks %v", d)
	}
	d = confirm(alice, "update_task", map[string]any{"task_id": task, "priority": "high"}).Expect(t, http.StatusOK).Data(t)
	if d["task"].(map[string]any)["priority"] != "high" {
		t.Fatalf("update_task %v", d)
	}
	d = confirm(alice, "complete_task", map[string]any{"task_id": task}).Expect(t, http.StatusOK).Data(t)
	if d["task"].(map[string]any)["completed"] != true || d["credits_used"] != float64(0) {
		t.Fatalf("complete_task %v", d)
	}
	// Two subtasks, the update and the completion, each with source ai.
	if n := app.Count(t, "activity_log", "user_id = ? AND source = 'ai'", alice.ID); n != 4 {
		t.Fatalf("%d activity rows with source ai, want 4", n)
	}
}

func TestANoteBecomesATaskOnce(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	note := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "Dentist: book a check-up, ask about the filling"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	o.Script(testkit.Reply{Content: `{"title": "Book the dentist", "description": "Ask about the filling", "priority": "medium",
		"due_date": null, "subtasks": [{"title": "Call the practice"}, {"title": "Find the insurance card"}]}`})
	d := app.Do(t, alice, http.MethodPost, "/api/v1/notes/"+note+"/convert", map[string]any{}).Expect(t, http.StatusOK).Data(t)
	draft := d["task"].(map[string]any)
	if draft["title"] != "Book the dentist" || len(draft["subtasks"].([]any)) != 2 || draft["due_date"] != nil ||
		d["credits_used"] != float64(1) || d["converted"] != false || d["created_task"] != nil {
		t.Fatalf("draft %v", d)
	}
	if app.Count(t, "tasks", "user_id = ?", alice.ID) != 0 {
		t.Fatal("a draft created a task")
	}
	// Confirming uses the draft shown: no second call, no second charge.
	// Two confirmations at once make one task.
	reqs := []testkit.Racer{}
	for range 2 {
		reqs = append(reqs, testkit.Racer{User: alice, Request: testkit.Request{Method: http.MethodPost,
			Path: "/api/v1/notes/" + note + "/convert", Body: map[string]any{"confirm": true}}})
	}
	counts := testkit.Statuses(app.Burst(t, reqs))
	if counts[http.StatusOK] != 1 || counts[http.StatusConflict] != 1 {
		t.Fatalf("statuses %v", counts)
	}
	if len(o.Requests()) != 1 || spent(t, app, alice) != 1 {
		t.Fatalf("%d calls, %d spent", len(o.Requests()), spent(t, app, alice))
	}
	if app.Count(t, "tasks", "user_id = ? AND title = 'Book the dentist' AND subtask_count = 2", alice.ID) != 1 ||
		app.Count(t, "subtasks", "source = 'ai'") != 2 {
		t.Fatal("the task was not made as drafted")
	}
	n := app.Do(t, alice, http.MethodGet, "/api/v1/notes/"+note, nil).Expect(t, http.StatusOK).Data(t)
	if n["archived"] != true {
		t.Fatalf("note %v", n)
	}
	stats := app.Do(t, alice, http.MethodGet, "/api/v1/achievements/stats", nil).Expect(t, http.StatusOK).Data(t)
	if stats["notes_converted"] != float64(1) {
		t.Fatalf("stats %v", stats)
	}
	if app.Count(t, "activity_log", "entity_id = ? AND action = 'converted' AND source = 'ai'", note) != 1 ||
		app.Count(t, "activity_log", "entity_type = 'task' AND action = 'created' AND source = 'ai'") != 1 {
		t.Fatal("activity rows with source ai are missing")
	}

	// confirm-action convert_note with the user's own task: no AI call.
	other := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "renew passport"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	d = post(t, app, alice, "/api/v1/ai/confirm-action", map[string]any{"action_type": "convert_note",
		"action_data": map[string]any{"note_id": other, "title": "Renew the passport", "priority": "high"}}).Expect(t, http.StatusOK).Data(t)
	if d["task"].(map[string]any)["title"] != "Renew the passport" || len(o.Requests()) != 1 {
		t.Fatalf("convert_note %v", d)
	}
	bob := app.SignIn(t, "bob@example.com")
	app.Do(t, bob, http.MethodPost, "/api/v1/notes/"+other+"/convert", map[string]any{"confirm": true}).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestVoiceNotesAreTranscribedByTheWorkerAndPaidOnce(t *testing.T) {
	t.Parallel()
	app, _, dg := start(t)
	alice := app.SignIn(t, "alice@example.com")
	voice := func(url string, seconds int) *testkit.Response {
		return app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"voice_url": url, "voice_duration_seconds": seconds})
	}
	voice("https://cdn.example.com/a.webm", 45).ExpectError(t, http.StatusForbidden, "TIER_REQUIRED")
	makePro(t, app, alice)
	voice("https://cdn.example.com/a.webm", 301).ExpectError(t, http.StatusBadRequest, ai.CodeAudioTooLong)
	for _, bad := range []string{"ftp://cdn.example.com/a", "http://127.0.0.1/a.webm", "http://localhost:8080/a", "http://[::1]/a",
		"http://169.254.169.254/latest/meta-data", "http://10.0.0.7/a", "http://192.168.1.1/a", "http://2130706433/a",
		"http://127.1/a", "http://redis:6379/a", "https://user:pw@cdn.example.com/a"} {
		voice(bad, 45).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
	if app.Count(t, "notes", "") != 0 {
		t.Fatal("a refused voice note was stored")
	}

	n := voice("https://cdn.example.com/a.webm", 45).Expect(t, http.StatusCreated).Data(t)
	if n["transcription_status"] != "pending" || n["voice_duration_seconds"] != float64(45) || n["content"] == "" {
		t.Fatalf("note %v", n)
	}
	id := n["id"].(string)
	testkit.Eventually(t, 10*time.Second, "the transcription", func() bool {
		return app.Count(t, "notes", "id = ? AND transcription_status = 'completed'", id) == 1
	})
	got := app.Do(t, alice, http.MethodGet, "/api/v1/notes/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if got["content"] != "buy oat milk and call the plumber" {
		t.Fatalf("content %q", got["content"])
	}
	if s := spent(t, app, alice); s != 5 {
		t.Fatalf("45 s cost %d, want 5", s)
	}
	if r := dg.Requests(); len(r) != 1 || r[0].Model != "nova-2" || r[0].AudioURL != "https://cdn.example.com/a.webm" {
		t.Fatalf("deepgram requests %+v", r)
	}
	testkit.Eventually(t, 5*time.Second, "the notification", func() bool {
		return app.Count(t, "notifications", "user_id = ? AND title LIKE '%transcribed%'", alice.ID) == 1
	})

	// A failure marks the note failed and costs nothing.
	dg.Script(testkit.Heard{Status: http.StatusBadRequest})
	id = voice("https://cdn.example.com/c.webm", 30).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	testkit.Eventually(t, 10*time.Second, "the failure", func() bool {
		return app.Count(t, "notes", "id = ? AND transcription_status = 'failed'", id) == 1
	})
	if s := spent(t, app, alice); s != 5 {
		t.Fatalf("a failed transcription was charged (%d)", s)
	}

	// 90 s: two started minutes. The job runs twice: one transcription, one charge.
	dg.Script(testkit.Heard{Transcript: "a longer one", Seconds: 90})
	id = voice("https://cdn.example.com/b.webm", 90).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	if _, err := app.Queue.Insert(t.Context(), ai.TranscribeNoteArgs{NoteID: uuid.MustParse(id), UserID: alice.ID}, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "both jobs", func() bool {
		return app.Count(t, "river_job", "kind = 'transcribe_note' AND state = 'completed'") == 4
	})
	if s := spent(t, app, alice); s != 15 {
		t.Fatalf("spent %d, want 5 + 10", s)
	}
	if app.Count(t, "activity_log", "entity_id = ? AND action = 'transcribed'", id) != 1 {
		t.Fatal("transcribed more than once")
	}

}

func TestTranscriptionRetriesABusyServiceThenGivesUp(t *testing.T) {
	t.Parallel()
	app, _, dg := start(t, testkit.WithConfig("ai.transcription.max_attempts", 3))
	alice := app.SignIn(t, "alice@example.com")
	makePro(t, app, alice)
	dg.Script(testkit.Heard{Status: http.StatusServiceUnavailable}, testkit.Heard{Status: http.StatusServiceUnavailable},
		testkit.Heard{Transcript: "third time lucky", Seconds: 20})
	id := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"voice_url": "https://cdn.example.com/a.ogg",
		"voice_duration_seconds": 20, "content": "Shopping"}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	testkit.Eventually(t, 15*time.Second, "the transcription", func() bool {
		return app.Count(t, "notes", "id = ? AND transcription_status = 'completed'", id) == 1
	})
	got := app.Do(t, alice, http.MethodGet, "/api/v1/notes/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if got["content"] != "Shopping\n\nthird time lucky" || len(dg.Requests()) != 3 || spent(t, app, alice) != 5 {
		t.Fatalf("content %q after %d calls, spent %d", got["content"], len(dg.Requests()), spent(t, app, alice))
	}
	dg.Script(testkit.Heard{Status: 503}, testkit.Heard{Status: 503}, testkit.Heard{Status: 503})
	id = app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"voice_url": "https://cdn.example.com/b.ogg",
		"voice_duration_seconds": 20}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	testkit.Eventually(t, 15*time.Second, "the failure", func() bool {
		return app.Count(t, "notes", "id = ? AND transcription_status = 'failed'", id) == 1
	})
	if len(dg.Requests()) != 6 || spent(t, app, alice) != 5 {
		t.Fatalf("%d calls, spent %d", len(dg.Requests()), spent(t, app, alice))
	}
}

func TestTranscribeAnswersAtOnceForPro(t *testing.T) {
	t.Parallel()
	app, _, dg := start(t)
	alice := app.SignIn(t, "alice@example.com")
	body := map[string]any{"audio_url": "https://cdn.example.com/memo.m4a", "duration_seconds": 45}
	post(t, app, alice, "/api/v1/ai/transcribe", body).ExpectError(t, http.StatusForbidden, "TIER_REQUIRED")
	makePro(t, app, alice)
	d := post(t, app, alice, "/api/v1/ai/transcribe", body).Expect(t, http.StatusOK).Data(t)
	if d["transcription"] != "buy oat milk and call the plumber" || d["language"] != "en" || d["confidence"] != 0.97 ||
		d["credits_used"] != float64(5) || d["credits_remaining"] != float64(10) {
		t.Fatalf("answer %v", d)
	}
	dg.Script(testkit.Heard{Status: http.StatusInternalServerError})
	post(t, app, alice, "/api/v1/ai/transcribe", body).ExpectError(t, http.StatusServiceUnavailable, ai.CodeTranscriptionUnavailable)
	// The service measured more than the client said: the longer is paid.
	dg.Script(testkit.Heard{Transcript: "long", Seconds: 70})
	if d := post(t, app, alice, "/api/v1/ai/transcribe", body).Expect(t, http.StatusOK).Data(t); d["credits_used"] != float64(10) {
		t.Fatalf("answer %v", d)
	}
	post(t, app, alice, "/api/v1/ai/transcribe", map[string]any{"audio_url": "https://cdn.example.com/a", "duration_seconds": 301}).
		ExpectError(t, http.StatusBadRequest, ai.CodeAudioTooLong)
	if s := spent(t, app, alice); s != 15 {
		t.Fatalf("spent %d, want 15", s)
	}
}

func TestOldSessionCountsAndDraftsArePurged(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	o.ForShape("task_draft", testkit.Reply{Content: `{"title": "Later", "description": "", "priority": "low", "due_date": null, "subtasks": []}`})
	alice := app.SignIn(t, "alice@example.com")
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "hi"}).Expect(t, http.StatusOK)
	note := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "later"}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	app.Do(t, alice, http.MethodPost, "/api/v1/notes/"+note+"/convert", map[string]any{}).Expect(t, http.StatusOK)
	run := func() {
		t.Helper()
		res, err := app.Queue.Insert(context.Background(), ai.PurgeArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "ai_purge", func() bool {
			return app.Count(t, "river_job", "id = ? AND state = 'completed'", res.Job.ID) == 1
		})
	}
	run()
	if app.Count(t, "ai_sessions", "") != 1 || app.Count(t, "ai_note_drafts", "") != 1 {
		t.Fatal("fresh rows were purged")
	}
	app.Clock.Advance(31 * 24 * time.Hour)
	run()
	if app.Count(t, "ai_sessions", "") != 0 || app.Count(t, "ai_note_drafts", "") != 0 {
		t.Fatal("old rows were kept")
	}
}

// TestAWaitingStreamGetsHeartbeatsAndTheRestOfItsAnswer: while the model
// holds its answer, the client receives keep-alive comments at the
// configured interval (100 ms here), more than one; then the answer ends
// as usual.
func TestAWaitingStreamGetsHeartbeatsAndTheRestOfItsAnswer(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	o.Script(testkit.Reply{Chunks: []string{"One", " two"}, HoldAfter: 1})
	res := openStream(t, app, alice, map[string]any{"message": "count"}, uuid.NewString())
	<-o.Started()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	beats := 0
	deadline := time.After(10 * time.Second)
	for beats < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended after %d heartbeats", beats)
			}
			if strings.HasPrefix(l, ":") {
				beats++
			}
		case <-deadline:
			t.Fatalf("%d heartbeats in 10 s at an interval of 100 ms", beats)
		}
	}
	res.Body.Close() // the client leaves: the held answer is given up
	for range lines {
	}
}
