package tasks

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
)

// This file holds the handlers of subtasks, reminders, templates, recovery
// and activity; http.go has the task handlers and the shared DTOs.

func toSubtaskDTO(st *Subtask) SubtaskDTO {
	return SubtaskDTO{ID: st.ID, TaskID: st.TaskID, Title: st.Title, Completed: st.Completed,
		CompletedAt: httpx.UTCPtr(st.CompletedAt), OrderIndex: st.OrderIndex, Source: st.Source,
		CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC()}
}

func toSubtaskDTOs(list []Subtask) []SubtaskDTO { return httpx.Map(list, toSubtaskDTO) }

func toReminderDTO(r *Reminder) ReminderDTO {
	return ReminderDTO{ID: r.ID, TaskID: r.TaskID, UserID: r.UserID, Type: r.Type, OffsetMinutes: r.OffsetMinutes,
		Method: r.Method, ScheduledAt: r.ScheduledAt.UTC(), Fired: r.Fired, FiredAt: httpx.UTCPtr(r.FiredAt),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func toReminderDTOs(list []Reminder) []ReminderDTO { return httpx.Map(list, toReminderDTO) }

// TemplateDTO is the TaskTemplate of the API.
type TemplateDTO struct {
	ID                uuid.UUID  `json:"id" format:"uuid"`
	UserID            uuid.UUID  `json:"user_id" format:"uuid"`
	Title             string     `json:"title"`
	Description       string     `json:"description"`
	Priority          string     `json:"priority" enum:"low,medium,high"`
	EstimatedDuration *int       `json:"estimated_duration" nullable:"true"`
	RRule             string     `json:"rrule" example:"FREQ=WEEKLY;BYDAY=MO,WE"`
	NextDue           *time.Time `json:"next_due" nullable:"true"`
	Active            bool       `json:"active"`
	SubtaskTitles     []string   `json:"subtask_titles"`
	Version           int        `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func toTemplateDTO(t *Template) TemplateDTO {
	titles := t.SubtaskTitles
	if titles == nil {
		titles = []string{}
	}
	return TemplateDTO{ID: t.ID, UserID: t.UserID, Title: t.Title, Description: t.Description, Priority: t.Priority,
		EstimatedDuration: t.EstimatedDuration, RRule: t.RRule, NextDue: httpx.UTCPtr(t.NextDue), Active: t.Active,
		SubtaskTitles: titles, Version: t.Version, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// TombstoneDTO is one recoverable item.
type TombstoneDTO struct {
	ID               uuid.UUID `json:"id" format:"uuid"`
	EntityType       string    `json:"entity_type" enum:"task,note"`
	EntityID         uuid.UUID `json:"entity_id" format:"uuid"`
	Title            string    `json:"title"`
	DeletedAt        time.Time `json:"deleted_at"`
	RecoverableUntil time.Time `json:"recoverable_until"`
}

// ActivityDTO is one activity log row.
type ActivityDTO struct {
	ID         uuid.UUID      `json:"id" format:"uuid"`
	UserID     uuid.UUID      `json:"user_id" format:"uuid"`
	EntityType string         `json:"entity_type"`
	EntityID   uuid.UUID      `json:"entity_id" format:"uuid"`
	Action     string         `json:"action"`
	Source     string         `json:"source" enum:"user,ai,system"`
	ExtraData  map[string]any `json:"extra_data"`
	RequestID  *string        `json:"request_id" nullable:"true"`
	CreatedAt  time.Time      `json:"created_at"`
}

type idPath struct {
	ID string `path:"id" format:"uuid"`
}

type subtaskBody struct {
	Title      string `json:"title" minLength:"1" maxLength:"200"`
	OrderIndex *int   `json:"order_index,omitempty" minimum:"0" maximum:"10000" doc:"Position; past the end puts it last"`
}

type createSubtaskInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body subtaskBody
}

type updateSubtaskInput struct {
	ID   string `path:"id" format:"uuid" doc:"Subtask id"`
	Body struct {
		Title      *string `json:"title,omitempty" minLength:"1" maxLength:"200"`
		Completed  *bool   `json:"completed,omitempty"`
		OrderIndex *int    `json:"order_index,omitempty" minimum:"0" maximum:"10000" doc:"Position; past the end puts it last"`
	} `nameHint:"SubtaskUpdate"`
}

type reorderInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body struct {
		SubtaskIDs []uuid.UUID `json:"subtask_ids" maxItems:"100"`
	} `nameHint:"SubtaskReorder"`
}

type optionalBodyInput struct {
	ID   string `path:"id" format:"uuid"`
	Body *httpx.EmptyBody
}

// ReminderBody is the body of reminder writes (exported so that Huma can
// read it where it is embedded).
type ReminderBody struct {
	Type          *string    `json:"type,omitempty" enum:"before,after,absolute"`
	OffsetMinutes *int       `json:"offset_minutes,omitempty" minimum:"-43200" maximum:"43200" doc:"Minutes from the due date (at most 30 days); either sign (the type says the direction)"`
	ScheduledAt   *time.Time `json:"scheduled_at,omitempty" doc:"For absolute reminders; recomputed for before/after"`
	Method        *string    `json:"method,omitempty" enum:"push,in_app"`
}

type createReminderInput struct {
	Body struct {
		TaskID uuid.UUID `json:"task_id" format:"uuid"`
		ReminderBody
	} `nameHint:"ReminderCreate"`
}

type createTaskReminderInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body ReminderBody
}

type updateReminderInput struct {
	ID   string `path:"id" format:"uuid"`
	Body ReminderBody
}

type reminderListInput struct {
	httpx.Page
	Fired httpx.Param[bool]      `query:"fired"`
	From  httpx.Param[time.Time] `query:"from" doc:"Scheduled at or after"`
	To    httpx.Param[time.Time] `query:"to" doc:"Scheduled at or before"`
}

type taskReminderListInput struct {
	ID string `path:"id" format:"uuid"`
	httpx.Page
}

type templateBody struct {
	Title             httpx.Optional[string]         `json:"title,omitempty" minLength:"1" maxLength:"500"`
	Description       httpx.Optional[string]         `json:"description,omitempty" maxLength:"2000"`
	Priority          httpx.Optional[string]         `json:"priority,omitempty" enum:"low,medium,high"`
	EstimatedDuration httpx.Optional[int]            `json:"estimated_duration,omitempty" minimum:"1" maximum:"720" nullable:"true"`
	RRule             httpx.Optional[string]         `json:"rrule,omitempty" maxLength:"500" doc:"RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO"`
	Active            httpx.Optional[bool]           `json:"active,omitempty"`
	SubtaskTitles     httpx.Optional[[]subtaskTitle] `json:"subtask_titles,omitempty" maxItems:"10"`
}

// subtaskTitle is one subtask title of a template (bounded like a
// subtask's own title).
type subtaskTitle string

// Schema implements huma.SchemaProvider.
func (subtaskTitle) Schema(huma.Registry) *huma.Schema {
	lo, hi := 1, maxSubtaskTitle
	return &huma.Schema{Type: huma.TypeString, MinLength: &lo, MaxLength: &hi}
}

type createTemplateInput struct {
	Body templateBody
}

type updateTemplateInput struct {
	ID   string `path:"id" format:"uuid"`
	Body templateBody
}

// ActivityQuery is the query of the activity list (exported so that Huma can
// fill it where it is embedded).
type ActivityQuery struct {
	httpx.Page
	EntityType string                 `query:"entity_type" maxLength:"30"`
	EntityID   httpx.Param[uuid.UUID] `query:"entity_id"`
	From       httpx.Param[time.Time] `query:"from"`
	To         httpx.Param[time.Time] `query:"to"`
}

type userActivityInput struct {
	UserID string `path:"id" format:"uuid" doc:"The caller's own id"`
	ActivityQuery
}

type listOf[T any] struct {
	Body httpx.Data[[]T]
}

func (h *handlers) registerMore(api huma.API) {
	// Subtasks.
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/subtasks", "subtasks-list",
		"A task's subtasks by order_index", "Subtasks"), h.listSubtasks)
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/subtasks", "subtasks-create",
		"Add a subtask (last unless order_index says otherwise)", "Subtasks")), h.createSubtask)
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		huma.Register(api, httpx.Route(m, "/api/v1/subtasks/{id}", "subtasks-update-"+m,
			"Change a subtask (completing the last open one completes the task)", "Subtasks"), h.updateSubtask)
	}
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/subtasks/{id}/complete", "subtasks-complete",
		"Complete a subtask", "Subtasks"), h.completeSubtask)
	huma.Register(api, httpx.Route(http.MethodPut, "/api/v1/tasks/{id}/subtasks/reorder", "subtasks-reorder",
		"Put a task's subtasks in the given order (a permutation)", "Subtasks"), h.reorderSubtasks)
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/subtasks/{id}", "subtasks-delete",
		"Delete a subtask", "Subtasks"), h.deleteSubtask)

	// Reminders.
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/reminders", "reminders-list",
		"The user's reminders by scheduled time", "Reminders"), h.listReminders)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/reminders", "reminders-list-task",
		"A task's reminders", "Reminders"), h.listTaskReminders)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/reminders/{id}", "reminders-get", "A reminder", "Reminders"), h.getReminder)
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/reminders", "reminders-create",
		"Add a reminder to a task", "Reminders")), h.createReminder)
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/reminders", "reminders-create-task",
		"Add a reminder to this task", "Reminders")), h.createTaskReminder)
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		huma.Register(api, httpx.Route(m, "/api/v1/reminders/{id}", "reminders-update-"+m,
			"Change a reminder", "Reminders"), h.updateReminder)
	}
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/reminders/{id}", "reminders-delete",
		"Delete a reminder", "Reminders"), h.deleteReminder)
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/reminders/{id}/fire", "reminders-fire",
		"Mark a reminder delivered (idempotent)", "Reminders"), h.fireReminder)

	// Templates.
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/templates", "templates-list",
		"Recurring task templates", "Templates"), h.listTemplates)
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/templates", "templates-create",
		"Create a recurring task template", "Templates")), h.createTemplate)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/templates/{id}", "templates-get", "A template", "Templates"), h.getTemplate)
	huma.Register(api, httpx.Route(http.MethodPatch, "/api/v1/templates/{id}", "templates-update",
		"Change a template", "Templates"), h.updateTemplate)
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/templates/{id}", "templates-delete",
		"Delete a template (its tasks stay)", "Templates"), h.deleteTemplate)
	for _, suffix := range []string{"instantiate", "generate"} {
		huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/templates/{id}/"+suffix, "templates-"+suffix,
			"Make the template's next task now, with its subtasks", "Templates")), h.instantiate)
	}

	// Recovery.
	for _, path := range []string{"/api/v1/recovery", "/api/v1/recovery/tombstones"} {
		huma.Register(api, httpx.Route(http.MethodGet, path, "recovery-list"+suffixOf(path),
			"Deleted items that can still be recovered", "Recovery"), h.listTombstones)
	}
	for _, path := range []string{"/api/v1/recovery/{id}/recover", "/api/v1/recovery/tombstones/{id}/recover", "/api/v1/tasks/recover/{id}"} {
		huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, path, "recovery-recover"+suffixOf(path),
			"Recover a deleted task or note (original id, version 1)", "Recovery")), h.recover)
	}

	// Activity.
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/activity", "activity-list",
		"The user's activity log, newest first", "Activity"), h.listActivity)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/users/{id}/activity", "activity-list-user",
		"Same as /activity, for the caller's own id", "Activity"), h.listUserActivity)
}

func suffixOf(path string) string {
	switch path {
	case "/api/v1/recovery/tombstones", "/api/v1/recovery/tombstones/{id}/recover":
		return "-tombstones"
	case "/api/v1/tasks/recover/{id}":
		return "-tasks"
	}
	return ""
}

func (h *handlers) listSubtasks(ctx context.Context, in *idPath) (*listOf[SubtaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	list, err := h.svc.Subtasks(ctx, p, taskID)
	if err != nil {
		return nil, err
	}
	return &listOf[SubtaskDTO]{Body: httpx.Data[[]SubtaskDTO]{Data: toSubtaskDTOs(list)}}, nil
}

func (h *handlers) createSubtask(ctx context.Context, in *createSubtaskInput) (*httpx.DataOutput[SubtaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := h.svc.AddSubtask(ctx, p, taskID, NewSubtask{Title: in.Body.Title, OrderIndex: in.Body.OrderIndex})
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTO(st)), nil
}

func (h *handlers) updateSubtask(ctx context.Context, in *updateSubtaskInput) (*httpx.DataOutput[SubtaskDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := h.svc.UpdateSubtask(ctx, p, id, SubtaskChanges{Title: in.Body.Title, Completed: in.Body.Completed,
		OrderIndex: in.Body.OrderIndex})
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTO(st)), nil
}

func (h *handlers) completeSubtask(ctx context.Context, in *optionalBodyInput) (*httpx.DataOutput[SubtaskDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := h.svc.CompleteSubtask(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTO(st)), nil
}

func (h *handlers) reorderSubtasks(ctx context.Context, in *reorderInput) (*listOf[SubtaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	list, err := h.svc.ReorderSubtasks(ctx, p, taskID, in.Body.SubtaskIDs)
	if err != nil {
		return nil, err
	}
	return &listOf[SubtaskDTO]{Body: httpx.Data[[]SubtaskDTO]{Data: toSubtaskDTOs(list)}}, nil
}

func (h *handlers) deleteSubtask(ctx context.Context, in *idPath) (*httpx.DataOutput[httpx.DeletedID], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteSubtask(ctx, p, id); err != nil {
		return nil, err
	}
	return httpx.Reply(httpx.DeletedID{ID: id, Deleted: true}), nil
}

func (h *handlers) listReminders(ctx context.Context, in *reminderListInput) (*httpx.ListOutput[ReminderDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, total, err := h.svc.Reminders(ctx, p, ReminderFilter{Fired: in.Fired.Ptr(), From: in.From.Ptr(), To: in.To.Ptr(),
		Offset: in.Offset, Limit: in.Limit})
	if err != nil {
		return nil, err
	}
	return httpx.ReplyList(toReminderDTOs(list), in.Page, total), nil
}

func (h *handlers) listTaskReminders(ctx context.Context, in *taskReminderListInput) (*httpx.ListOutput[ReminderDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	list, total, err := h.svc.Reminders(ctx, p, ReminderFilter{TaskID: &taskID, Offset: in.Offset, Limit: in.Limit})
	if err != nil {
		return nil, err
	}
	return httpx.ReplyList(toReminderDTOs(list), in.Page, total), nil
}

func (h *handlers) getReminder(ctx context.Context, in *idPath) (*httpx.DataOutput[ReminderDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.Reminder(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toReminderDTO(r)), nil
}

func (b ReminderBody) input() ReminderInput {
	return ReminderInput{Type: b.Type, OffsetMinutes: b.OffsetMinutes, ScheduledAt: b.ScheduledAt, Method: b.Method}
}

func (h *handlers) createReminder(ctx context.Context, in *createReminderInput) (*httpx.DataOutput[ReminderDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.AddReminder(ctx, p, in.Body.TaskID, in.Body.ReminderBody.input())
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toReminderDTO(r)), nil
}

func (h *handlers) createTaskReminder(ctx context.Context, in *createTaskReminderInput) (*httpx.DataOutput[ReminderDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.AddReminder(ctx, p, taskID, in.Body.input())
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toReminderDTO(r)), nil
}

func (h *handlers) updateReminder(ctx context.Context, in *updateReminderInput) (*httpx.DataOutput[ReminderDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.UpdateReminder(ctx, p, id, in.Body.input())
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toReminderDTO(r)), nil
}

func (h *handlers) deleteReminder(ctx context.Context, in *idPath) (*httpx.DataOutput[httpx.DeletedID], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteReminder(ctx, p, id); err != nil {
		return nil, err
	}
	return httpx.Reply(httpx.DeletedID{ID: id, Deleted: true}), nil
}

func (h *handlers) fireReminder(ctx context.Context, in *optionalBodyInput) (*httpx.DataOutput[ReminderDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	r, err := h.svc.MarkReminderFired(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toReminderDTO(r)), nil
}

func (h *handlers) listTemplates(ctx context.Context, in *httpx.Page) (*httpx.ListOutput[TemplateDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, total, err := h.svc.Templates(ctx, p, in.Offset, in.Limit)
	if err != nil {
		return nil, err
	}
	return httpx.ReplyList(httpx.Map(list, toTemplateDTO), *in, total), nil
}

func (b templateBody) input() (TemplateInput, error) {
	for field, null := range map[string]bool{"title": b.Title.Null, "priority": b.Priority.Null, "rrule": b.RRule.Null,
		"active": b.Active.Null} {
		if null {
			return TemplateInput{}, apperr.Validation(field, "must not be null")
		}
	}
	in := TemplateInput{Title: b.Title.Ptr(), Priority: b.Priority.Ptr(), EstimatedDuration: b.EstimatedDuration.Ptr(),
		ClearEstimatedDuration: b.EstimatedDuration.Null, RRule: b.RRule.Ptr(), Active: b.Active.Ptr()}
	if titles := b.SubtaskTitles.Ptr(); titles != nil {
		list := make([]string, len(*titles))
		for i, t := range *titles {
			list[i] = string(t)
		}
		in.SubtaskTitles = &list
	}
	if b.Description.Set {
		d := b.Description.Value
		in.Description = &d
	}
	if b.SubtaskTitles.Null {
		empty := []string{}
		in.SubtaskTitles = &empty
	}
	return in, nil
}

func (h *handlers) createTemplate(ctx context.Context, in *createTemplateInput) (*httpx.DataOutput[TemplateDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	input, err := in.Body.input()
	if err != nil {
		return nil, err
	}
	if input.Title == nil {
		return nil, apperr.Validation("title", "is required")
	}
	if input.RRule == nil {
		return nil, apperr.Validation("rrule", "is required")
	}
	t, err := h.svc.CreateTemplate(ctx, p, input)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toTemplateDTO(t)), nil
}

func (h *handlers) getTemplate(ctx context.Context, in *idPath) (*httpx.DataOutput[TemplateDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	t, err := h.svc.Template(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toTemplateDTO(t)), nil
}

func (h *handlers) updateTemplate(ctx context.Context, in *updateTemplateInput) (*httpx.DataOutput[TemplateDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	input, err := in.Body.input()
	if err != nil {
		return nil, err
	}
	t, err := h.svc.UpdateTemplate(ctx, p, id, input)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toTemplateDTO(t)), nil
}

func (h *handlers) deleteTemplate(ctx context.Context, in *idPath) (*httpx.DataOutput[httpx.DeletedID], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteTemplate(ctx, p, id); err != nil {
		return nil, err
	}
	return httpx.Reply(httpx.DeletedID{ID: id, Deleted: true}), nil
}

func (h *handlers) instantiate(ctx context.Context, in *optionalBodyInput) (*httpx.DataOutput[TaskDetailDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	t, subtasks, err := h.svc.Instantiate(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(TaskDetailDTO{TaskDTO: toTaskDTO(t), Subtasks: toSubtaskDTOs(subtasks), Reminders: []ReminderDTO{}}), nil
}

func (h *handlers) listTombstones(ctx context.Context, _ *struct{}) (*listOf[TombstoneDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := h.recovery.List(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]TombstoneDTO, len(list))
	for i, ts := range list {
		out[i] = TombstoneDTO{ID: ts.ID, EntityType: ts.EntityType, EntityID: ts.EntityID, Title: ts.Title,
			DeletedAt: ts.DeletedAt.UTC(), RecoverableUntil: ts.RecoverableUntil.UTC()}
	}
	return &listOf[TombstoneDTO]{Body: httpx.Data[[]TombstoneDTO]{Data: out}}, nil
}

type recoveredOutput struct {
	Body httpx.Data[recovered]
}

// recovered is the item a recovery brought back: a Task or a Note.
type recovered struct{ item any }

// MarshalJSON encodes the item itself.
func (r recovered) MarshalJSON() ([]byte, error) { return json.Marshal(r.item) }

// Schema documents the item.
func (recovered) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeObject, Description: "The recovered Task or Note, with its original id",
		AdditionalProperties: true}
}

func (h *handlers) recover(ctx context.Context, in *optionalBodyInput) (*recoveredOutput, error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	obj, err := h.recovery.Recover(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if t, ok := obj.(*Task); ok {
		obj = toTaskDTO(t)
	}
	return &recoveredOutput{Body: httpx.Data[recovered]{Data: recovered{item: obj}}}, nil
}

func (h *handlers) activity(ctx context.Context, p auth.Principal, in *ActivityQuery) (*httpx.ListOutput[ActivityDTO], error) {
	f := ActivityFilter{EntityID: in.EntityID.Ptr(), From: in.From.Ptr(), To: in.To.Ptr(), Offset: in.Offset, Limit: in.Limit}
	if in.EntityType != "" {
		f.EntityType = &in.EntityType
	}
	list, total, err := h.svc.Activity(ctx, p, f)
	if err != nil {
		return nil, err
	}
	out := make([]ActivityDTO, len(list))
	for i, a := range list {
		extra := map[string]any{}
		_ = json.Unmarshal([]byte(a.ExtraData), &extra)
		out[i] = ActivityDTO{ID: a.ID, UserID: a.UserID, EntityType: a.EntityType, EntityID: a.EntityID, Action: a.Action,
			Source: a.Source, ExtraData: extra, RequestID: a.RequestID, CreatedAt: a.CreatedAt.UTC()}
	}
	return httpx.ReplyList(out, in.Page, total), nil
}

func (h *handlers) listActivity(ctx context.Context, in *ActivityQuery) (*httpx.ListOutput[ActivityDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return h.activity(ctx, p, in)
}

func (h *handlers) listUserActivity(ctx context.Context, in *userActivityInput) (*httpx.ListOutput[ActivityDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.UserID)
	if err != nil {
		return nil, err
	}
	if id != p.UserID {
		return nil, apperr.NotFound(apperr.CodeNotFound, "user")
	}
	return h.activity(ctx, p, &in.ActivityQuery)
}
