package tasks

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
)

// This file and events.go are the module's public face: what other modules
// may use. Everything else is the module's own.

// Error codes of this module that other modules answer with too.
const (
	CodeTaskNotFound = "TASK_NOT_FOUND"
	CodeArchived     = "ARCHIVED"
)

// Priorities of a task.
const (
	PriorityLow    = "low"
	PriorityMedium = "medium"
	PriorityHigh   = "high"
)

// Sources of a subtask: the user's own or the assistant's.
const (
	SourceUser = "user"
	SourceAI   = "ai"
)

// Ways a reminder reaches the user.
const (
	MethodPush  = "push"
	MethodInApp = "in_app"
)

// Lengths, in characters, of a task's texts: the longest any tier allows (a
// tier may allow a shorter description: limits.<tier>.max_description_length).
// Modules that draft tasks keep to them.
const (
	MaxTitleLength        = 500
	MaxSubtaskTitleLength = 200
	MaxDescriptionLength  = 2000
)

// TaskInfo is what other modules see of a task.
type TaskInfo struct {
	ID                    uuid.UUID
	UserID                uuid.UUID
	TemplateID            *uuid.UUID
	Title                 string
	Description           string
	Priority              string // PriorityLow, PriorityMedium or PriorityHigh
	DueDate               *time.Time
	EstimatedDuration     *int // minutes
	FocusTimeSeconds      int
	Completed             bool
	CompletedAt           *time.Time
	CompletedBy           *string // "manual", "auto" or "force"
	Hidden                bool
	Archived              bool
	SubtaskCount          int
	SubtaskCompletedCount int
	Version               int
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

// SubtaskInfo is what other modules see of a subtask.
type SubtaskInfo struct {
	ID          uuid.UUID
	TaskID      uuid.UUID
	Title       string
	Completed   bool
	CompletedAt *time.Time
	OrderIndex  int
	Source      string // SourceUser or SourceAI
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (t *Task) info() *TaskInfo {
	return &TaskInfo{
		ID: t.ID, UserID: t.UserID, TemplateID: t.TemplateID, Title: t.Title, Description: t.Description,
		Priority: t.Priority, DueDate: t.DueDate, EstimatedDuration: t.EstimatedDuration,
		FocusTimeSeconds: t.FocusTimeSeconds, Completed: t.Completed, CompletedAt: t.CompletedAt,
		CompletedBy: t.CompletedBy, Hidden: t.Hidden, Archived: t.Archived, SubtaskCount: t.SubtaskCount,
		SubtaskCompletedCount: t.SubtaskCompletedCount, Version: t.Version, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func (st *Subtask) info() SubtaskInfo {
	return SubtaskInfo{ID: st.ID, TaskID: st.TaskID, Title: st.Title, Completed: st.Completed,
		CompletedAt: st.CompletedAt, OrderIndex: st.OrderIndex, Source: st.Source,
		CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt}
}

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

// ReminderDelivery is what the delivery of a reminder (the notifications
// module's reminder_fire job) needs from tasks.
type ReminderDelivery interface {
	// FireReminder marks a reminder fired by its scheduled delivery, inside
	// the delivery's transaction, exactly once: it returns nil when the
	// reminder is gone, already fired, or was moved away from scheduledAt (a
	// newer delivery is scheduled for it then).
	FireReminder(ctx context.Context, tx *gorm.DB, reminderID uuid.UUID, scheduledAt time.Time) (*FiredReminder, error)
	// PendingReminders lists the user's reminders not fired yet, inside tx
	// (their deliveries are cancelled when the account closes).
	PendingReminders(ctx context.Context, tx *gorm.DB, userID uuid.UUID) ([]uuid.UUID, error)
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
