package billing

import (
	"context"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// What an erased account leaves for the accounts: the credits granted and
// spent by kind, and the payments taken by purpose and currency. No row,
// no description, nothing the user wrote.

// LedgerTotal is one kind and entry type's total in the erased ledger.
type LedgerTotal struct {
	Kind    string `json:"kind"`
	Entry   string `json:"entry"`
	Entries int64  `json:"entries"`
	Credits int64  `json:"credits"`
}

// PaymentTotal is what the erased user paid for one purpose in one
// currency (sessions paid).
type PaymentTotal struct {
	Purpose  string `json:"purpose"`
	Currency string `json:"currency"`
	Payments int64  `json:"payments"`
	Amount   int64  `json:"amount"`
	Credits  int64  `json:"credits"`
}

func userParts() []userdata.Part {
	return []userdata.Part{
		userdata.Table("credit_ledger", "credit_ledger", "user_id").Keeping(ledgerTotals),
		userdata.Table("subscription", "subscriptions", "user_id"),
		userdata.Table("payment_sessions", "payment_sessions", "user_id").Keeping(paymentTotals),
	}
}

func ledgerTotals(ctx context.Context, db *database.DB, userID uuid.UUID) (any, error) {
	out := []LedgerTotal{}
	err := db.WithContext(ctx).Table("credit_ledger").
		Select("kind, entry, COUNT(*) AS entries, COALESCE(SUM(amount), 0) AS credits").
		Where("user_id = ?", userID).Group("kind, entry").Order("kind, entry").Scan(&out).Error
	return out, err
}

func paymentTotals(ctx context.Context, db *database.DB, userID uuid.UUID) (any, error) {
	out := []PaymentTotal{}
	err := db.WithContext(ctx).Table("payment_sessions").
		Select("purpose, currency, COUNT(*) AS payments, COALESCE(SUM(amount), 0) AS amount, COALESCE(SUM(credits), 0) AS credits").
		Where("user_id = ? AND state = ?", userID, SessionPaid).Group("purpose, currency").Order("purpose, currency").
		Scan(&out).Error
	return out, err
}

// endClosedSubscriptions ends a closed account's subscription at once and,
// when the provider renews it with a stored card, has the card deleted at
// the provider by a job (retried until it answers; the account's erasure
// does not wait for it).
func endClosedSubscriptions(s *Service, q jobs.Enqueuer) events.Subscription {
	return events.On("end closed account's subscription", func(ctx context.Context, tx *gorm.DB, e auth.AccountClosed) error {
		sub, err := lockSubscription(tx, e.UserID)
		if err != nil || sub == nil {
			return err
		}
		if sub.EndNow(e.At) {
			if err := s.saveSubscription(tx, sub); err != nil {
				return err
			}
		}
		if sub.ProviderSource == nil {
			return nil
		}
		_, err = q.InsertTx(ctx, tx, ProviderCancelArgs{UserID: e.UserID, Source: *sub.ProviderSource}, nil)
		return err
	})
}

// ProviderCancelArgs deletes the stored card a closed account's
// subscription was renewed with, at the payment provider.
type ProviderCancelArgs struct {
	UserID uuid.UUID `json:"user_id"`
	Source string    `json:"source"`
}

// Kind implements river.JobArgs.
func (ProviderCancelArgs) Kind() string { return "subscription_provider_cancel" }

type providerCancelWorker struct {
	river.WorkerDefaults[ProviderCancelArgs]
	checkout *checkout
	log      *zap.Logger
}

func newProviderCancelWorker(c *checkout, log *zap.Logger) jobs.Worker {
	return jobs.NewWorker[ProviderCancelArgs](&providerCancelWorker{checkout: c, log: log.Named("billing")})
}

func (w *providerCancelWorker) Work(ctx context.Context, job *river.Job[ProviderCancelArgs]) error {
	if err := w.checkout.deleteInstrument(ctx, job.Args.Source); err != nil {
		w.log.Warn("a closed account's card could not be deleted at the provider; retrying",
			zap.String("user_id", job.Args.UserID.String()), zap.Int("attempt", job.Attempt), zap.Error(err))
		return err
	}
	w.log.Info("a closed account's card was deleted at the provider", zap.String("user_id", job.Args.UserID.String()))
	return nil
}
