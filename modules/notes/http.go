package notes

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
)

// NoteDTO is the Note of the API.
type NoteDTO struct {
	ID                   uuid.UUID  `json:"id" format:"uuid"`
	UserID               uuid.UUID  `json:"user_id" format:"uuid"`
	TaskID               *uuid.UUID `json:"task_id" format:"uuid" nullable:"true"`
	Content              string     `json:"content"`
	Archived             bool       `json:"archived"`
	VoiceURL             *string    `json:"voice_url" nullable:"true"`
	VoiceDurationSeconds *int       `json:"voice_duration_seconds" nullable:"true"`
	TranscriptionStatus  *string    `json:"transcription_status" enum:"pending,completed,failed" nullable:"true"`
	Version              int        `json:"version"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

func toDTO(n *Note) NoteDTO {
	return NoteDTO{ID: n.ID, UserID: n.UserID, TaskID: n.TaskID, Content: n.Content, Archived: n.Archived,
		VoiceURL: n.VoiceURL, VoiceDurationSeconds: n.VoiceDurationSeconds, TranscriptionStatus: n.TranscriptionStatus,
		Version: n.Version, CreatedAt: n.CreatedAt.UTC(), UpdatedAt: n.UpdatedAt.UTC()}
}

type handlers struct {
	svc  *Service
	conv Converter
}

type handlerParams struct {
	fx.In

	Svc  *Service
	Conv Converter `optional:"true"`
}

func newHandlers(p handlerParams) *handlers { return &handlers{svc: p.Svc, conv: p.Conv} }

type listInput struct {
	httpx.Page
	Archived httpx.Param[bool]      `query:"archived"`
	TaskID   httpx.Param[uuid.UUID] `query:"task_id"`
}

type taskListInput struct {
	ID string `path:"id" format:"uuid" doc:"Task id"`
	httpx.Page
	Archived httpx.Param[bool] `query:"archived"`
}

func (in *taskListInput) PathID() string { return in.ID }

type idInput struct {
	ID string `path:"id" format:"uuid"`
}

func (in *idInput) PathID() string { return in.ID }

// NoteBody is the body of note creation (exported for embedding).
type NoteBody struct {
	Content              *string `json:"content,omitempty" maxLength:"2000"`
	VoiceURL             *string `json:"voice_url,omitempty" format:"uri" maxLength:"2000" doc:"http(s) URL of the audio (Pro); transcribed by a job"`
	VoiceDurationSeconds *int    `json:"voice_duration_seconds,omitempty" minimum:"1" maximum:"86400" doc:"Seconds of audio, at most 300 (longer: 400 AUDIO_DURATION_EXCEEDED)"`
}

type createInput struct {
	Body struct {
		NoteBody
		TaskID *uuid.UUID `json:"task_id,omitempty" format:"uuid"`
	} `nameHint:"NoteCreate"`
}

type createTaskNoteInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body NoteBody
}

func (in *createTaskNoteInput) PathID() string { return in.ID }

type updateInput struct {
	ID   string `path:"id" format:"uuid"`
	Body struct {
		Content  *string `json:"content,omitempty" minLength:"1" maxLength:"2000"`
		Archived *bool   `json:"archived,omitempty"`
	} `nameHint:"NoteUpdate"`
}

func (in *updateInput) PathID() string { return in.ID }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/notes", "notes-list",
		"The user's notes, newest first (archived ones too unless ?archived= is given)", "Notes"), httpx.HandleList(auth.Caller, h.list, toDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/notes/{id}", "notes-get", "A note", "Notes"), httpx.HandleID(auth.Caller, h.get, toDTO))
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/notes", "notes-create", "Add a note", "Notes")), httpx.Handle(auth.Caller, h.create, toDTO))
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		huma.Register(api, httpx.Route(m, "/api/v1/notes/{id}", "notes-update-"+m, "Edit or (un)archive a note", "Notes"), httpx.HandleID(auth.Caller, h.update, toDTO))
	}
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/notes/{id}", "notes-delete",
		"Delete a note (recoverable for a while)", "Notes"), httpx.HandleID(auth.Caller, h.delete, toBuried))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/notes", "notes-list-task",
		"The notes attached to a task", "Notes"), httpx.HandleListID(auth.Caller, h.listTask, toDTO))
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/notes", "notes-create-task",
		"Attach a note to a task", "Notes")), httpx.HandleID(auth.Caller, h.createTask, toDTO))
	if h.conv == nil {
		return // conversion is the assistant's: without it the route is absent
	}
	huma.Register(api, httpx.WithRateLimit(httpx.Route(http.MethodPost, "/api/v1/notes/{id}/convert", "notes-convert",
		"Draft a task from a note with the assistant (1 credit); with confirm, create it and archive the note", "Notes"),
		httpx.RateAI), httpx.HandleID(auth.Caller, h.convert, toConversionDTO))
}

func (h *handlers) get(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idInput) (*Note, error) {
	return h.svc.Get(ctx, p, id)
}

func (h *handlers) create(ctx context.Context, p auth.Principal, in *createInput) (*Note, error) {
	b := in.Body
	return h.svc.Create(ctx, p, NewNote{Content: b.Content, TaskID: b.TaskID, VoiceURL: b.VoiceURL,
		VoiceDurationSeconds: b.VoiceDurationSeconds})
}

func (h *handlers) createTask(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *createTaskNoteInput) (*Note, error) {
	b := in.Body
	return h.svc.Create(ctx, p, NewNote{Content: b.Content, TaskID: &taskID, VoiceURL: b.VoiceURL,
		VoiceDurationSeconds: b.VoiceDurationSeconds})
}

func (h *handlers) update(ctx context.Context, p auth.Principal, id uuid.UUID, in *updateInput) (*Note, error) {
	return h.svc.Update(ctx, p, id, Changes{Content: in.Body.Content, Archived: in.Body.Archived})
}

func (h *handlers) delete(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idInput) (*recovery.Buried, error) {
	return h.svc.Delete(ctx, p, id)
}

func toBuried(b *recovery.Buried) httpx.Buried {
	return httpx.Buried{TombstoneID: b.TombstoneID, RecoverableUntil: b.RecoverableUntil.UTC()}
}

func (h *handlers) list(ctx context.Context, p auth.Principal, in *listInput) (database.Paged[Note], error) {
	return h.svc.List(ctx, p, Filter{Archived: in.Archived.Ptr(), TaskID: in.TaskID.Ptr(), Window: in.Page.Window()})
}

func (h *handlers) listTask(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *taskListInput) (database.Paged[Note], error) {
	return h.svc.List(ctx, p, Filter{Archived: in.Archived.Ptr(), TaskID: &taskID, Window: in.Page.Window()})
}

type convertInput struct {
	ID   string `path:"id" format:"uuid"`
	Body *struct {
		Confirm bool `json:"confirm,omitempty" doc:"Create the task (from the draft last shown, else a new one) and archive the note"`
	} `nameHint:"NoteConvert"`
}

func (in *convertInput) PathID() string { return in.ID }

// DraftSubtaskDTO is a subtask of a drafted task.
type DraftSubtaskDTO struct {
	Title string `json:"title"`
}

// TaskDraftDTO is a task drafted from a note.
type TaskDraftDTO struct {
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Priority    string            `json:"priority" enum:"low,medium,high"`
	DueDate     *time.Time        `json:"due_date" nullable:"true"`
	Subtasks    []DraftSubtaskDTO `json:"subtasks"`
}

// ConvertedTaskDTO is the task a note became, in the form the tasks routes
// answer with.
type ConvertedTaskDTO struct {
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

// ConvertedSubtaskDTO is a subtask of the task a note became, in the form
// the tasks routes answer with.
type ConvertedSubtaskDTO struct {
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

// ConversionDTO is a note's task draft, and with confirm the task made.
type ConversionDTO struct {
	NoteID           uuid.UUID             `json:"note_id" format:"uuid"`
	Task             TaskDraftDTO          `json:"task"`
	Converted        bool                  `json:"converted" doc:"True when the task was created and the note archived"`
	CreatedTask      *ConvertedTaskDTO     `json:"created_task" doc:"The task made, with confirm (else null)"`
	CreatedSubtasks  []ConvertedSubtaskDTO `json:"created_subtasks"`
	CreditsUsed      int                   `json:"credits_used"`
	CreditsRemaining int                   `json:"credits_remaining"`
	AIRequestWarning bool                  `json:"ai_request_warning"`
}

func (h *handlers) convert(ctx context.Context, p auth.Principal, id uuid.UUID, in *convertInput) (*Conversion, error) {
	return h.conv.Convert(ctx, p, id, in.Body != nil && in.Body.Confirm)
}

func toConversionDTO(c *Conversion) ConversionDTO {
	d := c.Draft
	out := ConversionDTO{NoteID: c.NoteID, Task: TaskDraftDTO{Title: d.Title, Description: d.Description, Priority: d.Priority,
		DueDate: httpx.UTCPtr(d.DueDate), Subtasks: make([]DraftSubtaskDTO, len(d.Subtasks))},
		Converted: c.Task != nil, CreatedSubtasks: make([]ConvertedSubtaskDTO, len(c.Subtasks)),
		CreditsUsed: c.CreditsUsed, CreditsRemaining: c.CreditsRemaining, AIRequestWarning: c.Warning}
	for i, t := range d.Subtasks {
		out.Task.Subtasks[i] = DraftSubtaskDTO{Title: t}
	}
	if t := c.Task; t != nil {
		out.CreatedTask = &ConvertedTaskDTO{
			ID: t.ID, UserID: t.UserID, TemplateID: t.TemplateID, Title: t.Title, Description: t.Description,
			Priority: t.Priority, DueDate: httpx.UTCPtr(t.DueDate), EstimatedDuration: t.EstimatedDuration,
			FocusTimeSeconds: t.FocusTimeSeconds, Completed: t.Completed, CompletedAt: httpx.UTCPtr(t.CompletedAt),
			CompletedBy: t.CompletedBy, Hidden: t.Hidden, Archived: t.Archived, SubtaskCount: t.SubtaskCount,
			SubtaskCompletedCount: t.SubtaskCompletedCount, Version: t.Version,
			CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
		}
	}
	for i, st := range c.Subtasks {
		out.CreatedSubtasks[i] = ConvertedSubtaskDTO{ID: st.ID, TaskID: st.TaskID, Title: st.Title, Completed: st.Completed,
			CompletedAt: httpx.UTCPtr(st.CompletedAt), OrderIndex: st.OrderIndex, Source: st.Source,
			CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC()}
	}
	return out
}
