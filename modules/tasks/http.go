package tasks

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/ratelimit"
)

// TaskDTO is a task as the API shows it.
type TaskDTO struct {
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

// SubtaskDTO is a subtask as the API shows it.
type SubtaskDTO struct {
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

func toTaskDTO(t *Task) TaskDTO {
	return TaskDTO{
		ID: t.ID, UserID: t.UserID, TemplateID: t.TemplateID, Title: t.Title, Description: t.Description,
		Priority: t.Priority, DueDate: httpx.UTCPtr(t.DueDate), EstimatedDuration: t.EstimatedDuration,
		FocusTimeSeconds: t.FocusTimeSeconds, Completed: t.Completed, CompletedAt: httpx.UTCPtr(t.CompletedAt),
		CompletedBy: t.CompletedBy, Hidden: t.Hidden, Archived: t.Archived, SubtaskCount: t.SubtaskCount,
		SubtaskCompletedCount: t.SubtaskCompletedCount, Version: t.Version,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
	}
}

func toSubtaskDTO(st *Subtask) SubtaskDTO {
	return SubtaskDTO{ID: st.ID, TaskID: st.TaskID, Title: st.Title, Completed: st.Completed,
		CompletedAt: httpx.UTCPtr(st.CompletedAt), OrderIndex: st.OrderIndex, Source: st.Source,
		CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC()}
}

// ReminderDTO is the Reminder of the API.
type ReminderDTO struct {
	ID            uuid.UUID  `json:"id" format:"uuid"`
	TaskID        uuid.UUID  `json:"task_id" format:"uuid"`
	UserID        uuid.UUID  `json:"user_id" format:"uuid"`
	Type          string     `json:"type" enum:"before,after,absolute"`
	OffsetMinutes *int       `json:"offset_minutes" nullable:"true"`
	Method        string     `json:"method" enum:"push,in_app"`
	ScheduledAt   time.Time  `json:"scheduled_at"`
	Fired         bool       `json:"fired"`
	FiredAt       *time.Time `json:"fired_at" nullable:"true"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// TaskDetailDTO is a task with its subtasks (by order_index) and reminders.
type TaskDetailDTO struct {
	TaskDTO
	Subtasks  []SubtaskDTO  `json:"subtasks"`
	Reminders []ReminderDTO `json:"reminders"`
}

// CompletionDTO is the answer of complete and force-complete.
type CompletionDTO struct {
	Task                 TaskDTO                  `json:"task"`
	UnlockedAchievements []UnlockedAchievementDTO `json:"unlocked_achievements"`
	Streak               int                      `json:"streak"`
}

// UnlockedAchievementDTO is one achievement a completion unlocked.
type UnlockedAchievementDTO struct {
	AchievementID   string   `json:"achievement_id"`
	AchievementName string   `json:"achievement_name"`
	Perk            *PerkDTO `json:"perk" doc:"null when the achievement has no perk"`
}

// PerkDTO is what an achievement adds to a limit.
type PerkDTO struct {
	Type  string `json:"type" enum:"max_tasks,max_notes,daily_credits"`
	Value int    `json:"value"`
}

func toCompletionDTO(c *Completion) CompletionDTO {
	out := CompletionDTO{Task: toTaskDTO(&c.Task), Streak: c.Rewards.Streak,
		UnlockedAchievements: make([]UnlockedAchievementDTO, len(c.Rewards.Unlocked))}
	for i, u := range c.Rewards.Unlocked {
		out.UnlockedAchievements[i] = UnlockedAchievementDTO{AchievementID: u.AchievementID, AchievementName: u.AchievementName}
		if u.Perk != nil {
			out.UnlockedAchievements[i].Perk = &PerkDTO{Type: u.Perk.Type, Value: u.Perk.Value}
		}
	}
	return out
}

type handlers struct {
	svc     *Service
	limiter *ratelimit.Limiter
}

func newHandlers(svc *Service, limiter *ratelimit.Limiter) *handlers {
	return &handlers{svc: svc, limiter: limiter}
}

type idPath struct {
	ID string `path:"id" format:"uuid"`
}

func (in *idPath) PathID() string { return in.ID }

type optionalBodyInput struct {
	ID   string `path:"id" format:"uuid"`
	Body *httpx.EmptyBody
}

func (in *optionalBodyInput) PathID() string { return in.ID }

type taskPath struct {
	ID string `path:"id" format:"uuid" doc:"Task id"`
}

func (in *taskPath) PathID() string { return in.ID }

// Input structs repeat the path field: Huma cannot fill an embedded
// unexported struct.

type listInput struct {
	httpx.Page
	Completed httpx.Param[bool]      `query:"completed"`
	Priority  string                 `query:"priority" enum:"low,medium,high"`
	Hidden    httpx.Param[bool]      `query:"hidden"`
	Archived  httpx.Param[bool]      `query:"archived"`
	DueBefore httpx.Param[time.Time] `query:"due_before" doc:"Only tasks due before this instant"`
	DueAfter  httpx.Param[time.Time] `query:"due_after" doc:"Only tasks due after this instant"`
	Q         string                 `query:"q" maxLength:"200" doc:"Search in title and description"`
	Sort      string                 `query:"sort" enum:"created_at,-created_at,due_date,-due_date,priority,-priority" default:"-created_at"`
}

type createInput struct {
	Body struct {
		Title             string     `json:"title" minLength:"1" maxLength:"500"`
		Description       *string    `json:"description,omitempty" maxLength:"2000"`
		Priority          string     `json:"priority,omitempty" enum:"low,medium,high" default:"medium"`
		DueDate           *time.Time `json:"due_date,omitempty" nullable:"true"`
		EstimatedDuration *int       `json:"estimated_duration,omitempty" minimum:"1" maximum:"720" nullable:"true"`
	} `nameHint:"TaskCreate"`
}

type updateInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body struct {
		Title             httpx.Optional[string]    `json:"title,omitempty" minLength:"1" maxLength:"500"`
		Description       httpx.Optional[string]    `json:"description,omitempty" maxLength:"2000" nullable:"true"`
		Priority          httpx.Optional[string]    `json:"priority,omitempty" enum:"low,medium,high"`
		DueDate           httpx.Optional[time.Time] `json:"due_date,omitempty" nullable:"true"`
		EstimatedDuration httpx.Optional[int]       `json:"estimated_duration,omitempty" minimum:"1" maximum:"720" nullable:"true"`
		Hidden            httpx.Optional[bool]      `json:"hidden,omitempty"`
		Archived          httpx.Optional[bool]      `json:"archived,omitempty"`
		Completed         httpx.Optional[bool]      `json:"completed,omitempty"`
		Version           httpx.Optional[int]       `json:"version,omitempty" minimum:"1" maximum:"2147483647" doc:"Enforced when sent (409 CONFLICT if stale)"`
	} `nameHint:"TaskUpdate"`
}

func (in *updateInput) PathID() string { return in.ID }

type completeInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body *struct {
		Version *int `json:"version,omitempty" minimum:"1" maximum:"2147483647" doc:"Enforced when sent"`
	} `nameHint:"TaskComplete"`
}

func (in *completeInput) PathID() string { return in.ID }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks", "tasks-list",
		"List tasks (filters that are not given do not filter)", "Tasks"), h.list)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}", "tasks-get",
		"A task with its subtasks and reminders", "Tasks"), httpx.HandleID(auth.Caller, h.get, toTaskDetailDTO))
	huma.Register(api, httpx.OneTransaction(httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks", "tasks-create",
		"Create a task", "Tasks"))), httpx.Handle(auth.Caller, h.create, toTaskDTO))
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPatch, "/api/v1/tasks/{id}", "tasks-update",
		"Change a task", "Tasks")), httpx.HandleID(auth.Caller, h.update, toTaskDTO))
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPut, "/api/v1/tasks/{id}", "tasks-replace",
		"Change a task (same as PATCH)", "Tasks")), httpx.HandleID(auth.Caller, h.update, toTaskDTO))
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/complete", "tasks-complete",
		"Complete a task (its subtasks are left alone)", "Tasks")), httpx.HandleID(auth.Caller, h.completeAs(CompletedManual), toCompletionDTO))
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/force-complete", "tasks-force-complete",
		"Complete a task and all its open subtasks", "Tasks")), httpx.HandleID(auth.Caller, h.completeAs(CompletedForce), toCompletionDTO))
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/tasks/{id}", "tasks-delete",
		"Delete a task (recoverable for a while)", "Tasks"), httpx.HandleID(auth.Caller, h.delete, toBuried))
	h.registerSubtasks(api)
	h.registerReminders(api)
	h.registerTemplates(api)
	h.registerCalendar(api)
}

func (h *handlers) list(ctx context.Context, in *listInput) (*httpx.ListOutput[TaskDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	// The page's items come from a pool and go back once written: the list
	// every dashboard load asks for allocates no item of its own.
	sp := taskPages.Get().(*[]TaskDTO)
	items := (*sp)[:0]
	total, next, err := h.svc.List(ctx, p, ListFilter{
		Completed: in.Completed.Ptr(), Hidden: in.Hidden.Ptr(), Archived: in.Archived.Ptr(),
		Priority: optionalString(in.Priority), DueBefore: in.DueBefore.Ptr(), DueAfter: in.DueAfter.Ptr(),
		Query: in.Q, Sort: in.Sort, Cursor: in.Cursor, Offset: in.Offset, Limit: in.Limit,
	}, func(t *Task) { items = append(items, toTaskDTO(t)) })
	if err != nil {
		taskPages.Put(sp)
		return nil, err
	}
	return httpx.ReplyPage(items, in.Page, total, next).Release(func() {
		clear(items) // no user's strings stay reachable from the pool
		*sp = items[:0]
		taskPages.Put(sp)
	}), nil
}

// taskPages holds the item slices of task-list pages (up to 100 items).
var taskPages = sync.Pool{New: func() any { s := make([]TaskDTO, 0, 100); return &s }}

func (h *handlers) get(ctx context.Context, p auth.Principal, id uuid.UUID, _ *taskPath) (*TaskDetail, error) {
	return h.svc.Detail(ctx, p, id)
}

func toTaskDetailDTO(d *TaskDetail) TaskDetailDTO {
	return TaskDetailDTO{TaskDTO: toTaskDTO(&d.Task), Subtasks: toSubtaskDTOs(d.Subtasks), Reminders: toReminderDTOs(d.Reminders)}
}

func (h *handlers) create(ctx context.Context, p auth.Principal, in *createInput) (*Task, error) {
	desc := ""
	if in.Body.Description != nil {
		desc = *in.Body.Description
	}
	return h.svc.Create(ctx, p, NewTask{Title: in.Body.Title, Description: desc, Priority: in.Body.Priority,
		DueDate: in.Body.DueDate, EstimatedDuration: in.Body.EstimatedDuration})
}

func (h *handlers) update(ctx context.Context, p auth.Principal, id uuid.UUID, in *updateInput) (*Task, error) {
	b := in.Body
	for field, null := range map[string]bool{"title": b.Title.Null, "priority": b.Priority.Null,
		"hidden": b.Hidden.Null, "archived": b.Archived.Null, "completed": b.Completed.Null} {
		if null {
			return nil, apperr.Validation(field, "must not be null")
		}
	}
	return h.svc.Update(ctx, p, id, Changes{
		Title:                  b.Title.Ptr(),
		Description:            b.Description.Ptr(),
		ClearDescription:       b.Description.Null,
		Priority:               b.Priority.Ptr(),
		DueDate:                b.DueDate.Ptr(),
		ClearDueDate:           b.DueDate.Null,
		EstimatedDuration:      b.EstimatedDuration.Ptr(),
		ClearEstimatedDuration: b.EstimatedDuration.Null,
		Hidden:                 b.Hidden.Ptr(),
		Archived:               b.Archived.Ptr(),
		Completed:              b.Completed.Ptr(),
		Version:                b.Version.Ptr(),
	})
}

// completeAs completes a task: by the user (manual) or with its open
// subtasks (force).
func (h *handlers) completeAs(by string) func(context.Context, auth.Principal, uuid.UUID, *completeInput) (*Completion, error) {
	return func(ctx context.Context, p auth.Principal, id uuid.UUID, in *completeInput) (*Completion, error) {
		var version *int
		if in.Body != nil {
			version = in.Body.Version
		}
		return h.svc.Complete(ctx, p, id, by, version)
	}
}

func (h *handlers) delete(ctx context.Context, p auth.Principal, id uuid.UUID, _ *taskPath) (*recovery.Buried, error) {
	return h.svc.Delete(ctx, p, id)
}

func toBuried(b *recovery.Buried) httpx.Buried {
	return httpx.Buried{TombstoneID: b.TombstoneID, RecoverableUntil: b.RecoverableUntil.UTC()}
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// taskJSON is the writer of the task list's items, the busiest answer: no
// reflection.
func taskJSON() httpx.ItemWriter { return httpx.JSONItem(appendTaskJSON) }

// appendTaskJSON writes t as encoding/json does (TestTaskJSONIsEncodingJSONs
// holds it to that).
func appendTaskJSON(b []byte, t *TaskDTO) []byte {
	b = append(b, `{"id":`...)
	b = httpx.AppendJSONUUID(b, t.ID)
	b = append(b, `,"user_id":`...)
	b = httpx.AppendJSONUUID(b, t.UserID)
	b = append(b, `,"template_id":`...)
	if t.TemplateID == nil {
		b = append(b, "null"...)
	} else {
		b = httpx.AppendJSONUUID(b, *t.TemplateID)
	}
	b = append(b, `,"title":`...)
	b = httpx.AppendJSONString(b, t.Title)
	b = append(b, `,"description":`...)
	b = httpx.AppendJSONString(b, t.Description)
	b = append(b, `,"priority":`...)
	b = httpx.AppendJSONString(b, t.Priority)
	b = append(b, `,"due_date":`...)
	b = appendTimePtr(b, t.DueDate)
	b = append(b, `,"estimated_duration":`...)
	if t.EstimatedDuration == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*t.EstimatedDuration), 10)
	}
	b = append(b, `,"focus_time_seconds":`...)
	b = strconv.AppendInt(b, int64(t.FocusTimeSeconds), 10)
	b = append(b, `,"completed":`...)
	b = strconv.AppendBool(b, t.Completed)
	b = append(b, `,"completed_at":`...)
	b = appendTimePtr(b, t.CompletedAt)
	b = append(b, `,"completed_by":`...)
	if t.CompletedBy == nil {
		b = append(b, "null"...)
	} else {
		b = httpx.AppendJSONString(b, *t.CompletedBy)
	}
	b = append(b, `,"hidden":`...)
	b = strconv.AppendBool(b, t.Hidden)
	b = append(b, `,"archived":`...)
	b = strconv.AppendBool(b, t.Archived)
	b = append(b, `,"subtask_count":`...)
	b = strconv.AppendInt(b, int64(t.SubtaskCount), 10)
	b = append(b, `,"subtask_completed_count":`...)
	b = strconv.AppendInt(b, int64(t.SubtaskCompletedCount), 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(t.Version), 10)
	b = append(b, `,"created_at":`...)
	b = httpx.AppendJSONTime(b, t.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = httpx.AppendJSONTime(b, t.UpdatedAt)
	return append(b, '}')
}

func appendTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return httpx.AppendJSONTime(b, *t)
}
