package ai

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
)

// ChatStream is a streamed chat answer, admitted (credits, session) and with
// its context built, ready to run once the response has begun.
type ChatStream struct {
	s     *Service
	a     *admission
	msgs  []message
	known map[uuid.UUID]bool
}

// PrepareStream admits a streamed chat request. Its errors (402, 429, 404,
// 503 when not configured) are answered as usual, before any event.
func (s *Service) PrepareStream(ctx context.Context, p auth.Principal, req ChatRequest) (*ChatStream, error) {
	if !s.llm.ok {
		return nil, errNotConfigured
	}
	a, err := s.admit(ctx, p, "chat_stream", s.cfg.Costs.Chat)
	if err != nil {
		return nil, err
	}
	msgs, known, err := s.chatContext(ctx, p, req, chatStreamPrompt)
	if err != nil {
		a.end(ctx, err)
		return nil, err
	}
	return &ChatStream{s: s, a: a, msgs: msgs, known: known}, nil
}

// textEvent is one piece of the answer.
type textEvent struct {
	Text string `json:"text"`
}

// doneEvent ends a streamed answer.
type doneEvent struct {
	Done             bool        `json:"done"`
	SuggestedActions []ActionDTO `json:"suggested_actions"`
	CreditsUsed      int         `json:"credits_used"`
	CreditsRemaining int         `json:"credits_remaining"`
	AIRequestWarning bool        `json:"ai_request_warning"`
}

// doneSentinel is the last event's data, as OpenAI's streams end.
var doneSentinel = []byte("[DONE]")

var errShuttingDown = apperr.New(apperr.KindUnavailable, CodeAIUnavailable,
	"the server is restarting; nothing was charged, try again")

// Run streams the answer: text events as the provider writes, then the done
// event with the actions and the charge, then [DONE]. The charge is taken
// only when the provider finished its answer; a provider failure is an
// error event, and a client that left (or a server shutting down) cancels
// the provider call.
func (c *ChatStream) Run(ctx context.Context, es *httpx.EventStream) {
	var err error
	defer func() { c.a.end(ctx, err) }()
	split := newSplitter()
	err = c.s.llm.stream(ctx, c.msgs, func(piece string) error {
		if out := split.feed(piece); out != "" {
			return es.JSON("", textEvent{Text: out})
		}
		return nil
	})
	if err == nil {
		if out := split.rest(); out != "" {
			err = es.JSON("", textEvent{Text: out})
		}
	}
	if err == nil {
		actions := c.s.keepActions(parseActions(split.actions()), c.known)
		bal, perr := c.a.pay(ctx, nil)
		if err = perr; err == nil {
			if err = es.JSON("", doneEvent{Done: true, SuggestedActions: toActionDTOs(actions), CreditsUsed: c.a.cost,
				CreditsRemaining: bal.Total(), AIRequestWarning: c.a.warning()}); err == nil {
				err = es.Event("", doneSentinel)
			}
			return
		}
	}
	switch {
	case es.Gone():
		return // nobody to tell
	case ctx.Err() != nil:
		_ = es.Error(ctx, errShuttingDown)
	default:
		_ = es.Error(ctx, err)
	}
}

// splitter separates the streamed text from the ACTIONS line that may end
// it, holding back the little text that could be the start of the marker.
type splitter struct {
	pending string
	tail    strings.Builder
	found   bool
	started bool
}

// newSplitter starts as if after a line break, so that an answer that is
// only an ACTIONS line is recognised too.
func newSplitter() *splitter { return &splitter{pending: "\n"} }

func (s *splitter) feed(piece string) string {
	if s.found {
		s.tail.WriteString(piece)
		return ""
	}
	buf := s.pending + piece
	if i := strings.Index(buf, actionsMarker); i >= 0 {
		s.found = true
		s.tail.WriteString(buf[i+len(actionsMarker):])
		s.pending = ""
		return s.out(buf[:i])
	}
	keep := 0
	for k := min(len(actionsMarker)-1, len(buf)); k > 0; k-- {
		if strings.HasSuffix(buf, actionsMarker[:k]) {
			keep = k
			break
		}
	}
	s.pending = buf[len(buf)-keep:]
	return s.out(buf[:len(buf)-keep])
}

func (s *splitter) out(text string) string {
	if !s.started { // the answer's leading line breaks, however it was cut
		text = strings.TrimLeft(text, "\n")
		s.started = text != ""
	}
	return text
}

// rest is the text held back at the end of the stream.
func (s *splitter) rest() string {
	if s.found {
		return ""
	}
	p := s.pending
	s.pending = ""
	return s.out(p)
}

func (s *splitter) actions() string { return s.tail.String() }

// parseActions reads the ACTIONS line: a JSON array of actions, possibly in
// a code fence. Text that does not match the shape gives no actions (the
// answer's text was delivered already).
func parseActions(raw string) []modelAction {
	doc, problem := actionsShape.check(raw)
	if strings.TrimSpace(raw) == "" || problem != "" {
		return nil
	}
	var out []modelAction
	if err := json.Unmarshal([]byte(doc), &out); err != nil {
		return nil
	}
	return out
}
