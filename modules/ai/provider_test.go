package ai_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/ai"
	"github.com/perpetuaflow/api/test/testkit"
)

// TestAnswersThatDoNotFollowTheSchemaToTheLetterAreUsed: many servers and
// models do not enforce response_format. Keys the shape does not name are
// dropped, keys in another order and a JSON object in a markdown code
// fence (or after a sentence) are read, each in one call; the keys and
// types the shape names are still checked.
func TestAnswersThatDoNotFollowTheSchemaToTheLetterAreUsed(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	task := addTask(t, app, alice, map[string]any{"title": "Move house"})
	note := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "book the van for saturday"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	cases := []struct {
		name, path string
		body       any
		answer     string
		check      func(d map[string]any) bool
	}{
		{"chat with an extra key", "/api/v1/ai/chat", map[string]any{"message": "hi"},
			`{"response": "Start small.", "suggested_actions": [], "confidence": "high"}`,
			func(d map[string]any) bool { return d["response"] == "Start small." }},
		{"chat with keys in another order and extra keys in an action", "/api/v1/ai/chat",
			map[string]any{"message": "hi", "context": map[string]any{"include_tasks": true}},
			`{"suggested_actions": [{"data": {}, "description": "Done", "task_id": "` + task + `", "type": "complete_task", "score": 0.9}], "response": "Finish it."}`,
			func(d map[string]any) bool {
				acts := d["suggested_actions"].([]any)
				return d["response"] == "Finish it." && len(acts) == 1 && acts[0].(map[string]any)["type"] == "complete_task"
			}},
		{"subtasks in a code fence", "/api/v1/ai/generate-subtasks", map[string]any{"task_id": task},
			"```json\n{\"subtasks\": [{\"title\": \"Book a van\", \"minutes\": 10}], \"reasoning\": \"...\"}\n```",
			func(d map[string]any) bool {
				s := d["suggested_subtasks"].([]any)
				return len(s) == 1 && s[0].(map[string]any)["title"] == "Book a van"
			}},
		{"a draft after a sentence", "/api/v1/notes/" + note + "/convert", map[string]any{},
			"Here is the task:\n{\"title\": \"Book the van\", \"description\": \"\", \"priority\": \"high\", \"due_date\": null, \"subtasks\": [], \"tags\": [\"move\"]}",
			func(d map[string]any) bool { return d["task"].(map[string]any)["title"] == "Book the van" }},
	}
	for _, c := range cases {
		before := len(o.Requests())
		o.Script(testkit.Reply{Content: c.answer})
		d := post(t, app, alice, c.path, c.body).Expect(t, http.StatusOK).Data(t)
		if !c.check(d) || len(o.Requests()) != before+1 {
			t.Fatalf("%s: answer %v after %d calls", c.name, d, len(o.Requests())-before)
		}
	}
	if s := spent(t, app, alice); s != len(cases) {
		t.Fatalf("spent %d, want %d", s, len(cases))
	}
	// A named key of the wrong type is still refused (asked again, then 503).
	o.Script(testkit.Reply{Content: `{"response": 7, "suggested_actions": []}`}, testkit.Reply{Content: `{"response": ["no"]}`})
	post(t, app, alice, "/api/v1/ai/chat", map[string]any{"message": "hi"}).ExpectError(t, http.StatusServiceUnavailable, ai.CodeAIUnavailable)
	if s := spent(t, app, alice); s != len(cases) {
		t.Fatalf("an unusable answer was charged: spent %d", s)
	}
}

// TestAStreamEndingInDONEWithoutAFinishReasonIsComplete: [DONE] ends an
// answer even when no chunk gave a finish_reason (some servers send none);
// a stream that just stops is cut, an error and free.
func TestAStreamEndingInDONEWithoutAFinishReasonIsComplete(t *testing.T) {
	t.Parallel()
	app, o, _ := start(t)
	alice := app.SignIn(t, "alice@example.com")
	o.Script(testkit.Reply{Chunks: []string{"All ", "done."}, NoFinish: true})
	res := openStream(t, app, alice, map[string]any{"message": "hi"}, uuid.NewString())
	evs := events(t, res)
	if last := evs[len(evs)-1]; last.Data != "[DONE]" || spent(t, app, alice) != 1 {
		t.Fatalf("last event %+v, spent %d", last, spent(t, app, alice))
	}
	o.Script(testkit.Reply{Chunks: []string{"Half ", "an answer"}, CutAfter: 1})
	evs = events(t, openStream(t, app, alice, map[string]any{"message": "hi"}, uuid.NewString()))
	if last := evs[len(evs)-1]; last.Type != "error" || spent(t, app, alice) != 1 {
		t.Fatalf("a cut stream: last event %+v, spent %d", last, spent(t, app, alice))
	}
}
