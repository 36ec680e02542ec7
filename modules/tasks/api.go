package tasks

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/httpx"
)

// This file and events.go are the module's public face: what other modules
// may use. Everything else is the module's own.

// Error codes of this module that other modules answer with too.
const (
	CodeTaskNotFound = "TASK_NOT_FOUND"
	CodeArchived     = "ARCHIVED"
)

// TaskDTO is a task as the API shows it; other modules see tasks in the
// same form (TaskInfo).
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

// SubtaskDTO is a subtask as the API shows it (SubtaskInfo for other
// modules).
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

// TaskInfo is what other modules see of a task: its API form.
type TaskInfo = TaskDTO

// SubtaskInfo is what other modules see of a subtask: its API form.
type SubtaskInfo = SubtaskDTO

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

func (t *Task) info() *TaskInfo {
	dto := toTaskDTO(t)
	return &dto
}

func toSubtaskDTO(st *Subtask) SubtaskDTO {
	return SubtaskDTO{ID: st.ID, TaskID: st.TaskID, Title: st.Title, Completed: st.Completed,
		CompletedAt: httpx.UTCPtr(st.CompletedAt), OrderIndex: st.OrderIndex, Source: st.Source,
		CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC()}
}

func (st *Subtask) info() SubtaskInfo { return toSubtaskDTO(st) }

// Lookup lets other modules check a task's ownership in their transaction.
type Lookup interface {
	// OwnedTask fails with TASK_NOT_FOUND unless the user owns the task.
	OwnedTask(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) (*TaskInfo, error)
	// LockTask is OwnedTask that also locks the task's row until tx ends:
	// a module changing something that hangs on a task (an attached note)
	// takes it first, as the task's own changes do, so that the two never
	// interleave.
	LockTask(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) (*TaskInfo, error)
	// OpenTasks returns the user's open tasks (neither completed nor
	// archived), highest priority and nearest due date first, at most limit.
	OpenTasks(ctx context.Context, tx *gorm.DB, userID uuid.UUID, limit int) ([]TaskInfo, error)
	// SubtasksOf returns a task's subtasks by order (TASK_NOT_FOUND unless
	// the user owns the task).
	SubtasksOf(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) ([]SubtaskInfo, error)
}

// NewTask is the input of creating a task.
type NewTask struct {
	Title             string
	Description       string
	Priority          string
	DueDate           *time.Time
	EstimatedDuration *int
}

// Changes is the input of changing a task. Nil leaves a field as it is; the
// Clear flags set a nullable field to null (an empty description).
type Changes struct {
	Title                  *string
	Description            *string
	ClearDescription       bool
	Priority               *string
	DueDate                *time.Time
	ClearDueDate           bool
	EstimatedDuration      *int
	ClearEstimatedDuration bool
	Hidden                 *bool
	Archived               *bool
	Completed              *bool
	// Version, when given, must be the task's current version.
	Version *int
}

// NewSubtask is the input of adding a subtask.
type NewSubtask struct {
	Title string
	// OrderIndex places it; nil (or past the end) puts it last.
	OrderIndex *int
	// Source is "user" (default) or "ai".
	Source string
}

// Editor changes tasks on a user's behalf inside the caller's transaction
// (the AI assistant's confirmed actions, a note becoming a task), with the
// rules, limits, events and activity of the HTTP routes. Mark the context
// with events.WithSource to say who acted.
type Editor interface {
	CreateTaskTx(ctx context.Context, tx *gorm.DB, p auth.Principal, in NewTask) (*TaskInfo, error)
	UpdateTaskTx(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, c Changes) (*TaskInfo, error)
	CompleteTaskTx(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID) (*TaskInfo, *Rewards, error)
	AddSubtasksTx(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, in []NewSubtask) ([]SubtaskInfo, error)
}

// Focus adds the time of a focus session to its task (gamification).
type Focus interface {
	// AddFocusTime adds seconds to the task's focus_time_seconds and returns
	// the task as it is then.
	AddFocusTime(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID, seconds int) (*TaskInfo, error)
}

// Perks reports the bonus a user's unlocked achievements add to a limit
// (perk types max_tasks, max_notes, daily_credits). It is an extension point
// on purpose: the limits are checked here, in the transaction that creates,
// and the gamification module (which owns achievements) provides the
// bonus; without it the limits are the tier's base.
type Perks interface {
	PerkBonus(ctx context.Context, tx *gorm.DB, userID uuid.UUID, perkType string) (int, error)
}

// ReminderDelivery is what the delivery of a reminder (the notifications
// module's reminder_fire job) needs from tasks.
type ReminderDelivery interface {
	// FireReminder marks a reminder fired by its scheduled delivery, inside
	// the delivery's transaction, exactly once: it returns nil when the
	// reminder is gone, already fired, or was moved away from scheduledAt (a
	// newer delivery is scheduled for it then).
	FireReminder(ctx context.Context, tx *gorm.DB, reminderID uuid.UUID, scheduledAt time.Time) (*FiredReminder, error)
}

// FiredReminder is a reminder that its scheduled delivery just fired.
type FiredReminder struct {
	ReminderID uuid.UUID
	TaskID     uuid.UUID
	UserID     uuid.UUID
	// Method is "in_app" or "push".
	Method    string
	TaskTitle string
	DueDate   *time.Time
}

// The task list, the busiest answer, writes its items without reflection.
func init() { httpx.RegisterJSONItem(appendTaskJSON) }

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
