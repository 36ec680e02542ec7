package ai

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/observability"
)

type handlers struct {
	svc *Service
	cfg Config
}

func newHandlers(svc *Service, cfg Config) *handlers { return &handlers{svc: svc, cfg: cfg} }

// aiRoute is a POST of the assistant: rate limit ai, Idempotency-Key
// required.
func aiRoute(path, id, summary string) huma.Operation {
	op := httpx.WithRateLimit(httpx.Route(http.MethodPost, path, id, summary, "AI"), httpx.RateAI)
	op.Metadata[httpx.MetaIdempotency] = "required"
	return op
}

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, aiRoute("/api/v1/ai/chat", "ai-chat",
		"Chat with the assistant (1 credit): an answer and suggested actions, nothing changed"), httpx.Handle(auth.Caller, h.chat, toChatDTO))
	stream := aiRoute("/api/v1/ai/chat/stream", "ai-chat-stream",
		"Chat with the assistant, the answer streamed as server-sent events (1 credit when it completes)")
	stream.Description = "Events: `data: {\"text\": \"…\"}` pieces of the answer; then `data: {\"done\": true, " +
		"\"suggested_actions\", \"credits_used\", \"credits_remaining\", \"ai_request_warning\"}`; then `data: [DONE]`. " +
		"A failure after the stream began is an `event: error` whose data is the error envelope; nothing is charged then. " +
		"Errors before the stream (402, 429, 404, 503) are ordinary JSON answers."
	stream.Responses = httpx.EventStreamResponses()
	huma.Register(api, stream, h.chatStream)
	huma.Register(api, aiRoute("/api/v1/ai/generate-subtasks", "ai-generate-subtasks",
		"Suggest subtasks for a task (1 credit; at most 4 free, 10 Pro); nothing is created"), httpx.Handle(auth.Caller, h.generateSubtasks, toSuggestionsDTO))
	huma.Register(api, aiRoute("/api/v1/ai/confirm-action", "ai-confirm-action",
		"Carry out an action the assistant suggested, once the user confirmed it"), httpx.Handle(auth.Caller, h.confirm, toActionResultDTO))
	huma.Register(api, aiRoute("/api/v1/ai/transcribe", "ai-transcribe",
		"Transcribe audio by URL (Pro; 5 credits per started minute)"), httpx.Handle(auth.Caller, h.transcribe, toTranscriptionDTO))
}

// ChatContext says what the assistant sees besides the message.
type ChatContext struct {
	IncludeTasks bool `json:"include_tasks,omitempty" doc:"Give the assistant the open tasks, highest priority and nearest due first"`
	TaskLimit    int  `json:"task_limit,omitempty" minimum:"1" maximum:"50" doc:"How many open tasks (default 10)"`
}

// ChatMessage is the body of the chat routes.
type ChatMessage struct {
	Message string       `json:"message" minLength:"1" maxLength:"2000"`
	Context *ChatContext `json:"context,omitempty"`
}

type chatInput struct {
	TaskID string `header:"X-Task-Id" format:"uuid" doc:"A task the message is about: the assistant sees it with its subtasks"`
	Body   ChatMessage
}

func (in *chatInput) request() (ChatRequest, error) {
	req := ChatRequest{Message: strings.TrimSpace(in.Body.Message)}
	if req.Message == "" {
		return req, apperr.Validation("message", "must not be empty")
	}
	if c := in.Body.Context; c != nil {
		req.IncludeTasks, req.TaskLimit = c.IncludeTasks, c.TaskLimit
	}
	if in.TaskID != "" {
		id, err := uuid.Parse(in.TaskID)
		if err != nil {
			return req, apperr.Validation("X-Task-Id", "must be a UUID")
		}
		req.TaskID = &id
	}
	return req, nil
}

// ActionDTO is a suggested action; confirm it with its type and data.
type ActionDTO struct {
	Type        string         `json:"type" enum:"complete_task,create_subtasks,update_task"`
	TaskID      uuid.UUID      `json:"task_id" format:"uuid"`
	Description string         `json:"description"`
	Data        map[string]any `json:"data" doc:"The action_data to confirm it with (it includes task_id)"`
}

func toActionDTOs(list []Action) []ActionDTO {
	out := make([]ActionDTO, len(list))
	for i, a := range list {
		out[i] = ActionDTO(a)
	}
	return out
}

// ChatDTO is the assistant's answer.
type ChatDTO struct {
	Response         string      `json:"response"`
	SuggestedActions []ActionDTO `json:"suggested_actions"`
	CreditsUsed      int         `json:"credits_used"`
	CreditsRemaining int         `json:"credits_remaining"`
	AIRequestWarning bool        `json:"ai_request_warning" doc:"True when 2 or fewer AI requests are left in this sign-in"`
}

func (h *handlers) chatStream(ctx context.Context, in *chatInput) (*huma.StreamResponse, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	req, err := in.request()
	if err != nil {
		return nil, err
	}
	job, err := h.svc.PrepareStream(ctx, p, req)
	if err != nil {
		return nil, err
	}
	rid := observability.RequestID(ctx)
	cfg := httpx.StreamConfig{WriteTimeout: h.cfg.StreamWriteTimeout, Heartbeat: h.cfg.StreamHeartbeat}
	return &huma.StreamResponse{Body: func(hctx huma.Context) { httpx.Stream(hctx, cfg, rid, job.Run) }}, nil
}

type generateInput struct {
	Body struct {
		TaskID uuid.UUID `json:"task_id" format:"uuid"`
	} `nameHint:"AIGenerateSubtasks"`
}

// SuggestedSubtaskDTO is one suggested subtask.
type SuggestedSubtaskDTO struct {
	Title string `json:"title"`
}

// SubtaskSuggestionsDTO is the answer of generate-subtasks.
type SubtaskSuggestionsDTO struct {
	SuggestedSubtasks []SuggestedSubtaskDTO `json:"suggested_subtasks"`
	CreditsUsed       int                   `json:"credits_used"`
	CreditsRemaining  int                   `json:"credits_remaining"`
	AIRequestWarning  bool                  `json:"ai_request_warning"`
}

type confirmInput struct {
	Body struct {
		ActionType string         `json:"action_type" enum:"complete_task,create_subtasks,update_task,convert_note"`
		ActionData map[string]any `json:"action_data" doc:"complete_task: {task_id}; create_subtasks: {task_id, subtasks: [{title}]}; update_task: {task_id, title?, description?, priority?, due_date?, estimated_duration?, version?}; convert_note: {note_id, title?, description?, priority?, due_date?, subtasks?}"`
	} `nameHint:"AIConfirmAction"`
}

// ActedTaskDTO is a task the assistant acted on, in the form the tasks routes
// answer with.
type ActedTaskDTO struct {
	ID                    uuid.UUID  `json:"id" format:"uuid"`
	UserID                uuid.UUID  `json:"user_id" format:"uuid"`
	TemplateID            *uuid.UUID `json:"template_id" format:"uuid" nullable:"true"`
	Title                 string     `json:"title"`
	Description           string     `json:"description"`
	Priority              string     `json:"priority" enum:"low,medium,high"`
	DueDate               *time.Time `json:"due_date" nullable:"true"`
	EstimatedDuration     *int       `json:"estimated_duration" nullable:"true" doc:"Minutes"`
	FocusTimeSeconds      int        `json:"focus_time_seconds"`
	Completed             bool       `json:"completed"`
	CompletedAt           *time.Time `json:"completed_at" nullable:"true"`
	CompletedBy           *string    `json:"completed_by" enum:"manual,auto,force" nullable:"true"`
	Hidden                bool       `json:"hidden"`
	Archived              bool       `json:"archived"`
	SubtaskCount          int        `json:"subtask_count"`
	SubtaskCompletedCount int        `json:"subtask_completed_count"`
	Version               int        `json:"version"`
	CreatedAt             time.Time  `json:"created_at"`
	UpdatedAt             time.Time  `json:"updated_at"`
}

// ActedSubtaskDTO is a subtask the assistant made, in the form the tasks routes
// answer with.
type ActedSubtaskDTO struct {
	ID          uuid.UUID  `json:"id" format:"uuid"`
	TaskID      uuid.UUID  `json:"task_id" format:"uuid"`
	Title       string     `json:"title"`
	Completed   bool       `json:"completed"`
	CompletedAt *time.Time `json:"completed_at" nullable:"true"`
	OrderIndex  int        `json:"order_index"`
	Source      string     `json:"source" enum:"user,ai"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func toTaskDTO(t *tasks.TaskInfo) *ActedTaskDTO {
	if t == nil {
		return nil
	}
	return &ActedTaskDTO{
		ID: t.ID, UserID: t.UserID, TemplateID: t.TemplateID, Title: t.Title, Description: t.Description,
		Priority: t.Priority, DueDate: httpx.UTCPtr(t.DueDate), EstimatedDuration: t.EstimatedDuration,
		FocusTimeSeconds: t.FocusTimeSeconds, Completed: t.Completed, CompletedAt: httpx.UTCPtr(t.CompletedAt),
		CompletedBy: t.CompletedBy, Hidden: t.Hidden, Archived: t.Archived, SubtaskCount: t.SubtaskCount,
		SubtaskCompletedCount: t.SubtaskCompletedCount, Version: t.Version,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
	}
}

// toSubtaskDTOs maps subtasks, nil to an empty list.
func toSubtaskDTOs(list []tasks.SubtaskInfo) []ActedSubtaskDTO {
	out := make([]ActedSubtaskDTO, len(list))
	for i, st := range list {
		out[i] = ActedSubtaskDTO{ID: st.ID, TaskID: st.TaskID, Title: st.Title, Completed: st.Completed,
			CompletedAt: httpx.UTCPtr(st.CompletedAt), OrderIndex: st.OrderIndex, Source: st.Source,
			CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC()}
	}
	return out
}

// ActionResultDTO is what a confirmed action did.
type ActionResultDTO struct {
	ActionType       string            `json:"action_type"`
	Task             *ActedTaskDTO     `json:"task" doc:"The task acted on (null for none)"`
	Subtasks         []ActedSubtaskDTO `json:"subtasks"`
	CreditsUsed      int               `json:"credits_used"`
	CreditsRemaining int               `json:"credits_remaining"`
}

type transcribeInput struct {
	Body struct {
		AudioURL        string `json:"audio_url" format:"uri" maxLength:"2000" doc:"http(s) URL of the audio"`
		DurationSeconds int    `json:"duration_seconds" minimum:"1" maximum:"86400" doc:"Seconds of audio, at most 300 (longer: 400 AUDIO_DURATION_EXCEEDED)"`
	} `nameHint:"AITranscribe"`
}

// TranscriptionDTO is the answer of /ai/transcribe.
type TranscriptionDTO struct {
	Transcription    string  `json:"transcription"`
	Language         string  `json:"language"`
	Confidence       float64 `json:"confidence"`
	CreditsUsed      int     `json:"credits_used"`
	CreditsRemaining int     `json:"credits_remaining"`
	AIRequestWarning bool    `json:"ai_request_warning"`
}

func (h *handlers) chat(ctx context.Context, p auth.Principal, in *chatInput) (*ChatAnswer, error) {
	req, err := in.request()
	if err != nil {
		return nil, err
	}
	return h.svc.Chat(ctx, p, req)
}

func toChatDTO(ans *ChatAnswer) ChatDTO {
	return ChatDTO{Response: ans.Response, SuggestedActions: toActionDTOs(ans.Actions),
		CreditsUsed: ans.CreditsUsed, CreditsRemaining: ans.CreditsRemaining, AIRequestWarning: ans.Warning}
}

func (h *handlers) generateSubtasks(ctx context.Context, p auth.Principal, in *generateInput) (*SubtaskSuggestions, error) {
	return h.svc.GenerateSubtasks(ctx, p, in.Body.TaskID)
}

func toSuggestionsDTO(ans *SubtaskSuggestions) SubtaskSuggestionsDTO {
	out := SubtaskSuggestionsDTO{SuggestedSubtasks: make([]SuggestedSubtaskDTO, len(ans.Titles)),
		CreditsUsed: ans.CreditsUsed, CreditsRemaining: ans.CreditsRemaining, AIRequestWarning: ans.Warning}
	for i, t := range ans.Titles {
		out.SuggestedSubtasks[i] = SuggestedSubtaskDTO{Title: t}
	}
	return out
}

func (h *handlers) confirm(ctx context.Context, p auth.Principal, in *confirmInput) (*ActionResult, error) {
	return h.svc.Confirm(ctx, p, in.Body.ActionType, in.Body.ActionData)
}

func toActionResultDTO(res *ActionResult) ActionResultDTO {
	return ActionResultDTO{ActionType: res.Type, Task: toTaskDTO(res.Task), Subtasks: toSubtaskDTOs(res.Subtasks),
		CreditsUsed: res.CreditsUsed, CreditsRemaining: res.CreditsRemaining}
}

func (h *handlers) transcribe(ctx context.Context, p auth.Principal, in *transcribeInput) (*Transcription, error) {
	return h.svc.Transcribe(ctx, p, in.Body.AudioURL, in.Body.DurationSeconds)
}

func toTranscriptionDTO(tr *Transcription) TranscriptionDTO {
	return TranscriptionDTO{Transcription: tr.Text, Language: tr.Language, Confidence: tr.Confidence,
		CreditsUsed: tr.CreditsUsed, CreditsRemaining: tr.CreditsRemaining, AIRequestWarning: tr.Warning}
}
