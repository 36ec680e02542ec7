package tasks

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/events"
)

// Entity types of the activity log written by this module.
const (
	entityTask     = "task"
	entitySubtask  = "subtask"
	entityTemplate = "template"
	entityReminder = "reminder"
)

// TaskCreated is published when a task is created (by the user, from a
// template, or by recovery's counterpart TaskRecovered).
type TaskCreated struct {
	Task Task
}

// ActivityEntry implements events.Recordable.
func (e TaskCreated) ActivityEntry() events.Entry {
	extra := map[string]any{"title": e.Task.Title}
	if e.Task.TemplateID != nil {
		extra["template_id"] = e.Task.TemplateID.String()
	}
	return events.Entry{UserID: e.Task.UserID, EntityType: entityTask, EntityID: e.Task.ID, Action: "created", Extra: extra}
}

// TaskUpdated is published when fields of a task change (Changed names them).
type TaskUpdated struct {
	Task    Task
	Changed []string
}

// ActivityEntry implements events.Recordable.
func (e TaskUpdated) ActivityEntry() events.Entry {
	action := "updated"
	if len(e.Changed) == 1 && e.Changed[0] == "archived" && e.Task.Archived {
		action = "archived"
	}
	return events.Entry{UserID: e.Task.UserID, EntityType: entityTask, EntityID: e.Task.ID, Action: action,
		Extra: map[string]any{"changed": e.Changed}}
}

// TaskCompleted is published inside the transaction that completes a task
// (manually, by force, or automatically by its last subtask). Subscribers
// that reward the completion (streaks, achievements) report what they
// granted in Rewards, which the completion's answer returns.
type TaskCompleted struct {
	UserID      uuid.UUID
	Timezone    string
	Task        Task
	CompletedBy string
	At          time.Time
	Rewards     *Rewards
}

// ActivityEntry implements events.Recordable.
func (e TaskCompleted) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: entityTask, EntityID: e.Task.ID, Action: "completed",
		Extra: map[string]any{"completed_by": e.CompletedBy}}
}

// Rewards collects what a completion earned.
type Rewards struct {
	Unlocked []UnlockedAchievement
	Streak   int
}

// UnlockedAchievement is one achievement a completion unlocked.
type UnlockedAchievement struct {
	AchievementID   string `json:"achievement_id"`
	AchievementName string `json:"achievement_name"`
	Perk            *Perk  `json:"perk" doc:"null when the achievement has no perk"`
}

// Perk is what an achievement adds to a limit.
type Perk struct {
	Type  string `json:"type" enum:"max_tasks,max_notes,daily_credits"`
	Value int    `json:"value"`
}

// TaskDeleting is published inside a task's deletion before its tombstone
// is written. Modules that own children of the task remove them and attach
// their snapshot under their name, so that recovery can give them back
// (see TaskRecovering).
type TaskDeleting struct {
	UserID uuid.UUID
	TaskID uuid.UUID
	Attach func(name string, snapshot any) error
}

// TaskDeleted is published inside the transaction that deletes a task
// (after its tombstone is written).
type TaskDeleted struct {
	UserID      uuid.UUID
	TaskID      uuid.UUID
	TombstoneID uuid.UUID
	At          time.Time
}

// ActivityEntry implements events.Recordable.
func (e TaskDeleted) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: entityTask, EntityID: e.TaskID, Action: "deleted",
		Extra: map[string]any{"tombstone_id": e.TombstoneID.String()}}
}

// TaskRecovering is published inside a task's recovery after the task and
// its own children are restored; modules restore what they attached at
// deletion (Attached[name]) and may refuse with a limit error.
type TaskRecovering struct {
	UserID   uuid.UUID
	Tier     string
	TaskID   uuid.UUID
	Attached map[string]json.RawMessage
}

// TaskRecovered is published when a task comes back from its tombstone.
type TaskRecovered struct {
	Task        Task
	TombstoneID uuid.UUID
}

// ActivityEntry implements events.Recordable.
func (e TaskRecovered) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.Task.UserID, EntityType: entityTask, EntityID: e.Task.ID, Action: "recovered",
		Extra: map[string]any{"tombstone_id": e.TombstoneID.String()}}
}

// SubtaskChanged is published when a subtask is created, updated,
// completed, reopened or deleted (Action says which).
type SubtaskChanged struct {
	Subtask Subtask
	Action  string
	Changed []string
}

// ActivityEntry implements events.Recordable.
func (e SubtaskChanged) ActivityEntry() events.Entry {
	extra := map[string]any{"task_id": e.Subtask.TaskID.String()}
	if len(e.Changed) > 0 {
		extra["changed"] = e.Changed
	}
	return events.Entry{UserID: e.Subtask.UserID, EntityType: entitySubtask, EntityID: e.Subtask.ID,
		Action: e.Action, Extra: extra}
}

// SubtasksReordered is published when a task's subtasks get a new order.
type SubtasksReordered struct {
	UserID uuid.UUID
	TaskID uuid.UUID
	Order  []uuid.UUID
}

// ActivityEntry implements events.Recordable.
func (e SubtasksReordered) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: entityTask, EntityID: e.TaskID, Action: "reordered",
		Extra: map[string]any{"subtask_ids": e.Order}}
}

// TemplateChanged is published when a template is created, updated,
// deactivated or deleted.
type TemplateChanged struct {
	Template Template
	Action   string
}

// ActivityEntry implements events.Recordable.
func (e TemplateChanged) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.Template.UserID, EntityType: entityTemplate, EntityID: e.Template.ID,
		Action: e.Action, Extra: map[string]any{"rrule": e.Template.RRule}}
}

// ReminderChanged is published when a reminder is created, updated or
// deleted, or marked fired by the client.
type ReminderChanged struct {
	Reminder Reminder
	Action   string
}

// ActivityEntry implements events.Recordable.
func (e ReminderChanged) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.Reminder.UserID, EntityType: entityReminder, EntityID: e.Reminder.ID,
		Action: e.Action, Extra: map[string]any{"task_id": e.Reminder.TaskID.String(),
			"scheduled_at": e.Reminder.ScheduledAt.UTC()}}
}

// ReminderScheduled is published whenever a reminder needs delivering at
// ScheduledAt (created, moved, recovered). The notifications module
// schedules its delivery in the same transaction; a delivery that finds the
// reminder moved, fired or gone does nothing.
type ReminderScheduled struct {
	Reminder Reminder
}

// ReminderFired is published inside the transaction that marks a reminder
// fired by its scheduled delivery (exactly once).
type ReminderFired struct {
	Reminder  Reminder
	TaskTitle string
	DueDate   *time.Time
}

// ActivityEntry implements events.Recordable.
func (e ReminderFired) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.Reminder.UserID, EntityType: entityReminder, EntityID: e.Reminder.ID,
		Action: "fired", Source: events.SourceSystem, Extra: map[string]any{"task_id": e.Reminder.TaskID.String()}}
}

// RecurringTaskSkipped is published when an occurrence of a template could
// not become a task (the user was at their task limit).
type RecurringTaskSkipped struct {
	Template Template
	DueDate  time.Time
	Reason   string
}

// ActivityEntry implements events.Recordable.
func (e RecurringTaskSkipped) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.Template.UserID, EntityType: entityTemplate, EntityID: e.Template.ID,
		Action: "skipped", Source: events.SourceSystem,
		Extra: map[string]any{"due_date": e.DueDate.UTC(), "reason": e.Reason}}
}
