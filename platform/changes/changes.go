// Package changes is how modules show their entities to the live stream
// and incremental sync: database triggers log every change of an entity's
// row (see migrations/202612062000_changes.go), and the module that owns
// the entity contributes an Entity that turns ids into the entity's API
// shape — the same JSON its REST routes answer with.
package changes

import (
	"context"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"
)

// Entity is one kind of entity of the live stream and sync.
type Entity struct {
	// Name is the entity's name in events (task → task.created, …) and in
	// sync answers.
	Name string
	// Load returns, by id, the API shape of those of the user's entities
	// with the given ids that still exist.
	Load func(ctx context.Context, userID uuid.UUID, ids []string) (map[string]any, error)
	// All calls emit with every live entity of the user, for a full sync;
	// nil when the entity is only streamed, never synced.
	All func(ctx context.Context, userID uuid.UUID, emit func(id string, v any) error) error
}

// AsEntity annotates a constructor returning an Entity so that it joins
// the "entities" group.
func AsEntity(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"entities"`)) }

// Provide contributes entities that need nothing but their functions.
func Provide(list ...Entity) fx.Option {
	opts := make([]fx.Option, len(list))
	for i, e := range list {
		opts[i] = fx.Provide(AsEntity(func() Entity { return e }))
	}
	return fx.Options(opts...)
}

// Rows is an Entity over a GORM model M owned by the user (user_id):
// Load reads the rows whose column idColumn is one of the ids, All every
// row (where live, with its args, when set), in idColumn's order; dto
// makes the API shape and idOf the id the client knows the row by.
func Rows[M any, D any](db *gorm.DB, name, idColumn string, idOf func(*M) string, dto func(*M) D,
	live string, args ...any) Entity {
	return Entity{Name: name,
		Load: func(ctx context.Context, userID uuid.UUID, ids []string) (map[string]any, error) {
			var rows []M
			err := db.WithContext(ctx).Where("user_id = ? AND "+idColumn+" IN ?", userID, ids).Find(&rows).Error
			out := make(map[string]any, len(rows))
			for i := range rows {
				out[idOf(&rows[i])] = dto(&rows[i])
			}
			return out, err
		},
		All: func(ctx context.Context, userID uuid.UUID, emit func(id string, v any) error) error {
			q := db.WithContext(ctx).Where("user_id = ?", userID)
			if live != "" {
				q = q.Where(live, args...)
			}
			var batch []M
			var failed error
			err := q.Order(idColumn).FindInBatches(&batch, 500, func(*gorm.DB, int) error {
				for i := range batch {
					if err := emit(idOf(&batch[i]), dto(&batch[i])); err != nil {
						failed = err
						return err
					}
				}
				return nil
			}).Error
			if failed != nil {
				return failed
			}
			return err
		}}
}
