package notifications

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/gamification"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/events"
)

// deliveries keeps one pending reminder_fire job per reminder: scheduling a
// reminder again cancels its previous job, removing it cancels its job. All
// of it happens in the transaction that changed the reminder.
type deliveries struct {
	q     jobs.Enqueuer
	clock clock.Clock
}

func newDeliveries(q jobs.Enqueuer, clk clock.Clock) *deliveries {
	return &deliveries{q: q, clock: clk}
}

func (d *deliveries) schedule(ctx context.Context, tx *gorm.DB, r tasks.ReminderScheduled) error {
	if err := d.cancel(ctx, tx, r.ReminderID); err != nil {
		return err
	}
	args := ReminderFireArgs{ReminderID: r.ReminderID, ScheduledAt: r.ScheduledAt.UTC()}
	opts := &river.InsertOpts{}
	if r.ScheduledAt.After(d.clock.Now()) {
		// A time already past is due now: the job is available at once
		// rather than waiting for the scheduler to promote it.
		opts.ScheduledAt = r.ScheduledAt
	}
	res, err := d.q.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return err
	}
	row := ReminderDelivery{ReminderID: r.ReminderID, TaskID: r.TaskID, JobID: res.Job.ID, ScheduledAt: r.ScheduledAt, CreatedAt: d.clock.Now()}
	return tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
}

// cancel cancels the pending delivery of a reminder, if any.
func (d *deliveries) cancel(ctx context.Context, tx *gorm.DB, reminderID uuid.UUID) error {
	var row ReminderDelivery
	err := tx.Where("reminder_id = ?", reminderID).Limit(1).Find(&row).Error
	if err != nil || row.JobID == 0 {
		return err
	}
	if err := d.q.CancelTx(ctx, tx, row.JobID); err != nil {
		return err
	}
	return tx.Where("reminder_id = ?", reminderID).Delete(&ReminderDelivery{}).Error
}

// cancelWhere cancels the pending deliveries matching where.
func (d *deliveries) cancelWhere(ctx context.Context, tx *gorm.DB, where string, args ...any) error {
	var rows []ReminderDelivery
	if err := tx.Where(where, args...).Find(&rows).Error; err != nil {
		return err
	}
	for _, r := range rows {
		if err := d.cancel(ctx, tx, r.ReminderID); err != nil {
			return err
		}
	}
	return nil
}

// scheduleReminders enqueues the delivery of a reminder at its time, in the
// transaction that scheduled it: the job exists exactly when the reminder
// does.
func scheduleReminders(d *deliveries) events.Subscription {
	return events.On("schedule reminder", func(ctx context.Context, tx *gorm.DB, e tasks.ReminderScheduled) error {
		return d.schedule(ctx, tx, e)
	})
}

// cancelRemovedReminders cancels the delivery of a reminder that was deleted
// or that the client marked delivered.
func cancelRemovedReminders(d *deliveries) events.Subscription {
	return events.On("cancel reminder", func(ctx context.Context, tx *gorm.DB, e tasks.ReminderChanged) error {
		if e.Action != "deleted" && e.Action != "fired" {
			return nil
		}
		return d.cancel(ctx, tx, e.ReminderID)
	})
}

// cancelDeletedTaskReminders cancels the deliveries of a deleted task's
// reminders: they never fire (recovery schedules them again).
func cancelDeletedTaskReminders(d *deliveries) events.Subscription {
	return events.On("cancel task reminders", func(ctx context.Context, tx *gorm.DB, e tasks.TaskDeleting) error {
		return d.cancelWhere(ctx, tx, "task_id = ?", e.TaskID)
	})
}

// notifySkippedOccurrences tells the user when a recurring task could not
// be made.
func notifySkippedOccurrences(s *Service) events.Subscription {
	return events.On("notify skipped occurrence", func(ctx context.Context, tx *gorm.DB, e tasks.RecurringTaskSkipped) error {
		_, err := s.Create(ctx, tx, New{UserID: e.UserID, Type: TypeSystem,
			Title: fmt.Sprintf("%q was not created", e.Title),
			Message: fmt.Sprintf("The occurrence due %s was skipped: %s. Complete or archive tasks to make room.",
				e.DueDate.UTC().Format(time.RFC3339), e.Reason)})
		return err
	})
}

// notifyAchievements tells the user of an achievement they unlocked.
func notifyAchievements(s *Service) events.Subscription {
	return events.On("notify achievement", func(ctx context.Context, tx *gorm.DB, e gamification.AchievementUnlocked) error {
		_, err := s.Create(ctx, tx, New{UserID: e.UserID, Type: TypeAchievement,
			Title: "Achievement unlocked: " + e.Name, Message: e.Message, Push: true})
		return err
	})
}

// notifyTranscriptions tells the user when a voice note got its text, or
// could not.
func notifyTranscriptions(s *Service) events.Subscription {
	return events.On("notify transcription", func(ctx context.Context, tx *gorm.DB, e notes.NoteChanged) error {
		var title, msg string
		switch e.Action {
		case notes.ActionTranscribed:
			title, msg = "Voice note transcribed", "Your voice note now has its text."
		case notes.ActionTranscriptionFailed:
			title, msg = "Voice note not transcribed", "We could not transcribe your voice note; nothing was charged."
		default:
			return nil
		}
		_, err := s.Create(ctx, tx, New{UserID: e.UserID, Type: TypeSystem, Title: title, Message: msg, TaskID: e.TaskID})
		return err
	})
}

// notifySubscriptions tells the user when their subscription starts, enters
// its grace period, is cancelled or ends.
func notifySubscriptions(s *Service) events.Subscription {
	return events.On("notify subscription", func(ctx context.Context, tx *gorm.DB, e billing.SubscriptionChanged) error {
		var title, msg string
		until := ""
		if e.Until != nil {
			until = e.Until.UTC().Format("2 Jan 2006")
		}
		switch e.Action {
		case billing.ActionActivated:
			title, msg = "Welcome to Pro", "Your Pro subscription is active until "+until+"."
		case billing.ActionGrace:
			title, msg = "Payment failed", "We could not take your payment. Pro stays on until "+until+"; update your payment details to keep it."
		case billing.ActionCancelled:
			title, msg = "Subscription cancelled", "Pro stays on until "+until+"."
		case billing.ActionEnded:
			title, msg = "Pro has ended", "You are on the free plan now."
		default:
			return nil
		}
		_, err := s.Create(ctx, tx, New{UserID: e.UserID, Type: TypeSubscription, Title: title, Message: msg, Push: true})
		return err
	})
}
