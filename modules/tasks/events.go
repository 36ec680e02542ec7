package tasks

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/events"
)

// The events of this module carry ids and the few fields their subscribers
// read, as plain values: a column added to a table here changes no other
// module. Each is published inside the transaction of the change.

// Entity types of the activity log written from these events.
const (
	entitySubtask  = "subtask"
	entityReminder = "reminder"
)

// TaskCreated is published when a task is created (by the user or from a
// template; recovery publishes TaskRecovered).
type TaskCreated struct {
	UserID     uuid.UUID
	TaskID     uuid.UUID
	TemplateID *uuid.UUID
	Title      string
}

func taskCreated(t *Task) TaskCreated {
	return TaskCreated{UserID: t.UserID, TaskID: t.ID, TemplateID: t.TemplateID, Title: t.Title}
}

// ActivityEntry implements events.Recordable.
func (e TaskCreated) ActivityEntry() events.Entry {
	extra := map[string]any{"title": e.Title}
	if e.TemplateID != nil {
		extra["template_id"] = e.TemplateID.String()
	}
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TaskID, Action: "created", Extra: extra}
}

// TaskUpdated is published when fields of a task change (Changed names
// them; a completion is TaskCompleted).
type TaskUpdated struct {
	UserID   uuid.UUID
	TaskID   uuid.UUID
	Changed  []string
	Archived bool
}

// ActivityEntry implements events.Recordable.
func (e TaskUpdated) ActivityEntry() events.Entry {
	action := "updated"
	if len(e.Changed) == 1 && e.Changed[0] == "archived" && e.Archived {
		action = "archived"
	}
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TaskID, Action: action,
		Extra: map[string]any{"changed": e.Changed}}
}

// TaskCompleted is published inside the transaction that completes a task
// (manually, by force, or automatically by its last subtask). Subscribers
// that reward the completion (streaks, achievements) report what they
// granted in Rewards, which the completion's answer returns.
type TaskCompleted struct {
	UserID      uuid.UUID
	Timezone    string
	TaskID      uuid.UUID
	CompletedBy string
	At          time.Time
	// EstimatedMinutes and FocusTimeSeconds let a subscriber judge the
	// focus spent on the task against its estimate.
	EstimatedMinutes *int
	FocusTimeSeconds int
	Rewards          *Rewards
}

// ActivityEntry implements events.Recordable.
func (e TaskCompleted) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TaskID, Action: "completed",
		Extra: map[string]any{"completed_by": e.CompletedBy}}
}

// Rewards collects what a completion earned. It is this module's extension
// point for the rewards other modules grant (achievements, streaks): the
// completion's answer must carry them, and the answer is made here, so the
// subscribers fill this value in the completing transaction rather than the
// tasks module calling them by name.
type Rewards struct {
	Unlocked []UnlockedAchievement
	Streak   int
}

// UnlockedAchievement is one achievement a completion unlocked.
type UnlockedAchievement struct {
	AchievementID   string
	AchievementName string
	Perk            *Perk // nil when the achievement has no perk
}

// Perk is what an achievement adds to a limit.
type Perk struct {
	Type  string // "max_tasks", "max_notes" or "daily_credits"
	Value int
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
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TaskID, Action: "deleted",
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
	UserID      uuid.UUID
	TaskID      uuid.UUID
	TombstoneID uuid.UUID
}

// ActivityEntry implements events.Recordable.
func (e TaskRecovered) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TaskID, Action: "recovered",
		Extra: map[string]any{"tombstone_id": e.TombstoneID.String()}}
}

// SubtaskChanged is published when a subtask is created, updated,
// completed, reopened or deleted (Action says which).
type SubtaskChanged struct {
	UserID    uuid.UUID
	TaskID    uuid.UUID
	SubtaskID uuid.UUID
	Action    string
	Changed   []string
}

func subtaskChanged(st *Subtask, action string, changed []string) SubtaskChanged {
	return SubtaskChanged{UserID: st.UserID, TaskID: st.TaskID, SubtaskID: st.ID, Action: action, Changed: changed}
}

// ActivityEntry implements events.Recordable.
func (e SubtaskChanged) ActivityEntry() events.Entry {
	extra := map[string]any{"task_id": e.TaskID.String()}
	if len(e.Changed) > 0 {
		extra["changed"] = e.Changed
	}
	return events.Entry{UserID: e.UserID, EntityType: entitySubtask, EntityID: e.SubtaskID, Action: e.Action, Extra: extra}
}

// SubtasksReordered is published when a task's subtasks get a new order.
type SubtasksReordered struct {
	UserID uuid.UUID
	TaskID uuid.UUID
	Order  []uuid.UUID
}

// ActivityEntry implements events.Recordable.
func (e SubtasksReordered) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TaskID, Action: "reordered",
		Extra: map[string]any{"subtask_ids": e.Order}}
}

// TemplateChanged is published when a template is created, updated,
// deactivated or deleted.
type TemplateChanged struct {
	UserID     uuid.UUID
	TemplateID uuid.UUID
	RRule      string
	Action     string
}

func templateChanged(t *Template, action string) TemplateChanged {
	return TemplateChanged{UserID: t.UserID, TemplateID: t.ID, RRule: t.RRule, Action: action}
}

// ActivityEntry implements events.Recordable: a template (a recurring
// task) is logged as a task, its actions prefixed template_, as the web
// client knows no template entity.
func (e TemplateChanged) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TemplateID, Action: "template_" + e.Action,
		Extra: map[string]any{"template_id": e.TemplateID.String(), "rrule": e.RRule}}
}

// ReminderChanged is published when a reminder is created, updated or
// deleted, or marked fired by the client.
type ReminderChanged struct {
	UserID      uuid.UUID
	TaskID      uuid.UUID
	ReminderID  uuid.UUID
	ScheduledAt time.Time
	Action      string
}

func reminderChanged(r *Reminder, action string) ReminderChanged {
	return ReminderChanged{UserID: r.UserID, TaskID: r.TaskID, ReminderID: r.ID, ScheduledAt: r.ScheduledAt, Action: action}
}

// ActivityEntry implements events.Recordable.
func (e ReminderChanged) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: entityReminder, EntityID: e.ReminderID, Action: e.Action,
		Extra: map[string]any{"task_id": e.TaskID.String(), "scheduled_at": e.ScheduledAt.UTC()}}
}

// ReminderScheduled is published whenever a reminder needs delivering at
// ScheduledAt (created, moved, recovered). The notifications module
// schedules its delivery in the same transaction; a delivery that finds the
// reminder moved, fired or gone does nothing.
type ReminderScheduled struct {
	UserID      uuid.UUID
	TaskID      uuid.UUID
	ReminderID  uuid.UUID
	ScheduledAt time.Time
}

func scheduled(r *Reminder) ReminderScheduled {
	return ReminderScheduled{UserID: r.UserID, TaskID: r.TaskID, ReminderID: r.ID, ScheduledAt: r.ScheduledAt}
}

// ReminderFired is published inside the transaction that marks a reminder
// fired by its scheduled delivery (exactly once).
type ReminderFired struct {
	FiredReminder
}

// ActivityEntry implements events.Recordable.
func (e ReminderFired) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: entityReminder, EntityID: e.ReminderID,
		Action: "fired", Source: events.SourceSystem, Extra: map[string]any{"task_id": e.TaskID.String()}}
}

// RecurringTaskSkipped is published when an occurrence of a template could
// not become a task (the user was at their task limit).
type RecurringTaskSkipped struct {
	UserID     uuid.UUID
	TemplateID uuid.UUID
	Title      string
	DueDate    time.Time
	Reason     string
}

// ActivityEntry implements events.Recordable.
func (e RecurringTaskSkipped) ActivityEntry() events.Entry {
	return events.Entry{UserID: e.UserID, EntityType: EntityTask, EntityID: e.TemplateID,
		Action: "template_skipped", Source: events.SourceSystem,
		Extra: map[string]any{"template_id": e.TemplateID.String(), "due_date": e.DueDate.UTC(), "reason": e.Reason}}
}
