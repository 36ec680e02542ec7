package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	openai "github.com/sashabaranov/go-openai"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/observability"
)

// CodeAIUnavailable is the error code when the assistant cannot answer.
const CodeAIUnavailable = "AI_SERVICE_UNAVAILABLE"

var errNotConfigured = apperr.New(apperr.KindUnavailable, CodeAIUnavailable,
	"the AI assistant is not configured on this server: set OPENAI_API_KEY (and OPENAI_BASE_URL and OPENAI_MODEL "+
		"for another OpenAI-compatible server)")

// providerIdleConns is how many idle connections to the provider are kept.
const providerIdleConns = 256

// provider is the OpenAI-compatible chat-completions endpoint.
type provider struct {
	client  *openai.Client
	model   string
	timeout time.Duration
	ok      bool
}

func newProvider(cfg Config) *provider {
	c := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		c.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	// One host serves every request, many at once (streams stay open for
	// seconds): keep their connections for the next request instead of the
	// default two, so a busy server does not dial (and shake hands over
	// TLS) for each one.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = providerIdleConns
	c.HTTPClient = &http.Client{Transport: observability.Outbound(watchingTransport{base: t}, "openai")}
	return &provider{client: openai.NewClientWithConfig(c), model: cfg.Model, timeout: cfg.Timeout, ok: cfg.APIKey != ""}
}

// failed turns a provider failure into the 503 the client sees.
func failed(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", apperr.New(apperr.KindUnavailable, CodeAIUnavailable,
			"the AI assistant took too long to answer; nothing was charged, try again"), err)
	}
	return fmt.Errorf("%w (%v)", apperr.New(apperr.KindUnavailable, CodeAIUnavailable,
		"the AI assistant is unavailable right now; nothing was charged, try again later"), err)
}

// message is one message of a conversation with the model.
type message = openai.ChatCompletionMessage

// conversation is the system prompt, more system instructions and context,
// then the user's message.
func conversation(system, user string, more ...string) []message {
	out := []message{{Role: openai.ChatMessageRoleSystem, Content: system}}
	for _, m := range more {
		out = append(out, message{Role: openai.ChatMessageRoleSystem, Content: m})
	}
	return append(out, message{Role: openai.ChatMessageRoleUser, Content: user})
}

// shape is the JSON schema of an answer type. The schema the model is
// asked for names every key and allows no other (strict structured output
// needs that); the answer is checked against a lenient copy that allows
// keys the shape does not name, which are dropped: many servers and models
// do not enforce response_format and add a key or two.
type shape struct {
	name     string
	registry huma.Registry
	schema   *huma.Schema
	raw      json.RawMessage
}

func shapeOf[T any](name string) *shape {
	strict := huma.NewMapRegistry("#/$defs/", huma.DefaultSchemaNamer)
	s := strict.Schema(reflect.TypeFor[T](), false, name)
	doc := map[string]any{}
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &doc)
	if defs := strict.Map(); len(defs) > 0 {
		doc["$defs"] = defs
	}
	raw, _ := json.Marshal(doc)

	lenient := huma.NewMapRegistry("#/$defs/", huma.DefaultSchemaNamer)
	ls := lenient.Schema(reflect.TypeFor[T](), false, name)
	allowExtraKeys(ls)
	for _, d := range lenient.Map() {
		allowExtraKeys(d)
	}
	return &shape{name: name, registry: lenient, schema: ls, raw: raw}
}

// allowExtraKeys lets every object of s have keys it does not name.
func allowExtraKeys(s *huma.Schema) {
	if s == nil {
		return
	}
	if s.AdditionalProperties == false {
		s.AdditionalProperties = true
	}
	for _, p := range s.Properties {
		allowExtraKeys(p)
	}
	allowExtraKeys(s.Items)
}

// check validates an answer against the shape; it returns the JSON it
// read (see answerJSON) and what is wrong.
func (s *shape) check(answer string) (string, string) {
	doc := answerJSON(answer)
	field, problem := s.checkField(doc)
	if problem != "" && field != "" {
		problem = field + ": " + problem
	}
	return doc, problem
}

// checkField validates a document against the shape; it returns the field
// that is wrong (empty for the whole document) and why.
func (s *shape) checkField(doc string) (string, string) {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return "", "is not valid JSON"
	}
	res := &huma.ValidateResult{}
	huma.Validate(s.registry, s.schema, huma.NewPathBuffer([]byte{}, 0), huma.ModeWriteToServer, v, res)
	if len(res.Errors) > 0 {
		var d *huma.ErrorDetail
		if errors.As(res.Errors[0], &d) {
			return d.Location, d.Message
		}
		return "", res.Errors[0].Error()
	}
	return "", ""
}

// answerJSON finds the JSON document in a model's answer: the answer
// itself, the inside of a markdown code fence, or, in text around it, from
// the first opening brace or bracket to the last closing one.
func answerJSON(answer string) string {
	a := strings.TrimSpace(answer)
	if rest, ok := strings.CutPrefix(a, "```"); ok {
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:] // the fence's language tag
		}
		a = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "```"))
	}
	if a == "" || a[0] == '{' || a[0] == '[' {
		return a
	}
	start := strings.IndexAny(a, "{[")
	end := strings.LastIndexAny(a, "}]")
	if start < 0 || end < start {
		return a
	}
	return a[start : end+1]
}

// structured asks for an answer in shape T: an answer that does not match
// is asked for once more, then it is a 503.
func structured[T any](ctx context.Context, p *provider, sh *shape, msgs []message) (*T, error) {
	if !p.ok {
		return nil, errNotConfigured
	}
	for attempt := 0; ; attempt++ {
		answer, err := p.complete(ctx, msgs, sh)
		if err != nil {
			return nil, err
		}
		doc, problem := sh.check(answer)
		if problem == "" {
			var out T
			if err := json.Unmarshal([]byte(doc), &out); err == nil {
				return &out, nil
			}
			problem = "its fields have the wrong types"
		}
		if attempt == 1 {
			return nil, apperr.New(apperr.KindUnavailable, CodeAIUnavailable,
				"the AI assistant's answer could not be used; nothing was charged, try again")
		}
		msgs = append(msgs,
			message{Role: openai.ChatMessageRoleAssistant, Content: answer},
			message{Role: openai.ChatMessageRoleUser, Content: fmt.Sprintf(retryPrompt, problem)})
	}
}

// complete makes one chat completion and returns its text.
func (p *provider) complete(ctx context.Context, msgs []message, sh *shape) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req := openai.ChatCompletionRequest{Model: p.model, Messages: msgs}
	if sh != nil {
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: sh.name, Schema: sh.raw}}
	}
	res, err := p.client.CreateChatCompletion(ctx, req)
	if err != nil {
		return "", failed(ctx, err)
	}
	if len(res.Choices) == 0 {
		return "", failed(ctx, errors.New("no choices in the answer"))
	}
	return res.Choices[0].Message.Content, nil
}

// stream makes a streamed chat completion, handing each piece of text to
// emit as it comes; it stops (cancelling the call) when emit fails or ctx
// ends.
func (p *provider) stream(ctx context.Context, msgs []message, emit func(string) error) error {
	if !p.ok {
		return errNotConfigured
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	watch := &doneWatch{}
	s, err := p.client.CreateChatCompletionStream(context.WithValue(ctx, doneWatchKey{}, watch),
		openai.ChatCompletionRequest{Model: p.model, Messages: msgs, Stream: true})
	if err != nil {
		return failed(ctx, err)
	}
	defer s.Close()
	// A provider that hangs up mid-answer ends its stream as a finished one
	// does (the client says io.EOF to both): a chunk with a finish_reason,
	// or the closing [DONE] line, tells them apart.
	finished := false
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if finished || watch.seen.Load() {
				return nil
			}
			return failed(ctx, errors.New("the stream ended before the answer was complete"))
		}
		if err != nil {
			return failed(ctx, err)
		}
		if len(chunk.Choices) == 0 {
			continue
		}
		c := chunk.Choices[0]
		if c.Delta.Content != "" {
			if err := emit(c.Delta.Content); err != nil {
				return err
			}
		}
		if c.FinishReason != "" {
			finished = true
		}
	}
}

// doneWatch notes whether a streamed answer's body carried the closing
// "data: [DONE]" line.
type doneWatch struct{ seen atomic.Bool }

type doneWatchKey struct{}

// watchingTransport hands the response body of a request whose context
// carries a doneWatch through a reader that looks for that line.
type watchingTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t watchingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if w, ok := req.Context().Value(doneWatchKey{}).(*doneWatch); ok && err == nil {
		res.Body = &watchedBody{ReadCloser: res.Body, w: w}
	}
	return res, err
}

// watchedBody reads a server-sent event stream line by line as it passes,
// keeping only the start of the current line.
type watchedBody struct {
	io.ReadCloser
	w    *doneWatch
	line []byte
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, c := range p[:n] {
		if c != '\n' {
			if len(b.line) < 32 {
				b.line = append(b.line, c)
			}
			continue
		}
		if rest, ok := bytes.CutPrefix(bytes.TrimSpace(b.line), []byte("data:")); ok && string(bytes.TrimSpace(rest)) == "[DONE]" {
			b.w.seen.Store(true)
		}
		b.line = b.line[:0]
	}
	return n, err
}
