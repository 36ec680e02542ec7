package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
)

var errNotFound = apperr.NotFound(apperr.CodeNotFound, "recoverable item")

// bin buries and purges. It needs nothing but the database, so that the
// modules whose Recoverers the Service gathers can bury without a cycle.
type bin struct {
	db    *database.DB
	clock clock.Clock
	cfg   Config
}

func newBin(db *database.DB, clk clock.Clock, cfg Config) *bin {
	return &bin{db: db, clock: clk, cfg: cfg}
}

// Service lists and recovers buried items through their Recoverers.
type Service struct {
	db         *database.DB
	clock      clock.Clock
	recoverers map[string]Recoverer
}

type serviceParams struct {
	fx.In

	DB         *database.DB
	Clock      clock.Clock
	Recoverers []Recoverer `group:"recoverers"`
}

func newService(p serviceParams) *Service {
	s := &Service{db: p.DB, clock: p.Clock, recoverers: map[string]Recoverer{}}
	for _, r := range p.Recoverers {
		s.recoverers[r.EntityType] = r
	}
	return s
}

// Bury writes a tombstone for item, in tx. A user keeps at most the
// configured number of tombstones: making one more purges the oldest.
func (s *bin) Bury(ctx context.Context, tx *gorm.DB, item Item) (*Buried, error) {
	data, err := json.Marshal(item.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if err := database.LockKey(tx, "tombstones:"+item.UserID.String()); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	ts := Tombstone{ID: id.New(), UserID: item.UserID, EntityType: item.EntityType, EntityID: item.EntityID,
		Title: item.Title, Snapshot: string(data), DeletedAt: now, RecoverableUntil: now.Add(s.cfg.TTL)}
	if err := tx.Create(&ts).Error; err != nil {
		return nil, fmt.Errorf("create tombstone: %w", err)
	}
	var surplus []uuid.UUID
	err = tx.Model(&Tombstone{}).Where("user_id = ?", item.UserID).
		Order("deleted_at DESC, id DESC").Offset(s.cfg.MaxItems).Pluck("id", &surplus).Error
	if err != nil {
		return nil, err
	}
	if len(surplus) > 0 {
		if err := tx.Where("id IN ?", surplus).Delete(&Tombstone{}).Error; err != nil {
			return nil, err
		}
	}
	return &Buried{TombstoneID: ts.ID, RecoverableUntil: ts.RecoverableUntil}, nil
}

// List returns the user's recoverable items, newest first: those of the
// entity types a composed module can bring back (a deployment may leave
// a module out).
func (s *Service) List(ctx context.Context, p auth.Principal) ([]Tombstone, error) {
	out := []Tombstone{}
	err := s.db.WithContext(ctx).Where("user_id = ? AND recoverable_until > ? AND entity_type IN ?", p.UserID,
		s.clock.Now(), slices.Collect(maps.Keys(s.recoverers))).Order("deleted_at DESC, id DESC").Find(&out).Error
	return out, err
}

// Recover brings an item back through the Recoverer of its type and spends
// its tombstone.
func (s *Service) Recover(ctx context.Context, p auth.Principal, tombstoneID uuid.UUID) (Restored, error) {
	var out Restored
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		// The row lock makes concurrent recoveries of one item take turns: the
		// first brings it back, the others find the tombstone gone.
		ts, err := database.Owned[Tombstone](database.ForUpdate(tx), p.UserID, tombstoneID, errNotFound)
		if err != nil {
			return err
		}
		if !ts.RecoverableUntil.After(s.clock.Now()) {
			return errNotFound
		}
		rec, ok := s.recoverers[ts.EntityType]
		if !ok {
			return errNotFound // its module is not part of this deployment
		}
		if out, err = rec.Recover(ctx, tx, p, Restore{TombstoneID: ts.ID, Snapshot: []byte(ts.Snapshot)}); err != nil {
			return err
		}
		return database.One(tx.Where("id = ?", ts.ID).Delete(&Tombstone{}), errNotFound)
	})
	return out, err
}

// Purge deletes the tombstones past their recovery window.
func (s *bin) Purge(ctx context.Context) error {
	_, err := database.DeleteInBatches[Tombstone](ctx, s.db.Gorm, "id", "recoverable_until <= ?", s.clock.Now())
	return err
}
