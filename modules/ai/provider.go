package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	openai "github.com/sashabaranov/go-openai"

	"github.com/perpetuaflow/api/platform/apperr"
)

// CodeAIUnavailable is the error code when the assistant cannot answer.
const CodeAIUnavailable = "AI_SERVICE_UNAVAILABLE"

var errNotConfigured = apperr.New(apperr.KindUnavailable, CodeAIUnavailable,
	"the AI assistant is not configured on this server: set OPENAI_API_KEY (and OPENAI_BASE_URL and OPENAI_MODEL "+
		"for another OpenAI-compatible server)")

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
	c.HTTPClient = &http.Client{}
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

// shape is the JSON schema of an answer type, used both to ask the model
// for that shape and to check what it answered.
type shape struct {
	name     string
	registry huma.Registry
	schema   *huma.Schema
	raw      json.RawMessage
}

func shapeOf[T any](name string) *shape {
	reg := huma.NewMapRegistry("#/$defs/", huma.DefaultSchemaNamer)
	s := reg.Schema(reflect.TypeFor[T](), false, name)
	doc := map[string]any{}
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &doc)
	if defs := reg.Map(); len(defs) > 0 {
		doc["$defs"] = defs
	}
	raw, _ := json.Marshal(doc)
	return &shape{name: name, registry: reg, schema: s, raw: raw}
}

// check validates an answer against the shape; it returns what is wrong.
func (s *shape) check(answer string) (any, string) {
	v, field, problem := s.checkField(answer)
	if problem != "" && field != "" {
		problem = field + ": " + problem
	}
	return v, problem
}

// checkField validates a document against the shape; it returns the value,
// or the field that is wrong (empty for the whole document) and why.
func (s *shape) checkField(doc string) (any, string, string) {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return nil, "", "is not valid JSON"
	}
	res := &huma.ValidateResult{}
	huma.Validate(s.registry, s.schema, huma.NewPathBuffer([]byte{}, 0), huma.ModeWriteToServer, v, res)
	if len(res.Errors) > 0 {
		var d *huma.ErrorDetail
		if errors.As(res.Errors[0], &d) {
			return nil, d.Location, d.Message
		}
		return nil, "", res.Errors[0].Error()
	}
	return v, "", ""
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
		_, problem := sh.check(answer)
		if problem == "" {
			var out T
			if err := json.Unmarshal([]byte(answer), &out); err == nil {
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
	s, err := p.client.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{Model: p.model, Messages: msgs, Stream: true})
	if err != nil {
		return failed(ctx, err)
	}
	defer s.Close()
	// A provider that hangs up mid-answer ends its stream like a finished
	// one; only a finish_reason tells them apart.
	finished := false
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if finished {
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
