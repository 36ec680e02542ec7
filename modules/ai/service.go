package ai

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// Error codes of this module.
const (
	CodeSessionLimit = "AI_TASK_LIMIT_REACHED"
	CodeTierRequired = "TIER_REQUIRED"
)

// Service runs the assistant's requests: it admits them (credits, the
// session's cap), asks the provider, and commits the spend with what the
// answer changes.
type Service struct {
	db      *database.DB
	clock   clock.Clock
	cfg     Config
	llm     *provider
	stt     *transcriber
	credits billing.Credits
	tasks   tasks.Lookup
	editor  tasks.Editor
	notes   notes.Notes
	log     *zap.Logger
	metrics *metrics
}

type serviceParams struct {
	fx.In

	DB      *database.DB
	Clock   clock.Clock
	Cfg     Config
	LLM     *provider
	STT     *transcriber
	Credits billing.Credits
	Tasks   tasks.Lookup
	Editor  tasks.Editor
	Notes   notes.Notes
	Log     *zap.Logger
	Metrics *metrics
}

func newService(p serviceParams) *Service {
	return &Service{db: p.DB, clock: p.Clock, cfg: p.Cfg, llm: p.LLM, stt: p.STT, credits: p.Credits, tasks: p.Tasks,
		editor: p.Editor, notes: p.Notes, log: p.Log, metrics: p.Metrics}
}

// admission is one admitted request: a request of the sign-in session is
// taken and its cost is held in the ledger, before the provider is called.
// Paid, the hold is settled with the answer's effects; otherwise its end
// releases the hold and gives the session's request back: a failed call
// costs nothing.
type admission struct {
	s    *Service
	p    auth.Principal
	kind string
	cost int
	hold uuid.UUID
	// left is the session's requests left after this one.
	left int
	paid bool
}

// reasons name each kind of request in the credit history.
var reasons = map[string]string{
	"chat":        "AI chat",
	"chat_stream": "AI chat",
	"subtasks":    "AI subtask suggestions",
	"convert":     "AI note conversion",
	"transcribe":  "transcription",
}

// admit holds the cost (402 before anything else) and takes one request of
// the sign-in session (429 when none is left), in one transaction: of N
// concurrent requests with credits for k, k are admitted.
func (s *Service) admit(ctx context.Context, p auth.Principal, kind string, cost int) (*admission, error) {
	a := &admission{s: s, p: p, kind: kind, cost: cost, hold: id.New()}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		now := s.clock.Now()
		if _, err := s.credits.Hold(ctx, tx, p.UserID, a.hold, cost, reasons[kind], now.Add(s.cfg.HoldTTL)); err != nil {
			return err
		}
		// Compare-and-set in one statement: concurrent requests of one
		// session never take more than the cap between them. On PostgreSQL
		// it also spares the admission's commit the wait for the disk
		// (countSQL).
		var counted []int
		err := tx.Raw(countSQL[s.db.Dialect == database.Postgres], p.SessionID, p.UserID, now, now, s.cfg.SessionRequests).
			Scan(&counted).Error
		if err != nil {
			return fmt.Errorf("count ai request: %w", err)
		}
		if len(counted) == 0 {
			return apperr.New(apperr.KindTooManyRequests, CodeSessionLimit,
				"this sign-in has used its %d AI requests; sign in again to continue", s.cfg.SessionRequests)
		}
		a.left = s.cfg.SessionRequests - counted[0]
		return nil
	})
	if err != nil {
		s.metrics.requests.WithLabelValues(kind, outcomeOf(err)).Inc()
		return nil, err
	}
	return a, nil
}

// countSQL counts a request against its session's cap. On PostgreSQL
// (true) the admission it ends commits without waiting for the disk
// (database.NoFlushWait): the model is asked at once. A database crash that
// lost the admission ends its request, whose charge (pay) waits for the
// disk: without the hold it is spent from the balance, and refused beyond
// it.
var countSQL = map[bool]string{
	false: `INSERT INTO ai_sessions (session_id, user_id, requests, created_at, updated_at) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET requests = ai_sessions.requests + 1, updated_at = excluded.updated_at
		WHERE ai_sessions.user_id = excluded.user_id AND ai_sessions.requests < ?
		RETURNING requests`,
	true: database.NoFlushWait + ` INSERT INTO ai_sessions (session_id, user_id, requests, created_at, updated_at)
		SELECT ?, ?, 1, ?, ? FROM no_flush_wait
		ON CONFLICT (session_id) DO UPDATE SET requests = ai_sessions.requests + 1, updated_at = excluded.updated_at
		WHERE ai_sessions.user_id = excluded.user_id AND ai_sessions.requests < ?
		RETURNING requests`,
}

// end closes the request: an unpaid one releases its hold and gives its
// session request back.
func (a *admission) end(ctx context.Context, err error) {
	outcome := "ok"
	if !a.paid {
		outcome = outcomeOf(err)
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindUnavailable {
			// The client sees a short message; the cause is for us.
			observability.Logger(ctx, a.s.log).Warn("ai request failed", zap.String("kind", a.kind), zap.Error(err))
		}
		ctx = context.WithoutCancel(ctx)
		rerr := a.s.db.Tx(ctx, func(tx *gorm.DB) error {
			if _, err := a.s.credits.Release(ctx, tx, a.p.UserID, a.hold); err != nil {
				return err
			}
			return tx.Model(&Session{}).Where("session_id = ? AND requests > 0", a.p.SessionID).
				Updates(map[string]any{"requests": gorm.Expr("requests - 1"), "updated_at": a.s.clock.Now()}).Error
		})
		if rerr != nil {
			// The hold lapses and credit_hold_release gives it back.
			a.s.log.Error("release an unpaid ai request", zap.Error(rerr))
		}
	}
	a.s.metrics.requests.WithLabelValues(a.kind, outcome).Inc()
}

// warning is ai_request_warning: few requests left in the session.
func (a *admission) warning() bool { return a.left <= a.s.cfg.WarnWhenLeft }

// pay settles the request's hold for its cost and runs effects, in one
// transaction: the answer's changes and its charge commit together or not
// at all.
func (a *admission) pay(ctx context.Context, effects func(tx *gorm.DB) error) (billing.Balance, error) {
	var bal billing.Balance
	ctx = events.WithSource(ctx, events.SourceAI)
	err := a.s.db.Tx(ctx, func(tx *gorm.DB) error {
		if effects != nil {
			if err := effects(tx); err != nil {
				return err
			}
		}
		var err error
		bal, err = a.s.credits.Settle(ctx, tx, a.p.UserID, a.hold, a.cost, reasons[a.kind])
		return err
	})
	if err != nil {
		return bal, err
	}
	a.paid = true
	a.s.metrics.credits.WithLabelValues(a.kind).Add(float64(a.cost))
	return bal, nil
}

func outcomeOf(err error) string {
	if err == nil {
		return "cancelled"
	}
	if e, ok := apperr.As(err); ok {
		return strings.ToLower(e.Code)
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return "error"
}

// ChatRequest is a chat message with its context.
type ChatRequest struct {
	Message      string
	IncludeTasks bool
	TaskLimit    int // 0: the configured default
	TaskID       *uuid.UUID
}

// ChatAnswer is the assistant's answer to a chat message.
type ChatAnswer struct {
	Response         string
	Actions          []Action
	CreditsUsed      int
	CreditsRemaining int
	Warning          bool
}

// Action is a change the assistant suggests; nothing happens until the user
// confirms it (confirm-action with Type and Data).
type Action struct {
	Type        string
	TaskID      uuid.UUID
	Description string
	Data        map[string]any
}

// chatContext builds the messages of a chat request and the tasks the
// assistant may name in actions.
func (s *Service) chatContext(ctx context.Context, p auth.Principal, req ChatRequest, answerPrompt string) (msgs []message, known map[uuid.UUID]bool, err error) {
	known = map[uuid.UUID]bool{}
	parts := []string{answerPrompt}
	db := s.db.WithContext(ctx)
	if req.TaskID != nil {
		t, err := s.tasks.OwnedTask(ctx, db, p.UserID, *req.TaskID)
		if err != nil {
			return nil, nil, err
		}
		subs, err := s.tasks.SubtasksOf(ctx, db, p.UserID, t.ID)
		if err != nil {
			return nil, nil, err
		}
		known[t.ID] = true
		parts = append(parts, describeTask(t, subs))
	}
	if req.IncludeTasks {
		limit := req.TaskLimit
		if limit == 0 {
			limit = s.cfg.TaskLimit
		}
		open, err := s.tasks.OpenTasks(ctx, db, p.UserID, limit)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range open {
			known[t.ID] = true
		}
		parts = append(parts, describeTasks(open))
	}
	return conversation(system(s.clock.Now()), req.Message, parts...), known, nil
}

// Chat answers a message with text and suggested actions.
func (s *Service) Chat(ctx context.Context, p auth.Principal, req ChatRequest) (_ *ChatAnswer, err error) {
	if !s.llm.ok {
		return nil, errNotConfigured
	}
	a, err := s.admit(ctx, p, "chat", s.cfg.Costs.Chat)
	if err != nil {
		return nil, err
	}
	defer func() { a.end(ctx, err) }()
	msgs, known, err := s.chatContext(ctx, p, req, chatJSONPrompt)
	if err != nil {
		return nil, err
	}
	reply, err := structured[chatReply](ctx, s.llm, chatShape, msgs)
	if err != nil {
		return nil, err
	}
	bal, err := a.pay(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &ChatAnswer{Response: reply.Response, Actions: s.keepActions(reply.SuggestedActions, known),
		CreditsUsed: a.cost, CreditsRemaining: bal.Total(), Warning: a.warning()}, nil
}

// keepActions keeps the suggested actions that name a task of the context
// and whose data confirm-action would accept, at most MaxActions.
func (s *Service) keepActions(in []modelAction, known map[uuid.UUID]bool) []Action {
	out := []Action{}
	for _, m := range in {
		if len(out) == s.cfg.MaxActions {
			break
		}
		id, err := uuid.Parse(m.TaskID)
		if err != nil || !known[id] {
			continue
		}
		data := map[string]any{}
		for k, v := range m.Data {
			data[k] = v
		}
		data["task_id"] = id.String()
		if _, err := parseAction(m.Type, data); err != nil {
			continue
		}
		out = append(out, Action{Type: m.Type, TaskID: id, Description: m.Description, Data: data})
	}
	return out
}

// SubtaskSuggestions are the subtasks the assistant proposes for a task.
type SubtaskSuggestions struct {
	Titles           []string
	CreditsUsed      int
	CreditsRemaining int
	Warning          bool
}

// GenerateSubtasks proposes at most the tier's number of subtasks for a
// task; nothing is created.
func (s *Service) GenerateSubtasks(ctx context.Context, p auth.Principal, taskID uuid.UUID) (_ *SubtaskSuggestions, err error) {
	if !s.llm.ok {
		return nil, errNotConfigured
	}
	a, err := s.admit(ctx, p, "subtasks", s.cfg.Costs.Subtasks)
	if err != nil {
		return nil, err
	}
	defer func() { a.end(ctx, err) }()
	db := s.db.WithContext(ctx)
	t, err := s.tasks.OwnedTask(ctx, db, p.UserID, taskID)
	if err != nil {
		return nil, err
	}
	subs, err := s.tasks.SubtasksOf(ctx, db, p.UserID, taskID)
	if err != nil {
		return nil, err
	}
	n := s.cfg.Tiers.For(p.Tier).Suggestions
	reply, err := structured[subtaskReply](ctx, s.llm, subtasksShape,
		conversation(system(s.clock.Now()), describeTask(t, subs), fmt.Sprintf(subtasksPrompt, n)))
	if err != nil {
		return nil, err
	}
	bal, err := a.pay(ctx, nil)
	if err != nil {
		return nil, err
	}
	existing := make([]string, len(subs))
	for i, st := range subs {
		existing[i] = st.Title
	}
	return &SubtaskSuggestions{Titles: cleanTitles(reply.Subtasks, n, existing), CreditsUsed: a.cost,
		CreditsRemaining: bal.Total(), Warning: a.warning()}, nil
}

// cleanTitles trims the titles, drops empty ones and repeats (of each other
// and of existing subtasks), shortens long ones and keeps at most n.
func cleanTitles(in []titleOnly, n int, existing []string) []string {
	seen := map[string]bool{}
	for _, e := range existing {
		seen[strings.ToLower(strings.TrimSpace(e))] = true
	}
	out := []string{}
	for _, t := range in {
		if len(out) == n {
			break
		}
		title := clip(strings.Join(strings.Fields(t.Title), " "), tasks.MaxSubtaskTitleLength)
		key := strings.ToLower(title)
		if title == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, title)
	}
	return out
}

// clip shortens s to at most n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:n-1])) + "…"
}
