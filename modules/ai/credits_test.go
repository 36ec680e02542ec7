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

// tally checks a burst's answers against the ledger and the provider: as
// many answers with content as credits spent, as provider calls, as want.
func tally(t *testing.T, app *testkit.App, u *testkit.User, calls int, res []*testkit.Response, want int) {
	t.Helper()
	delivered, charged := 0, 0
	for _, r := range res {
		a := testkit.ReadAnswer(r)
		if a.Content {
			delivered++
		}
		charged += a.Charged
		if !a.Content && a.ErrorCode != billing.CodeInsufficientCredits {
			t.Errorf("an answer without content and without INSUFFICIENT_CREDITS: %d %s", r.Status, r.Body)
		}
	}
	if delivered != want || charged != want || spent(t, app, u) != want || calls > want {
		t.Fatalf("%d answers with content, %d credits reported, %d spent in the ledger, %d provider calls; want %d of each (calls at most)",
			delivered, charged, spent(t, app, u), calls, want)
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
