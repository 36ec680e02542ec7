package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// OpenAI is a local server speaking OpenAI's chat-completions API
// (POST /v1/chat/completions, JSON and stream: true), answering from a
// script so that tests can make it succeed, fail, hang or cut a stream.
type OpenAI struct {
	// URL is the base URL to configure (OPENAI_BASE_URL): it ends in /v1.
	URL string
	// Key is the API key it accepts.
	Key string

	mu        sync.Mutex
	script    []Reply
	byShape   map[string]Reply
	fallback  Reply
	requests  []ChatRequest
	cancelled int
	started   chan struct{}
}

// Reply is one scripted answer of the OpenAI fake.
type Reply struct {
	// Status, when not 200, answers with OpenAI's error object.
	Status int
	// Content is the assistant message (JSON answers).
	Content string
	// Chunks are the pieces of a streamed answer (default: Content in one).
	Chunks []string
	// Hang waits, without answering, until the caller gives up.
	Hang bool
	// CutAfter > 0 ends a stream after that many chunks without a finish.
	CutAfter int
	// HoldAfter > 0 stops a stream after that many chunks and waits until
	// the caller gives up (a client that disconnects meanwhile).
	HoldAfter int
	// Delay is how long the model thinks before it answers.
	Delay time.Duration
	// NoFinish ends a stream with [DONE] but no chunk with a finish_reason
	// (as some OpenAI-compatible servers do).
	NoFinish bool
}

// ChatRequest is what the fake received (the fields tests look at).
type ChatRequest struct {
	Model          string `json:"model"`
	Stream         bool   `json:"stream"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

// Text is every message of the request, joined (to look for context).
func (r ChatRequest) Text() string {
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	return b.String()
}

// NewOpenAI starts the fake; it answers fallback when the script is empty.
func NewOpenAI(t testing.TB, fallback Reply) *OpenAI {
	t.Helper()
	o := &OpenAI{Key: "sk-test-" + fmt.Sprint(time.Now().UnixNano()), fallback: fallback, byShape: map[string]Reply{},
		started: make(chan struct{}, 64)}
	srv := httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(srv.Close)
	o.URL = srv.URL + "/v1"
	return o
}

// Script queues replies, answered in order before the fallback.
func (o *OpenAI) Script(replies ...Reply) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.script = append(o.script, replies...)
}

// ForShape answers requests for the JSON schema named name with r when the
// script is empty (a chat answer, subtask suggestions and a task draft each
// have their shape).
func (o *OpenAI) ForShape(name string, r Reply) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byShape[name] = r
}

// Requests returns the requests received so far.
func (o *OpenAI) Requests() []ChatRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]ChatRequest(nil), o.requests...)
}

// Cancelled is how many calls the caller gave up on while the fake was
// still answering (a hang, a held stream).
func (o *OpenAI) Cancelled() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cancelled
}

// Started receives a value when a held stream has sent its chunks.
func (o *OpenAI) Started() <-chan struct{} { return o.started }

func (o *OpenAI) next(req ChatRequest) Reply {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.script) == 0 {
		if f := req.ResponseFormat; f != nil && f.JSONSchema != nil {
			if r, ok := o.byShape[f.JSONSchema.Name]; ok {
				return r
			}
		}
		return o.fallback
	}
	r := o.script[0]
	o.script = o.script[1:]
	return r
}

func (o *OpenAI) giveUp() {
	o.mu.Lock()
	o.cancelled++
	o.mu.Unlock()
}

func openAIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": "server_error", "param": nil, "code": nil}})
}

func (o *OpenAI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		openAIError(w, http.StatusNotFound, "unknown route "+r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+o.Key {
		openAIError(w, http.StatusUnauthorized, "Incorrect API key provided")
		return
	}
	var req ChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		openAIError(w, http.StatusBadRequest, "invalid request")
		return
	}
	o.mu.Lock()
	o.requests = append(o.requests, req)
	o.mu.Unlock()
	reply := o.next(req)
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			o.giveUp()
			return
		}
	}
	switch {
	case reply.Hang:
		<-r.Context().Done()
		o.giveUp()
		return
	case reply.Status != 0 && reply.Status != http.StatusOK:
		openAIError(w, reply.Status, "The server had an error while processing your request.")
		return
	case req.Stream:
		o.stream(w, r, req, reply)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-test", "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": reply.Content}}},
		"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
	})
}

func (o *OpenAI) stream(w http.ResponseWriter, r *http.Request, req ChatRequest, reply Reply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl := w.(http.Flusher)
	chunk := func(delta map[string]any, finish any) {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk",
			"created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		fmt.Fprintf(w, "data: %s\n\n", b)
		fl.Flush()
	}
	chunks := reply.Chunks
	if chunks == nil {
		chunks = []string{reply.Content}
	}
	chunk(map[string]any{"role": "assistant", "content": ""}, nil)
	for i, c := range chunks {
		if reply.CutAfter > 0 && i == reply.CutAfter {
			return // the connection ends without a finish
		}
		if reply.HoldAfter > 0 && i == reply.HoldAfter {
			o.started <- struct{}{}
			<-r.Context().Done()
			o.giveUp()
			return
		}
		chunk(map[string]any{"content": c}, nil)
	}
	if !reply.NoFinish {
		chunk(map[string]any{}, "stop")
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// AIFakes starts an OpenAI fake that answers each structured request in
// its shape (a chat answer, subtasks, a task draft) and a Deepgram fake,
// and returns the configuration that points the app at them.
func AIFakes(t testing.TB) (Option, *OpenAI, *Deepgram) {
	t.Helper()
	o := NewOpenAI(t, Reply{Chunks: []string{"Take one ", "step at a time."}})
	o.ForShape("chat_answer", Reply{Content: `{"response": "Take one step at a time.", "suggested_actions": []}`})
	o.ForShape("subtask_suggestions", Reply{Content: `{"subtasks": [{"title": "First step"}, {"title": "Second step"}]}`})
	o.ForShape("task_draft", Reply{Content: `{"title": "From a note", "description": "", "priority": "medium", "due_date": null, "subtasks": []}`})
	dg := NewDeepgram(t, Heard{Transcript: "a short voice memo", Seconds: 20, Language: "en", Confidence: 0.9})
	return func(opts *options) {
		for k, v := range map[string]any{
			"ai.api_key": o.Key, "ai.base_url": o.URL,
			"ai.transcription.api_key": dg.Key, "ai.transcription.base_url": dg.URL,
			"ai.transcription.retry_backoff": "10ms", "ai.stream_heartbeat": "100ms",
		} {
			opts.overrides[k] = v
		}
	}, o, dg
}

// Answer is what one AI request delivered to its client, JSON or streamed.
type Answer struct {
	// Content is true when the client got the model's words: a 200 JSON
	// answer, or a stream with at least one text event.
	Content bool
	// Charged is the credits_used the answer reported (a JSON answer, or a
	// stream's done event).
	Charged int
	// ErrorCode is the error's code: the JSON envelope's, or the stream's
	// error event's.
	ErrorCode string
}

// ReadAnswer reads an AI route's response, JSON or text/event-stream.
func ReadAnswer(r *Response) Answer {
	var out Answer
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		var env struct {
			Data *struct {
				CreditsUsed int `json:"credits_used"`
			} `json:"data"`
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(r.Body, &env)
		out.Content = r.Status == http.StatusOK && env.Data != nil
		if env.Data != nil {
			out.Charged = env.Data.CreditsUsed
		}
		out.ErrorCode = env.Error.Code
		return out
	}
	for _, block := range strings.Split(string(r.Body), "\n\n") {
		typ, data := "", ""
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				typ = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		var ev struct {
			Text        *string `json:"text"`
			Done        bool    `json:"done"`
			CreditsUsed int     `json:"credits_used"`
			Error       struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if data == "" || json.Unmarshal([]byte(data), &ev) != nil {
			continue
		}
		switch {
		case typ == "error":
			out.ErrorCode = ev.Error.Code
		case ev.Text != nil && *ev.Text != "":
			out.Content = true
		case ev.Done:
			out.Charged = ev.CreditsUsed
		}
	}
	return out
}

// CheckCharges checks the answers of a burst of charging requests of u
// against the ledger: each is content or a refusal for credits (402) or the
// sign-in's cap (429); the credits the answers with content report are
// what the ledger charged; the providers were called (calls) at most once
// per answer with content; no credit hold is left open. It returns how
// many answers had content and the credits they reported.
func CheckCharges(t testing.TB, app *App, u *User, res []*Response, calls int) (delivered, charged int) {
	t.Helper()
	for _, r := range res {
		a := ReadAnswer(r)
		switch {
		case a.Content:
			delivered++
			charged += a.Charged
		case a.ErrorCode != "INSUFFICIENT_CREDITS" && a.ErrorCode != "AI_TASK_LIMIT_REACHED":
			t.Errorf("an answer without content and without a refusal for credits: %d %s", r.Status, r.Body)
		}
	}
	var spent int
	if err := app.DB.Gorm.Raw("SELECT COALESCE(-SUM(amount), 0) FROM credit_ledger WHERE user_id = ? AND entry IN ('spend', 'hold')",
		u.ID).Scan(&spent).Error; err != nil {
		t.Fatal(err)
	}
	if spent != charged || calls > delivered {
		t.Fatalf("%d answers with content reported %d credits; the ledger charged %d; %d provider calls",
			delivered, charged, spent, calls)
	}
	if n := app.Count(t, "credit_ledger", "user_id = ? AND entry = 'hold'", u.ID); n != 0 {
		t.Fatalf("%d credit holds left open after every request ended", n)
	}
	return delivered, charged
}
