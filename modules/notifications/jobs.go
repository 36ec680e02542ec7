package notifications

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/database"
)

// ReminderFireArgs delivers one reminder at its scheduled time.
type ReminderFireArgs struct {
	ReminderID  uuid.UUID `json:"reminder_id"`
	ScheduledAt time.Time `json:"scheduled_at"`
}

// Kind implements river.JobArgs.
func (ReminderFireArgs) Kind() string { return "reminder_fire" }

type reminderFireWorker struct {
	river.WorkerDefaults[ReminderFireArgs]
	db        *database.DB
	svc       *Service
	reminders tasks.ReminderDelivery
	users     auth.Users
}

func newReminderFireWorker(db *database.DB, svc *Service, r tasks.ReminderDelivery, users auth.Users) jobs.Worker {
	return jobs.NewWorker[ReminderFireArgs](&reminderFireWorker{db: db, svc: svc, reminders: r, users: users})
}

// Work marks the reminder fired, creates its notification and completes the
// job in one transaction. A retry after a crash finds the reminder fired (or
// the notification there) and does nothing: a reminder fires once.
func (w *reminderFireWorker) Work(ctx context.Context, job *river.Job[ReminderFireArgs]) error {
	return w.db.Tx(ctx, func(tx *gorm.DB) error {
		fired, err := w.reminders.FireReminder(ctx, tx, job.Args.ReminderID, job.Args.ScheduledAt)
		if err != nil {
			return err
		}
		if fired != nil {
			msg := ""
			if fired.DueDate != nil {
				msg = "Due " + w.localTime(ctx, tx, fired.UserID, *fired.DueDate)
			}
			if _, err := w.svc.Create(ctx, tx, New{UserID: fired.UserID, Type: TypeReminder, Title: fired.TaskTitle,
				Message: msg, TaskID: &fired.TaskID, ReminderID: &fired.ReminderID, Push: fired.Method == tasks.MethodPush}); err != nil {
				return fmt.Errorf("create reminder notification: %w", err)
			}
			// This delivery is done; nothing is pending for the reminder.
			if err := tx.Where("reminder_id = ?", fired.ReminderID).Delete(&ReminderDelivery{}).Error; err != nil {
				return err
			}
		}
		return jobs.CompleteTx(ctx, tx, job)
	})
}

// localTime formats t in the user's time zone ("Mon 2 Jan 15:04 MST").
func (w *reminderFireWorker) localTime(ctx context.Context, tx *gorm.DB, userID uuid.UUID, t time.Time) string {
	loc := time.UTC
	if p, err := w.users.Principal(ctx, tx, userID); err == nil {
		if l, err := time.LoadLocation(p.Timezone); err == nil {
			loc = l
		}
	}
	return t.In(loc).Format("Mon 2 Jan 15:04 MST")
}
