package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
)

// EntityTask is the entity type of a task in the recycle bin (and in the
// activity log).
const EntityTask = "task"

// taskSnapshot is what a task's tombstone holds: the task, its children,
// and what other modules attached (their own children of the task, such as
// notes) under their names.
type taskSnapshot struct {
	Task      Task                       `json:"task"`
	Subtasks  []Subtask                  `json:"subtasks"`
	Reminders []Reminder                 `json:"reminders"`
	Attached  map[string]json.RawMessage `json:"attached,omitempty"`
}

// RestoredEntity implements recovery.Restored.
func (TaskDTO) RestoredEntity() string { return EntityTask }

func newRecoverer(s *Service) recovery.Recoverer {
	return recovery.Recoverer{EntityType: EntityTask,
		Recover: func(ctx context.Context, tx *gorm.DB, p auth.Principal, from recovery.Restore) (recovery.Restored, error) {
			t, err := s.restoreTask(ctx, tx, p, from)
			if err != nil {
				return nil, err
			}
			return toTaskDTO(t), nil
		}}
}

// restored is a snapshot made current again: the original ids and
// created_at, version 1, the restorer as owner.
func restored(snap taskSnapshot, p auth.Principal, now time.Time) taskSnapshot {
	out := snap
	out.Task.UserID, out.Task.Version, out.Task.UpdatedAt = p.UserID, 1, now
	out.Subtasks = append([]Subtask(nil), snap.Subtasks...)
	for i := range out.Subtasks {
		out.Subtasks[i].UserID, out.Subtasks[i].UpdatedAt = p.UserID, now
	}
	out.Reminders = append([]Reminder(nil), snap.Reminders...)
	for i := range out.Reminders {
		out.Reminders[i].UserID, out.Reminders[i].UpdatedAt = p.UserID, now
	}
	return out
}

// restoreTask puts a task and its children back from a tombstone; it counts
// against the task limit again.
func (s *Service) restoreTask(ctx context.Context, tx *gorm.DB, p auth.Principal, from recovery.Restore) (*Task, error) {
	var snap taskSnapshot
	if err := json.Unmarshal(from.Snapshot, &snap); err != nil {
		return nil, fmt.Errorf("read tombstone %s: %w", from.TombstoneID, err)
	}
	now := s.clock.Now()
	snap = restored(snap, p, now)
	if err := s.admitRestored(ctx, tx, p, &snap.Task); err != nil {
		return nil, err
	}
	if err := insertSnapshot(tx, &snap); err != nil {
		return nil, err
	}
	if err := s.refreshCounts(tx, snap.Task.ID); err != nil {
		return nil, err
	}
	for _, rm := range stillDue(snap.Reminders, now) {
		if err := s.bus.Publish(ctx, tx, scheduled(&rm)); err != nil {
			return nil, err
		}
	}
	t := snap.Task
	if err := s.bus.Publish(ctx, tx, TaskRecovering{UserID: p.UserID, Tier: p.Tier, TaskID: t.ID, Attached: snap.Attached}); err != nil {
		return nil, err
	}
	if err := tx.Where("id = ?", t.ID).Take(&t).Error; err != nil {
		return nil, err
	}
	if err := s.bus.Publish(ctx, tx, TaskRecovered{UserID: t.UserID, TaskID: t.ID, TombstoneID: from.TombstoneID}); err != nil {
		return nil, err
	}
	return &t, nil
}

// admitRestored checks that a restored task may come back: room for it
// under the active-task limit, and its template occurrence still free (made
// again meanwhile: the task comes back without the link).
func (s *Service) admitRestored(ctx context.Context, tx *gorm.DB, p auth.Principal, t *Task) error {
	if t.Active() {
		if err := s.checkTaskLimit(ctx, tx, p); err != nil {
			return err
		}
	}
	if t.TemplateID == nil || t.DueDate == nil {
		return nil
	}
	taken, err := s.occurrenceTaken(tx, *t.TemplateID, *t.DueDate)
	if taken {
		t.TemplateID = nil
	}
	return err
}

// insertSnapshot writes a restored task and its subtasks and reminders.
func insertSnapshot(tx *gorm.DB, snap *taskSnapshot) error {
	if err := tx.Create(&snap.Task).Error; err != nil {
		if database.IsUniqueViolation(err) {
			return apperr.New(apperr.KindConflict, apperr.CodeConflict, "the task exists already")
		}
		return fmt.Errorf("restore task: %w", err)
	}
	if len(snap.Subtasks) > 0 {
		if err := tx.Create(&snap.Subtasks).Error; err != nil {
			return fmt.Errorf("restore subtasks: %w", err)
		}
	}
	if len(snap.Reminders) > 0 {
		if err := tx.Create(&snap.Reminders).Error; err != nil {
			return fmt.Errorf("restore reminders: %w", err)
		}
	}
	return nil
}

// stillDue are the reminders of a restored task to schedule again: those
// whose time passed while the task was deleted stay silent.
func stillDue(reminders []Reminder, now time.Time) []Reminder {
	var out []Reminder
	for _, rm := range reminders {
		if !rm.Fired && rm.ScheduledAt.After(now) {
			out = append(out, rm)
		}
	}
	return out
}
