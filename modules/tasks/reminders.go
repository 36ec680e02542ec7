package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
)

var errReminderNotFound = apperr.NotFound(apperr.CodeNotFound, "reminder")

// maxReminderOffset bounds offset_minutes (30 days either way).
const maxReminderOffset = 30 * 24 * 60

// ReminderInput is the input of AddReminder and UpdateReminder; nil fields
// are absent (for an update: unchanged).
type ReminderInput struct {
	Type          *string
	OffsetMinutes *int
	ScheduledAt   *time.Time
	Method        *string
}

// ReminderFilter selects reminders; nil fields do not filter.
type ReminderFilter struct {
	TaskID *uuid.UUID
	Fired  *bool
	From   *time.Time
	To     *time.Time
	Window database.Window
}

// Reminders lists the user's reminders by scheduled time.
func (s *Service) Reminders(ctx context.Context, p auth.Principal, f ReminderFilter) (database.Paged[Reminder], error) {
	db := s.db.WithContext(ctx)
	q := db.Model(&Reminder{}).Where("user_id = ?", p.UserID)
	if f.TaskID != nil {
		if _, err := s.load(db, p.UserID, *f.TaskID); err != nil {
			return database.Paged[Reminder]{}, err
		}
		q = q.Where("task_id = ?", *f.TaskID)
	}
	if f.Fired != nil {
		q = q.Where("fired = ?", *f.Fired)
	}
	if f.From != nil {
		q = q.Where("scheduled_at >= ?", f.From.UTC())
	}
	if f.To != nil {
		q = q.Where("scheduled_at <= ?", f.To.UTC())
	}
	return database.Page(q, reminderOrder, f.Window, nil)
}

// reminderOrder is the reminders' order, the soonest first.
var reminderOrder = database.Keyset[Reminder]{List: "reminders", Column: "scheduled_at", Asc: true,
	Key: func(r *Reminder) (time.Time, uuid.UUID) { return r.ScheduledAt, r.ID }}

// Reminder returns one reminder of the user.
func (s *Service) Reminder(ctx context.Context, p auth.Principal, reminderID uuid.UUID) (*Reminder, error) {
	return s.loadReminder(s.db.WithContext(ctx), p.UserID, reminderID)
}

// lockReminder finds a reminder of the user and locks its task (parent
// before child, as every change to a task's reminders does), then reads the
// reminder again under that lock.
func (s *Service) lockReminder(tx *gorm.DB, userID, reminderID uuid.UUID) (*Reminder, *Task, error) {
	r, err := s.loadReminder(tx, userID, reminderID)
	if err != nil {
		return nil, nil, err
	}
	t, err := s.lockTask(tx, userID, r.TaskID)
	if apperr.Is(err, CodeTaskNotFound) {
		return nil, nil, errReminderNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if r, err = s.loadReminder(tx, userID, reminderID); err != nil {
		return nil, nil, err
	}
	return r, t, nil
}

func (s *Service) loadReminder(tx *gorm.DB, userID, reminderID uuid.UUID) (*Reminder, error) {
	return database.Owned[Reminder](tx, userID, reminderID, errReminderNotFound)
}

// AddReminder adds a reminder to a task, at most the tier's number per task.
// Relative reminders need the task's due date; their scheduled time is
// computed from it, whatever the client sent.
func (s *Service) AddReminder(ctx context.Context, p auth.Principal, taskID uuid.UUID, in ReminderInput) (*Reminder, error) {
	if in.Type == nil {
		return nil, apperr.Validation("type", "is required")
	}
	var out *Reminder
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := s.lockTask(tx, p.UserID, taskID)
		if err != nil {
			return err
		}
		if t.Archived {
			return errArchived
		}
		var n int64
		if err := tx.Model(&Reminder{}).Where("task_id = ?", taskID).Count(&n).Error; err != nil {
			return err
		}
		limit := s.cfg.limits(p.Tier).MaxReminders
		if n >= int64(limit) {
			return apperr.LimitExceeded("max_reminders", limit)
		}
		now := s.clock.Now()
		r := Reminder{ID: id.New(), TaskID: taskID, UserID: p.UserID, Type: *in.Type, Method: MethodInApp,
			CreatedAt: now, UpdatedAt: now}
		if in.Method != nil {
			r.Method = *in.Method
		}
		r.OffsetMinutes = in.OffsetMinutes
		if err := schedule(&r, t, in.ScheduledAt); err != nil {
			return err
		}
		if err := tx.Create(&r).Error; err != nil {
			return fmt.Errorf("create reminder: %w", err)
		}
		if err := s.bus.Publish(ctx, tx, reminderChanged(&r, "created")); err != nil {
			return err
		}
		out = &r
		return s.bus.Publish(ctx, tx, scheduled(&r))
	})
	return out, err
}

// schedule computes r.ScheduledAt from its type: before/after the task's due
// date by |offset| minutes (the client sends "before" as a negative offset;
// the type says the direction), or absolute at the given time (or the due
// date, moved by the offset, when none is given).
func schedule(r *Reminder, t *Task, at *time.Time) error {
	if r.OffsetMinutes != nil && (*r.OffsetMinutes < -maxReminderOffset || *r.OffsetMinutes > maxReminderOffset) {
		return apperr.Validation("offset_minutes", "must be within %d minutes", maxReminderOffset)
	}
	switch r.Type {
	case ReminderBefore, ReminderAfter:
		if t.DueDate == nil {
			return apperr.Validation("type", "a %s reminder needs the task's due date", r.Type)
		}
		if r.OffsetMinutes == nil {
			return apperr.Validation("offset_minutes", "is required for a %s reminder", r.Type)
		}
		off := time.Duration(abs(*r.OffsetMinutes)) * time.Minute
		if r.Type == ReminderBefore {
			off = -off
		}
		r.ScheduledAt = t.DueDate.Add(off).UTC()
	case ReminderAbsolute:
		switch {
		case at != nil:
			r.ScheduledAt = at.UTC().Truncate(time.Microsecond)
		case t.DueDate != nil:
			off := 0
			if r.OffsetMinutes != nil {
				off = *r.OffsetMinutes
			}
			r.ScheduledAt = t.DueDate.Add(time.Duration(off) * time.Minute).UTC()
		default:
			return apperr.Validation("scheduled_at", "is required for an absolute reminder on a task without a due date")
		}
	default:
		return apperr.Validation("type", "must be before, after or absolute")
	}
	if r.Method != MethodInApp && r.Method != MethodPush {
		return apperr.Validation("method", "must be push or in_app")
	}
	return nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// UpdateReminder changes a reminder. A reminder moved to a new time is
// scheduled again (and may fire again if it had fired).
func (s *Service) UpdateReminder(ctx context.Context, p auth.Principal, reminderID uuid.UUID, in ReminderInput) (*Reminder, error) {
	var out *Reminder
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, t, err := s.lockReminder(tx, p.UserID, reminderID)
		if err != nil {
			return err
		}
		if t.Archived {
			return errArchived
		}
		before := *r
		if in.Type != nil {
			r.Type = *in.Type
		}
		if in.OffsetMinutes != nil {
			r.OffsetMinutes = in.OffsetMinutes
		}
		if in.Method != nil {
			r.Method = *in.Method
		}
		at := in.ScheduledAt
		if at == nil && r.Type == ReminderAbsolute && in.Type == nil && in.OffsetMinutes == nil {
			at = &r.ScheduledAt // an absolute reminder keeps its time unless told otherwise
		}
		if err := schedule(r, t, at); err != nil {
			return err
		}
		now := s.clock.Now()
		moved := !r.ScheduledAt.Equal(before.ScheduledAt)
		if moved && r.Fired && r.ScheduledAt.After(now) {
			r.Fired, r.FiredAt = false, nil
		}
		r.UpdatedAt = now
		if err := tx.Model(&Reminder{}).Where("id = ?", r.ID).
			Select("type", "offset_minutes", "method", "scheduled_at", "fired", "fired_at", "updated_at").
			Updates(r).Error; err != nil {
			return fmt.Errorf("update reminder: %w", err)
		}
		if err := s.bus.Publish(ctx, tx, reminderChanged(r, "updated")); err != nil {
			return err
		}
		out = r
		if moved && !r.Fired {
			return s.bus.Publish(ctx, tx, scheduled(r))
		}
		return nil
	})
	return out, err
}

// DeleteReminder removes a reminder; its pending delivery finds nothing.
func (s *Service) DeleteReminder(ctx context.Context, p auth.Principal, reminderID uuid.UUID) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, _, err := s.lockReminder(tx, p.UserID, reminderID)
		if err != nil {
			return err
		}
		if err := database.One(tx.Where("id = ?", r.ID).Delete(&Reminder{}), errReminderNotFound); err != nil {
			return fmt.Errorf("delete reminder: %w", err)
		}
		return s.bus.Publish(ctx, tx, reminderChanged(r, "deleted"))
	})
}

// MarkReminderFired records that the client delivered a reminder itself
// (its service worker). Idempotent; the scheduled delivery then does
// nothing.
func (s *Service) MarkReminderFired(ctx context.Context, p auth.Principal, reminderID uuid.UUID) (*Reminder, error) {
	var out *Reminder
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, _, err := s.lockReminder(tx, p.UserID, reminderID)
		if err != nil {
			return err
		}
		out = r
		if r.Fired {
			return nil
		}
		now := s.clock.Now()
		r.Fired, r.FiredAt, r.UpdatedAt = true, &now, now
		if err := database.One(tx.Model(&Reminder{}).Where("id = ? AND fired = ?", r.ID, false).
			Updates(map[string]any{"fired": true, "fired_at": now, "updated_at": now}), errReminderNotFound); err != nil {
			return err
		}
		return s.bus.Publish(ctx, tx, reminderChanged(r, "fired"))
	})
	return out, err
}

// moveRelativeReminders follows a task's new due date with its relative
// reminders. Without a due date they keep their last time.
func (s *Service) moveRelativeReminders(ctx context.Context, tx *gorm.DB, t *Task, now time.Time) error {
	if t.DueDate == nil {
		return nil
	}
	var list []Reminder
	if err := tx.Where("task_id = ? AND type IN ?", t.ID, []string{ReminderBefore, ReminderAfter}).Find(&list).Error; err != nil {
		return err
	}
	for i := range list {
		r := &list[i]
		prev := r.ScheduledAt
		if err := schedule(r, t, nil); err != nil {
			return err
		}
		if r.ScheduledAt.Equal(prev) {
			continue
		}
		if r.Fired && r.ScheduledAt.After(now) {
			r.Fired, r.FiredAt = false, nil
		}
		r.UpdatedAt = now
		if err := tx.Model(&Reminder{}).Where("id = ?", r.ID).
			Select("scheduled_at", "fired", "fired_at", "updated_at").Updates(r).Error; err != nil {
			return fmt.Errorf("move reminder: %w", err)
		}
		if !r.Fired {
			if err := s.bus.Publish(ctx, tx, scheduled(r)); err != nil {
				return err
			}
		}
	}
	return nil
}

// FireReminder marks a reminder fired by its scheduled delivery, inside the
// delivery's transaction, exactly once: it returns nil when the reminder is
// gone, already fired, or was moved away from scheduledAt (a newer delivery
// is scheduled for it then).
func (s *Service) FireReminder(ctx context.Context, tx *gorm.DB, reminderID uuid.UUID, scheduledAt time.Time) (*FiredReminder, error) {
	var r Reminder
	err := tx.Where("id = ?", reminderID).Take(&r).Error
	if database.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load reminder: %w", err)
	}
	if r.Fired || !r.ScheduledAt.Equal(scheduledAt) {
		return nil, nil
	}
	var t Task
	if err := tx.Where("id = ? AND user_id = ?", r.TaskID, r.UserID).Take(&t).Error; err != nil {
		if database.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	now := s.clock.Now()
	// Compare-and-set: a reminder fired, moved or deleted since we read it
	// is not this delivery's to fire.
	res := tx.Model(&Reminder{}).Where("id = ? AND fired = ? AND scheduled_at = ?", r.ID, false, r.ScheduledAt).
		Updates(map[string]any{"fired": true, "fired_at": now, "updated_at": now})
	if res.Error != nil {
		return nil, fmt.Errorf("mark reminder fired: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	fired := &FiredReminder{ReminderID: r.ID, TaskID: r.TaskID, UserID: r.UserID, Method: r.Method,
		TaskTitle: t.Title, DueDate: t.DueDate}
	if err := s.bus.Publish(ctx, tx, ReminderFired{FiredReminder: *fired}); err != nil {
		return nil, err
	}
	return fired, nil
}

// PendingReminders implements ReminderDelivery.
func (s *Service) PendingReminders(_ context.Context, tx *gorm.DB, userID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := tx.Model(&Reminder{}).Where("user_id = ? AND NOT fired", userID).Pluck("id", &ids).Error
	return ids, err
}
