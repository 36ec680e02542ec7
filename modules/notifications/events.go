package notifications

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/events"
)

// scheduleReminders enqueues the delivery of a reminder at its time, in the
// transaction that scheduled it: the job exists exactly when the reminder
// does. A moved reminder gets a new delivery; the old one finds it moved and
// does nothing.
func scheduleReminders(q jobs.Enqueuer) events.Subscription {
	return events.On("schedule reminder", func(ctx context.Context, tx *gorm.DB, e tasks.ReminderScheduled) error {
		args := ReminderFireArgs{ReminderID: e.Reminder.ID, ScheduledAt: e.Reminder.ScheduledAt.UTC()}
		_, err := q.InsertTx(ctx, tx, args, &river.InsertOpts{
			ScheduledAt: e.Reminder.ScheduledAt,
			UniqueOpts:  river.UniqueOpts{ByArgs: true},
		})
		return err
	})
}

// notifySkippedOccurrences tells the user when a recurring task could not
// be made.
func notifySkippedOccurrences(s *Service) events.Subscription {
	return events.On("notify skipped occurrence", func(ctx context.Context, tx *gorm.DB, e tasks.RecurringTaskSkipped) error {
		_, err := s.Create(ctx, tx, New{UserID: e.Template.UserID, Type: TypeSystem,
			Title: fmt.Sprintf("%q was not created", e.Template.Title),
			Message: fmt.Sprintf("The occurrence due %s was skipped: %s. Complete or archive tasks to make room.",
				e.DueDate.UTC().Format(time.RFC3339), e.Reason)})
		return err
	})
}
