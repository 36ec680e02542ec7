package notes

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

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

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

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
