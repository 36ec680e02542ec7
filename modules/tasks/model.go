package tasks

import (
	"time"

	"github.com/google/uuid"
)

// Priorities.
const (
	PriorityLow    = "low"
	PriorityMedium = "medium"
	PriorityHigh   = "high"
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

// Active reports whether the task counts toward the active-task limit.
func (t *Task) Active() bool { return !t.Completed && !t.Archived }

// Entity types of tombstones.
const (
	EntityTask = "task"
	EntityNote = "note"
)

// Tombstone keeps a deleted item recoverable for a while: a full snapshot of
// it and its children.
type Tombstone struct {
	ID               uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID           uuid.UUID `gorm:"type:uuid;not null"`
	EntityType       string    `gorm:"not null"`
	EntityID         uuid.UUID `gorm:"type:uuid;not null"`
	Title            string    `gorm:"not null"`
	Snapshot         string    `gorm:"not null"`
	DeletedAt        time.Time `gorm:"not null"`
	RecoverableUntil time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Tombstone) TableName() string { return "tombstones" }

// taskSnapshot is what a task's tombstone holds.
type taskSnapshot struct {
	Task Task `json:"task"`
}
