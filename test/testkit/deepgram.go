package testkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Deepgram is a local server speaking Deepgram's pre-recorded API
// (POST /v1/listen with {"url"}), answering from a script.
type Deepgram struct {
	// URL is the base URL to configure (DEEPGRAM_BASE_URL).
	URL string
	// Key is the API key it accepts ("Authorization: Token <key>").
	Key string

	mu       sync.Mutex
	script   []Heard
	fallback Heard
	requests []DeepgramRequest
	hung     chan struct{}
}

// Heard is one scripted answer of the Deepgram fake.
type Heard struct {
	// Status, when not 200, answers with Deepgram's error object.
	Status     int
	Transcript string
	Seconds    float64
	Language   string
	Confidence float64
	// Hang takes the request and answers nothing until the caller gives up
	// (a transcription under way when its worker is killed, say).
	Hang bool
}

// DeepgramRequest is what the fake received.
type DeepgramRequest struct {
	Model    string
	AudioURL string
}

// NewDeepgram starts the fake; it answers fallback when the script is empty.
func NewDeepgram(t testing.TB, fallback Heard) *Deepgram {
	t.Helper()
	d := &Deepgram{Key: "dg-test-key", fallback: fallback, hung: make(chan struct{}, 64)}
	srv := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

// Script queues answers, given in order before the fallback.
func (d *Deepgram) Script(h ...Heard) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.script = append(d.script, h...)
}

// Hung receives a value when a Hang answer has taken its request.
func (d *Deepgram) Hung() <-chan struct{} { return d.hung }

// Requests returns the requests received so far.
func (d *Deepgram) Requests() []DeepgramRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeepgramRequest(nil), d.requests...)
}

func deepgramError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"err_code": code, "err_msg": msg, "request_id": "dg-req"})
}

func (d *Deepgram) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/listen" {
		deepgramError(w, http.StatusNotFound, "NOT_FOUND", "unknown route")
		return
	}
	if r.Header.Get("Authorization") != "Token "+d.Key {
		deepgramError(w, http.StatusUnauthorized, "INVALID_AUTH", "Invalid credentials.")
		return
	}
	var body struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.URL == "" {
		deepgramError(w, http.StatusBadRequest, "Bad Request", "Invalid JSON or missing url")
		return
	}
	d.mu.Lock()
	d.requests = append(d.requests, DeepgramRequest{Model: r.URL.Query().Get("model"), AudioURL: body.URL})
	h := d.fallback
	if len(d.script) > 0 {
		h, d.script = d.script[0], d.script[1:]
	}
	d.mu.Unlock()
	if h.Hang {
		d.hung <- struct{}{}
		<-r.Context().Done()
		return
	}
	if h.Status != 0 && h.Status != http.StatusOK {
		deepgramError(w, h.Status, "Bad Request", "failed to process audio: corrupt or unsupported data")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"metadata": map[string]any{"request_id": "dg-req", "duration": h.Seconds, "channels": 1,
			"models": []string{"nova-2"}},
		"results": map[string]any{"channels": []any{map[string]any{
			"detected_language": h.Language, "language_confidence": 0.99,
			"alternatives": []any{map[string]any{"transcript": h.Transcript, "confidence": h.Confidence, "words": []any{}}},
		}}},
	})
}
