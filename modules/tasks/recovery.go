package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
)

var errTombstoneNotFound = apperr.NotFound(apperr.CodeNotFound, "recoverable item")

// Deleted says where a deleted item went: its tombstone and until when it
// can be recovered.
type Deleted struct {
	TombstoneID      uuid.UUID
	RecoverableUntil time.Time
}

// tombstones keeps deleted items (tasks here, notes for the notes module)
// recoverable. It depends on nothing but the database, so other modules can
// use it without a cycle through the task service.
type tombstones struct {
	clock clock.Clock
	cfg   Config
}

func newTombstones(clk clock.Clock, cfg Config) *tombstones { return &tombstones{clock: clk, cfg: cfg} }

// Bury writes a tombstone holding snapshot, in tx. A user keeps at most the
// configured number of tombstones: making one more purges the oldest.
func (b *tombstones) Bury(ctx context.Context, tx *gorm.DB, userID uuid.UUID, entityType string, entityID uuid.UUID,
	title string, snapshot any,
) (*Deleted, error) {
	data, err := json.Marshal(snapshot)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if err := database.LockKey(tx, "tombstones:"+userID.String()); err != nil {
		return nil, err
	}
	now := b.clock.Now()
	ts := Tombstone{ID: id.New(), UserID: userID, EntityType: entityType, EntityID: entityID, Title: title,
		Snapshot: string(data), DeletedAt: now, RecoverableUntil: now.Add(b.cfg.TombstoneTTL)}
	if err := tx.Create(&ts).Error; err != nil {
		return nil, fmt.Errorf("create tombstone: %w", err)
	}
	var surplus []uuid.UUID
	err = tx.Model(&Tombstone{}).Where("user_id = ?", userID).
		Order("deleted_at DESC, id DESC").Offset(b.cfg.MaxTombstones).Pluck("id", &surplus).Error
	if err != nil {
		return nil, err
	}
	if len(surplus) > 0 {
		if err := tx.Where("id IN ?", surplus).Delete(&Tombstone{}).Error; err != nil {
			return nil, err
		}
	}
	return &Deleted{TombstoneID: ts.ID, RecoverableUntil: ts.RecoverableUntil}, nil
}

// Purge deletes the tombstones past their recovery window.
func (b *tombstones) Purge(ctx context.Context, db *gorm.DB) (int64, error) {
	res := db.WithContext(ctx).Where("recoverable_until <= ?", b.clock.Now()).Delete(&Tombstone{})
	return res.RowsAffected, res.Error
}

// recovery lists tombstones and brings items back, tasks itself and other
// entity types through their module's Recoverer.
type recovery struct {
	db         *database.DB
	svc        *Service
	clock      clock.Clock
	recoverers map[string]Recoverer
}

func newRecovery(db *database.DB, svc *Service, clk clock.Clock, in recoverersIn) *recovery {
	r := &recovery{db: db, svc: svc, clock: clk, recoverers: map[string]Recoverer{}}
	for _, rec := range in.Recoverers {
		r.recoverers[rec.EntityType] = rec
	}
	return r
}

// List returns the user's recoverable items, newest first.
func (r *recovery) List(ctx context.Context, p auth.Principal) ([]Tombstone, error) {
	var out []Tombstone
	err := r.db.WithContext(ctx).Where("user_id = ? AND recoverable_until > ?", p.UserID, r.clock.Now()).
		Order("deleted_at DESC, id DESC").Find(&out).Error
	return out, err
}

// Recover brings an item back from its tombstone, with its original id and
// created_at, version 1, and its children; it counts against limits again.
// It returns the restored object (a Task or what the entity's Recoverer
// returns).
func (r *recovery) Recover(ctx context.Context, p auth.Principal, tombstoneID uuid.UUID) (any, error) {
	var out any
	err := r.db.Tx(ctx, func(tx *gorm.DB) error {
		// The row lock makes concurrent recoveries of one item take turns: the
		// first brings it back, the others find the tombstone gone.
		var ts Tombstone
		err := database.ForUpdate(tx).Where("id = ? AND user_id = ? AND recoverable_until > ?", tombstoneID, p.UserID,
			r.clock.Now()).Take(&ts).Error
		if database.IsNotFound(err) {
			return errTombstoneNotFound
		}
		if err != nil {
			return err
		}
		if ts.EntityType == EntityTask {
			out, err = r.svc.restoreTask(ctx, tx, p, &ts)
		} else if rec, ok := r.recoverers[ts.EntityType]; ok {
			out, err = rec.Recover(ctx, tx, p, []byte(ts.Snapshot))
		} else {
			return fmt.Errorf("no recoverer for %q", ts.EntityType)
		}
		if err != nil {
			return err
		}
		return database.One(tx.Where("id = ?", ts.ID).Delete(&Tombstone{}), errTombstoneNotFound)
	})
	return out, err
}

// restoreTask puts a task and its children back from a tombstone.
func (s *Service) restoreTask(ctx context.Context, tx *gorm.DB, p auth.Principal, ts *Tombstone) (*Task, error) {
	var snap taskSnapshot
	if err := json.Unmarshal([]byte(ts.Snapshot), &snap); err != nil {
		return nil, fmt.Errorf("read tombstone %s: %w", ts.ID, err)
	}
	now := s.clock.Now()
	t := snap.Task
	t.UserID, t.Version, t.UpdatedAt = p.UserID, 1, now
	if t.Active() {
		if err := s.checkTaskLimit(ctx, tx, p); err != nil {
			return nil, err
		}
	}
	if t.TemplateID != nil && t.DueDate != nil {
		// Its occurrence was made again meanwhile: keep the task, drop the link.
		if taken, err := s.occurrenceTaken(tx, *t.TemplateID, *t.DueDate); err != nil {
			return nil, err
		} else if taken {
			t.TemplateID = nil
		}
	}
	if err := tx.Create(&t).Error; err != nil {
		if database.IsUniqueViolation(err) {
			return nil, apperr.New(apperr.KindConflict, apperr.CodeConflict, "the task exists already")
		}
		return nil, fmt.Errorf("restore task: %w", err)
	}
	for i := range snap.Subtasks {
		st := snap.Subtasks[i]
		st.UserID, st.UpdatedAt = p.UserID, now
		if err := tx.Create(&st).Error; err != nil {
			return nil, fmt.Errorf("restore subtask: %w", err)
		}
	}
	if err := s.refreshCounts(tx, t.ID); err != nil {
		return nil, err
	}
	for i := range snap.Reminders {
		rm := snap.Reminders[i]
		rm.UserID, rm.UpdatedAt = p.UserID, now
		if err := tx.Create(&rm).Error; err != nil {
			return nil, fmt.Errorf("restore reminder: %w", err)
		}
		// Reminders whose time passed while the task was deleted stay silent.
		if !rm.Fired && rm.ScheduledAt.After(now) {
			if err := s.bus.Publish(ctx, tx, ReminderScheduled{Reminder: rm}); err != nil {
				return nil, err
			}
		}
	}
	if err := s.bus.Publish(ctx, tx, TaskRecovering{UserID: p.UserID, Tier: p.Tier, TaskID: t.ID, Attached: snap.Attached}); err != nil {
		return nil, err
	}
	if err := tx.Where("id = ?", t.ID).Take(&t).Error; err != nil {
		return nil, err
	}
	if err := s.bus.Publish(ctx, tx, TaskRecovered{Task: t, TombstoneID: ts.ID}); err != nil {
		return nil, err
	}
	return &t, nil
}
