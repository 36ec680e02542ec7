package tasks

import (
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/database"
)

// How a task was completed.
const (
	CompletedManual = "manual"
	CompletedAuto   = "auto"
	CompletedForce  = "force"
)

// Task is one task of a user.
type Task struct {
	ID                    uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	UserID                uuid.UUID  `gorm:"type:uuid;not null" json:"user_id"`
	TemplateID            *uuid.UUID `gorm:"type:uuid" json:"template_id"`
	Title                 string     `gorm:"not null" json:"title"`
	Description           string     `gorm:"not null" json:"description"`
	Priority              string     `gorm:"not null" json:"priority"`
	DueDate               *time.Time `json:"due_date"`
	EstimatedDuration     *int       `json:"estimated_duration"`
	FocusTimeSeconds      int        `gorm:"not null" json:"focus_time_seconds"`
	Completed             bool       `gorm:"not null" json:"completed"`
	CompletedAt           *time.Time `json:"completed_at"`
	CompletedBy           *string    `json:"completed_by"`
	Hidden                bool       `gorm:"not null" json:"hidden"`
	Archived              bool       `gorm:"not null" json:"archived"`
	SubtaskCount          int        `gorm:"not null" json:"subtask_count"`
	SubtaskCompletedCount int        `gorm:"not null" json:"subtask_completed_count"`
	Version               int        `gorm:"not null" json:"version"`
	CreatedAt             time.Time  `json:"created_at"`
	UpdatedAt             time.Time  `json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Task) TableName() string { return "tasks" }

// Versioned implements database.VersionedRow.
func (t *Task) Versioned() database.Versioned {
	return database.Versioned{Version: &t.Version, UpdatedAt: &t.UpdatedAt}
}

// Active reports whether the task counts toward the active-task limit.
func (t *Task) Active() bool { return !t.Completed && !t.Archived }

// Subtask is one step of a task. order_index runs 0..n-1 without gaps.
type Subtask struct {
	ID          uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	TaskID      uuid.UUID  `gorm:"type:uuid;not null" json:"task_id"`
	UserID      uuid.UUID  `gorm:"type:uuid;not null" json:"user_id"`
	Title       string     `gorm:"not null" json:"title"`
	Completed   bool       `gorm:"not null" json:"completed"`
	CompletedAt *time.Time `json:"completed_at"`
	OrderIndex  int        `gorm:"not null" json:"order_index"`
	Source      string     `gorm:"not null" json:"source"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Subtask) TableName() string { return "subtasks" }

// Template is a recurring task: its rule makes a new task at each occurrence.
type Template struct {
	ID                uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	UserID            uuid.UUID  `gorm:"type:uuid;not null" json:"user_id"`
	Title             string     `gorm:"not null" json:"title"`
	Description       string     `gorm:"not null" json:"description"`
	Priority          string     `gorm:"not null" json:"priority"`
	EstimatedDuration *int       `json:"estimated_duration"`
	RRule             string     `gorm:"column:rrule;not null" json:"rrule"`
	StartsAt          time.Time  `gorm:"not null" json:"starts_at"`
	NextDue           *time.Time `json:"next_due"`
	Active            bool       `gorm:"not null" json:"active"`
	SubtaskTitles     []string   `gorm:"serializer:json;not null" json:"subtask_titles"`
	Version           int        `gorm:"not null" json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Template) TableName() string { return "task_templates" }

// Versioned implements database.VersionedRow.
func (t *Template) Versioned() database.Versioned {
	return database.Versioned{Version: &t.Version, UpdatedAt: &t.UpdatedAt}
}

// Reminder types and methods.
const (
	ReminderBefore   = "before"
	ReminderAfter    = "after"
	ReminderAbsolute = "absolute"
)

// Reminder is a moment to remind the user of a task. Relative reminders
// (before/after) follow the task's due date.
type Reminder struct {
	ID            uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	TaskID        uuid.UUID  `gorm:"type:uuid;not null" json:"task_id"`
	UserID        uuid.UUID  `gorm:"type:uuid;not null" json:"user_id"`
	Type          string     `gorm:"not null" json:"type"`
	OffsetMinutes *int       `json:"offset_minutes"`
	Method        string     `gorm:"not null" json:"method"`
	ScheduledAt   time.Time  `gorm:"not null" json:"scheduled_at"`
	Fired         bool       `gorm:"not null" json:"fired"`
	FiredAt       *time.Time `json:"fired_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// TableName implements gorm's Tabler.
func (Reminder) TableName() string { return "reminders" }

// Relative reports whether the reminder follows the due date.
func (r *Reminder) Relative() bool { return r.Type == ReminderBefore || r.Type == ReminderAfter }
