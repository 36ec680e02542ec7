package tasks

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
)

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
	Task                 TaskDTO               `json:"task"`
	UnlockedAchievements []UnlockedAchievement `json:"unlocked_achievements"`
	Streak               int                   `json:"streak"`
}

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

type idPath struct {
	ID string `path:"id" format:"uuid"`
}

type optionalBodyInput struct {
	ID   string `path:"id" format:"uuid"`
	Body *httpx.EmptyBody
}

type taskPath struct {
	ID string `path:"id" format:"uuid" doc:"Task id"`
}

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

type completeInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body *struct {
		Version *int `json:"version,omitempty" minimum:"1" maximum:"2147483647" doc:"Enforced when sent"`
	} `nameHint:"TaskComplete"`
}

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks", "tasks-list",
		"List tasks (filters that are not given do not filter)", "Tasks"), h.list)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}", "tasks-get",
		"A task with its subtasks and reminders", "Tasks"), h.get)
	huma.Register(api, httpx.OneTransaction(httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks", "tasks-create",
		"Create a task", "Tasks"))), h.create)
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPatch, "/api/v1/tasks/{id}", "tasks-update",
		"Change a task", "Tasks")), h.update)
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPut, "/api/v1/tasks/{id}", "tasks-replace",
		"Change a task (same as PATCH)", "Tasks")), h.update)
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/complete", "tasks-complete",
		"Complete a task (its subtasks are left alone)", "Tasks")), h.complete)
	huma.Register(api, httpx.OneTransaction(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/force-complete", "tasks-force-complete",
		"Complete a task and all its open subtasks", "Tasks")), h.forceComplete)
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/tasks/{id}", "tasks-delete",
		"Delete a task (recoverable for a while)", "Tasks"), h.delete)
	h.registerSubtasks(api)
	h.registerReminders(api)
	h.registerTemplates(api)
}

func (h *handlers) list(ctx context.Context, in *listInput) (*httpx.ListOutput[TaskDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	items := make([]TaskDTO, 0, in.Limit)
	total, next, err := h.svc.List(ctx, p, ListFilter{
		Completed: in.Completed.Ptr(), Hidden: in.Hidden.Ptr(), Archived: in.Archived.Ptr(),
		Priority: optionalString(in.Priority), DueBefore: in.DueBefore.Ptr(), DueAfter: in.DueAfter.Ptr(),
		Query: in.Q, Sort: in.Sort, Cursor: in.Cursor, Offset: in.Offset, Limit: in.Limit,
	}, func(t *Task) { items = append(items, toTaskDTO(t)) })
	if err != nil {
		return nil, err
	}
	return httpx.ReplyPage(items, in.Page, total, next), nil
}

func (h *handlers) get(ctx context.Context, in *taskPath) (*httpx.DataOutput[TaskDetailDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	d, err := h.svc.Detail(ctx, p, taskID)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(TaskDetailDTO{TaskDTO: toTaskDTO(&d.Task), Subtasks: toSubtaskDTOs(d.Subtasks),
		Reminders: toReminderDTOs(d.Reminders)}), nil
}

func (h *handlers) create(ctx context.Context, in *createInput) (*httpx.DataOutput[TaskDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	desc := ""
	if in.Body.Description != nil {
		desc = *in.Body.Description
	}
	t, err := h.svc.Create(ctx, p, NewTask{Title: in.Body.Title, Description: desc, Priority: in.Body.Priority,
		DueDate: in.Body.DueDate, EstimatedDuration: in.Body.EstimatedDuration})
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toTaskDTO(t)), nil
}

func (h *handlers) update(ctx context.Context, in *updateInput) (*httpx.DataOutput[TaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	b := in.Body
	for field, null := range map[string]bool{"title": b.Title.Null, "priority": b.Priority.Null,
		"hidden": b.Hidden.Null, "archived": b.Archived.Null, "completed": b.Completed.Null} {
		if null {
			return nil, apperr.Validation(field, "must not be null")
		}
	}
	t, err := h.svc.Update(ctx, p, taskID, Changes{
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
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toTaskDTO(t)), nil
}

func (h *handlers) complete(ctx context.Context, in *completeInput) (*httpx.DataOutput[CompletionDTO], error) {
	return h.completeAs(ctx, in, CompletedManual)
}

func (h *handlers) forceComplete(ctx context.Context, in *completeInput) (*httpx.DataOutput[CompletionDTO], error) {
	return h.completeAs(ctx, in, CompletedForce)
}

func (h *handlers) completeAs(ctx context.Context, in *completeInput, by string) (*httpx.DataOutput[CompletionDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	var version *int
	if in.Body != nil {
		version = in.Body.Version
	}
	c, err := h.svc.Complete(ctx, p, taskID, by, version)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(CompletionDTO{Task: toTaskDTO(&c.Task), UnlockedAchievements: c.Rewards.Unlocked,
		Streak: c.Rewards.Streak}), nil
}

func (h *handlers) delete(ctx context.Context, in *taskPath) (*httpx.DataOutput[httpx.Buried], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	d, err := h.svc.Delete(ctx, p, taskID)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(httpx.Buried{TombstoneID: d.TombstoneID, RecoverableUntil: d.RecoverableUntil.UTC()}), nil
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
