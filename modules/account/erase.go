package account

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
)

// Deletion is an account just closed, its erasure to come.
type Deletion struct {
	UserID          uuid.UUID
	SessionsRevoked int
}

// DeleteAccount closes the caller's account once confirm is its email:
// every session is revoked at once, the profile cleared, and the modules
// drop what must stop now (push subscriptions, reminders to come, a
// subscription's renewals); the account_erase job then erases every row.
// The record of the deletion is kept (deleted_accounts).
func (s *Service) DeleteAccount(ctx context.Context, p auth.Principal, confirm string) (*Deletion, error) {
	return s.close(ctx, p.UserID, &confirm, true)
}

// close closes the account and records its deletion; with queue, the
// account_erase job is queued in the same transaction (an operator's
// erase runs at once instead).
func (s *Service) close(ctx context.Context, userID uuid.UUID, confirm *string, queue bool) (*Deletion, error) {
	var d *Deletion
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		c, err := s.closing.Close(ctx, tx, userID, confirm)
		if err != nil {
			return err
		}
		rec := DeletedAccount{UserID: userID, EmailHash: c.EmailHash, Tier: c.Tier, DeletedAt: c.At, Kept: "{}", Erased: "{}"}
		if err := tx.Create(&rec).Error; err != nil {
			return err
		}
		if queue {
			if err := s.bus.Publish(ctx, tx, ErasureQueued{UserID: userID}); err != nil {
				return err
			}
		}
		d = &Deletion{UserID: userID, SessionsRevoked: c.Sessions}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("account closed; erasure scheduled", zap.String("user_id", userID.String()),
		zap.Int("sessions_revoked", d.SessionsRevoked))
	return d, nil
}

// EraseNow implements Accounts.
func (s *Service) EraseNow(ctx context.Context, userID uuid.UUID) (*Erasure, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&DeletedAccount{}).Where("user_id = ?", userID).Count(&n).Error; err != nil {
		return nil, err
	}
	if n == 0 {
		if _, err := s.close(ctx, userID, nil, false); err != nil {
			return nil, err
		}
	}
	return s.Erase(ctx, userID)
}

// Erase deletes every row of a closed account, eraser by eraser, phase by
// phase, each in short batches; before an eraser that keeps something (the
// ledger's totals), what it keeps is stored with the record of the
// deletion, once. Run again (a retried job), it stores nothing twice and
// deletes what is left. An account that was not closed is refused.
func (s *Service) Erase(ctx context.Context, userID uuid.UUID) (*Erasure, error) {
	var rec DeletedAccount
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Take(&rec).Error
	if database.IsNotFound(err) {
		return nil, apperr.New(apperr.KindConflict, apperr.CodeConflict, "account %s was not closed: nothing to erase", userID)
	}
	if err != nil {
		return nil, err
	}
	kept := map[string]any{}
	erased := map[string]int64{}
	if err := json.Unmarshal([]byte(rec.Kept), &kept); err != nil {
		return nil, fmt.Errorf("deleted account %s: kept: %w", userID, err)
	}
	_ = json.Unmarshal([]byte(rec.Erased), &erased) // counts only
	for _, e := range s.erasers {
		if e.Erase == nil {
			continue
		}
		if _, done := kept[e.Name]; e.Keep != nil && !done {
			v, err := e.Keep(ctx, s.db, userID)
			if err != nil {
				return nil, fmt.Errorf("keep %s: %w", e.Name, err)
			}
			if kept, err = s.keep(ctx, userID, kept, e.Name, v); err != nil {
				return nil, err
			}
		}
		n, err := e.Erase(ctx, s.db, userID)
		erased[e.Name] += n
		if err != nil {
			_ = s.saveRecord(ctx, userID, map[string]any{"erased": mustJSON(erased)})
			return nil, fmt.Errorf("erase %s: %w", e.Name, err)
		}
	}
	now := s.clock.Now()
	if err := s.saveRecord(ctx, userID, map[string]any{"erased": mustJSON(erased), "erased_at": now}); err != nil {
		return nil, err
	}
	var rows int64
	for _, n := range erased {
		rows += n
	}
	s.log.Info("account erased", zap.String("user_id", userID.String()), zap.Int64("rows", rows))
	return &Erasure{UserID: userID, ErasedAt: now, Erased: erased, Kept: kept}, nil
}

// keep stores what an eraser keeps, unless another erasure of the account
// (the job beside an operator's command) stored it first: compare and set,
// so the totals stored are always those read before any row was erased
// (an eraser deletes only after its totals are stored).
func (s *Service) keep(ctx context.Context, userID uuid.UUID, kept map[string]any, name string, v any) (map[string]any, error) {
	old := mustJSON(kept)
	next := maps.Clone(kept)
	next[name] = v
	res := s.db.WithContext(ctx).Model(&DeletedAccount{}).Where("user_id = ? AND kept = ?", userID, old).
		Update("kept", mustJSON(next))
	if res.Error != nil || res.RowsAffected == 1 {
		return next, res.Error
	}
	var rec DeletedAccount
	if err := s.db.WithContext(ctx).Where("user_id = ?", userID).Take(&rec).Error; err != nil {
		return nil, err
	}
	theirs := map[string]any{}
	if err := json.Unmarshal([]byte(rec.Kept), &theirs); err != nil {
		return nil, err
	}
	if _, ok := theirs[name]; ok {
		return theirs, nil
	}
	return s.keep(ctx, userID, theirs, name, v)
}

func (s *Service) saveRecord(ctx context.Context, userID uuid.UUID, changes map[string]any) error {
	return s.db.WithContext(ctx).Model(&DeletedAccount{}).Where("user_id = ?", userID).Updates(changes).Error
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of numbers and of the erasers' plain values
	}
	return string(b)
}
