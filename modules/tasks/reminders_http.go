package tasks

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
)

func toReminderDTO(r *Reminder) ReminderDTO {
	return ReminderDTO{ID: r.ID, TaskID: r.TaskID, UserID: r.UserID, Type: r.Type, OffsetMinutes: r.OffsetMinutes,
		Method: r.Method, ScheduledAt: r.ScheduledAt.UTC(), Fired: r.Fired, FiredAt: httpx.UTCPtr(r.FiredAt),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func toReminderDTOs(list []Reminder) []ReminderDTO { return httpx.Map(list, toReminderDTO) }

// ReminderBody is the body of reminder writes (exported so that Huma can
// read it where it is embedded).
type ReminderBody struct {
	Type          *string    `json:"type,omitempty" enum:"before,after,absolute"`
	OffsetMinutes *int       `json:"offset_minutes,omitempty" minimum:"-43200" maximum:"43200" doc:"Minutes from the due date (at most 30 days); either sign (the type says the direction)"`
	ScheduledAt   *time.Time `json:"scheduled_at,omitempty" doc:"For absolute reminders; recomputed for before/after"`
	Method        *string    `json:"method,omitempty" enum:"push,in_app"`
}

func (b ReminderBody) input() ReminderInput {
	return ReminderInput(b)
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

func (in *createTaskReminderInput) PathID() string { return in.ID }

type updateReminderInput struct {
	ID   string `path:"id" format:"uuid"`
	Body ReminderBody
}

func (in *updateReminderInput) PathID() string { return in.ID }

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

func (in *taskReminderListInput) PathID() string { return in.ID }

func (h *handlers) registerReminders(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/reminders", "reminders-list",
		"The user's reminders by scheduled time", "Reminders"), httpx.HandleList(auth.Caller, h.listReminders, toReminderDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/reminders", "reminders-list-task",
		"A task's reminders", "Reminders"), httpx.HandleListID(auth.Caller, h.listTaskReminders, toReminderDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/reminders/{id}", "reminders-get", "A reminder", "Reminders"), httpx.HandleID(auth.Caller, h.getReminder, toReminderDTO))
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/reminders", "reminders-create",
		"Add a reminder to a task", "Reminders")), httpx.Handle(auth.Caller, h.createReminder, toReminderDTO))
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/reminders", "reminders-create-task",
		"Add a reminder to this task", "Reminders")), httpx.HandleID(auth.Caller, h.createTaskReminder, toReminderDTO))
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		huma.Register(api, httpx.Route(m, "/api/v1/reminders/{id}", "reminders-update-"+m,
			"Change a reminder", "Reminders"), httpx.HandleID(auth.Caller, h.updateReminder, toReminderDTO))
	}
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/reminders/{id}", "reminders-delete",
		"Delete a reminder", "Reminders"), httpx.HandleID(auth.Caller, h.deleteReminder, httpx.Same))
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/reminders/{id}/fire", "reminders-fire",
		"Mark a reminder delivered (idempotent)", "Reminders"), httpx.HandleID(auth.Caller, h.fireReminder, toReminderDTO))
}

func (h *handlers) getReminder(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (*Reminder, error) {
	return h.svc.Reminder(ctx, p, id)
}

func (h *handlers) createReminder(ctx context.Context, p auth.Principal, in *createReminderInput) (*Reminder, error) {
	return h.svc.AddReminder(ctx, p, in.Body.TaskID, in.Body.ReminderBody.input())
}

func (h *handlers) createTaskReminder(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *createTaskReminderInput) (*Reminder, error) {
	return h.svc.AddReminder(ctx, p, taskID, in.Body.input())
}

func (h *handlers) updateReminder(ctx context.Context, p auth.Principal, id uuid.UUID, in *updateReminderInput) (*Reminder, error) {
	return h.svc.UpdateReminder(ctx, p, id, in.Body.input())
}

func (h *handlers) deleteReminder(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (httpx.DeletedID, error) {
	return httpx.DeletedID{ID: id, Deleted: true}, h.svc.DeleteReminder(ctx, p, id)
}

func (h *handlers) fireReminder(ctx context.Context, p auth.Principal, id uuid.UUID, _ *optionalBodyInput) (*Reminder, error) {
	return h.svc.MarkReminderFired(ctx, p, id)
}

func (h *handlers) listReminders(ctx context.Context, p auth.Principal, in *reminderListInput) (database.Paged[Reminder], error) {
	return h.svc.Reminders(ctx, p, ReminderFilter{Fired: in.Fired.Ptr(), From: in.From.Ptr(), To: in.To.Ptr(),
		Window: in.Page.Window()})
}

func (h *handlers) listTaskReminders(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *taskReminderListInput) (database.Paged[Reminder], error) {
	return h.svc.Reminders(ctx, p, ReminderFilter{TaskID: &taskID, Window: in.Page.Window()})
}
