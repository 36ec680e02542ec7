package notifications

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/account"
	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/events"
)

// stopClosedAccounts stops, in the transaction that closes an account,
// everything that would still reach its person: push subscriptions are
// removed and the deliveries of reminders to come cancelled. The rows left
// are erased afterwards with the rest.
func stopClosedAccounts(d *deliveries, reminders tasks.ReminderDelivery) events.Subscription {
	return events.On("stop closed account's deliveries", func(ctx context.Context, tx *gorm.DB, e auth.AccountClosed) error {
		if err := tx.Where("user_id = ?", e.UserID).Delete(&PushSubscription{}).Error; err != nil {
			return err
		}
		pending, err := reminders.PendingReminders(ctx, tx, e.UserID)
		if err != nil || len(pending) == 0 {
			return err
		}
		return d.cancelWhere(ctx, tx, "reminder_id IN ?", pending)
	})
}

// notifyExports tells the user when their export is ready, or failed.
func notifyExports(s *Service) events.Subscription {
	return events.On("notify export", func(ctx context.Context, tx *gorm.DB, e account.ExportReady) error {
		_, err := s.Create(ctx, tx, New{UserID: e.UserID, Type: TypeSystem, Title: "Your data export is ready",
			Message: "Download it from your account settings before " + e.ExpiresAt.UTC().Format(time.DateOnly) +
				"; the archive is deleted then.", Push: true})
		return err
	})
}

func notifyFailedExports(s *Service) events.Subscription {
	return events.On("notify failed export", func(ctx context.Context, tx *gorm.DB, e account.ExportFailed) error {
		_, err := s.Create(ctx, tx, New{UserID: e.UserID, Type: TypeSystem, Title: "Your data export failed",
			Message: "We could not write the archive of your data. Please ask for a new export."})
		return err
	})
}
