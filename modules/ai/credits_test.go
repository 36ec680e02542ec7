package ai_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/test/testkit"
)

// withBalance starts the assistant for users who have exactly k credits:
// no daily credits, k welcome credits.
func withBalance(t *testing.T, k int, opts ...testkit.Option) (*testkit.App, *testkit.OpenAI, *testkit.Deepgram) {
	t.Helper()
	return start(t, append([]testkit.Option{testkit.WithConfig("limits.free.daily_ai_credits", 0),
		testkit.WithConfig("limits.pro.daily_ai_credits", 0), testkit.WithConfig("billing.kickstart_credits", k)}, opts...)...)
}

// aiRacer is one charging request of a burst.
func aiRacer(u *testkit.User, path string, body any) testkit.Racer {
	return testkit.Racer{User: u, Request: testkit.Request{Method: http.MethodPost, Path: path, Body: body,
		Headers: map[string]string{"Idempotency-Key": uuid.NewString()}}}
}

// tally checks a burst's answers against the ledger and the provider
// (testkit.CheckCharges): want answers with content, the balance spent.
func tally(t *testing.T, app *testkit.App, u *testkit.User, calls int, res []*testkit.Response, want int) {
	t.Helper()
	if delivered, charged := testkit.CheckCharges(t, app, u, res, calls); delivered != want || charged != want {
		t.Fatalf("%d answers with content for %d credits; want %d of each", delivered, charged, want)
	}
	if b := app.Do(t, u, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t); b["total"] != float64(0) {
		t.Fatalf("balance %v after the burst", b)
	}
}

// TestConcurrentStreamsAtOneCreditDeliverOneAnswer: sixteen streamed chats
// from two sign-ins with one credit left get one answer; the others are
// refused before the model is asked.
func TestConcurrentStreamsAtOneCreditDeliverOneAnswer(t *testing.T) {
	t.Parallel()
	app, o, _ := withBalance(t, 1)
	alice1 := app.SignIn(t, "alice@example.com")
	alice2 := app.SignIn(t, "alice@example.com")
	slow := testkit.Reply{Chunks: []string{"Take one ", "step at a time."}, Delay: 300 * time.Millisecond}
	var rs []testkit.Racer
	for i := range 16 {
		o.Script(slow)
		u := alice1
		if i%2 == 1 {
			u = alice2
		}
		rs = append(rs, aiRacer(u, "/api/v1/ai/chat/stream", map[string]any{"message": fmt.Sprintf("hi %d", i)}))
	}
	res := app.Burst(t, rs)
	tally(t, app, alice1, len(o.Requests()), res, 1)
}

// TestAMixOfChargingRoutesDeliversExactlyWhatWasPaidFor: JSON chats,
// streams and subtask suggestions at a balance of 3 deliver 3 answers.
func TestAMixOfChargingRoutesDeliversExactlyWhatWasPaidFor(t *testing.T) {
	t.Parallel()
	app, o, _ := withBalance(t, 3)
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "alice@example.com")
	task := addTask(t, app, alice, map[string]any{"title": "Move house"})
	think := 300 * time.Millisecond
	o.ForShape("chat_answer", testkit.Reply{Content: okAnswer, Delay: think})
	o.ForShape("subtask_suggestions", testkit.Reply{Content: `{"subtasks": [{"title": "Pack"}]}`, Delay: think})
	var rs []testkit.Racer
	for i := range 18 {
		u := alice
		if i%2 == 1 {
			u = bob
		}
		switch i % 3 {
		case 0:
			rs = append(rs, aiRacer(u, "/api/v1/ai/chat", map[string]any{"message": "hi"}))
		case 1:
			rs = append(rs, aiRacer(u, "/api/v1/ai/chat/stream", map[string]any{"message": "hi"}))
		case 2:
			rs = append(rs, aiRacer(u, "/api/v1/ai/generate-subtasks", map[string]any{"task_id": task}))
		}
	}
	res := app.Burst(t, rs)
	tally(t, app, alice, len(o.Requests()), res, 3)
}

// TestAVoiceNoteHoldsItsCostUntilTranscribed: a voice note's cost is held
// when it is stored, so a second one the rest of the balance cannot pay
// for is refused at once (402, not stored), and the first is charged once
// when its text arrives.
func TestAVoiceNoteHoldsItsCostUntilTranscribed(t *testing.T) {
	t.Parallel()
	app, _, dg := withBalance(t, 7, testkit.WithConfig("ai.transcription.timeout", "1s"))
	alice := app.SignIn(t, "alice@example.com")
	makePro(t, app, alice)
	dg.Script(testkit.Heard{Hang: true}) // the first attempt hangs, then times out; the retry succeeds
	voice := func(seconds int) *testkit.Response {
		return app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{
			"voice_url": "https://cdn.example.com/a.webm", "voice_duration_seconds": seconds})
	}
	id := voice(45).Expect(t, http.StatusCreated).Data(t)["id"].(string)
	<-dg.Hung()
	if b := app.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Data(t); b["total"] != float64(2) {
		t.Fatalf("balance while the transcription runs: %v, want 7 - 5 held", b)
	}
	voice(20).ExpectError(t, http.StatusPaymentRequired, billing.CodeInsufficientCredits)
	post(t, app, alice, "/api/v1/ai/transcribe", map[string]any{"audio_url": "https://cdn.example.com/b.m4a", "duration_seconds": 20}).
		ExpectError(t, http.StatusPaymentRequired, billing.CodeInsufficientCredits)
	if n := app.Count(t, "notes", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("%d notes: the refused one was stored", n)
	}
	testkit.Eventually(t, 15*time.Second, "the transcription", func() bool {
		return app.Count(t, "notes", "id = ? AND transcription_status = 'completed'", id) == 1
	})
	if s := spent(t, app, alice); s != 5 || len(dg.Requests()) != 2 {
		t.Fatalf("spent %d after %d calls, want 5 after 2", s, len(dg.Requests()))
	}
	if b := app.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Data(t); b["total"] != float64(2) {
		t.Fatalf("balance after the transcription: %v", b)
	}
}
