package recovery

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
)

// This file and events.go are the module's public face.

// Bin keeps deleted items recoverable. A module buries its item inside the
// transaction that deletes it.
type Bin interface {
	Bury(ctx context.Context, tx *gorm.DB, item Item) (*Buried, error)
}

// Item is a deleted item, as its tombstone keeps it.
type Item struct {
	UserID uuid.UUID
	// EntityType names the item's kind ("task", "note"): the Recoverer of
	// that type brings it back.
	EntityType string
	EntityID   uuid.UUID
	// Title is what the list of recoverable items shows.
	Title string
	// Snapshot is everything needed to restore the item, encoded as JSON;
	// its Recoverer gets the JSON back.
	Snapshot any
}

// Buried says where a deleted item went and until when it can come back.
type Buried struct {
	TombstoneID      uuid.UUID
	RecoverableUntil time.Time
}

// Recoverer brings back the items of one entity type, inside the
// recovery's transaction; it re-checks limits and may refuse.
type Recoverer struct {
	EntityType string
	Recover    func(ctx context.Context, tx *gorm.DB, p auth.Principal, from Restore) (Restored, error)
}

// Restore is what a Recoverer restores from.
type Restore struct {
	TombstoneID uuid.UUID
	Snapshot    []byte
}

// Restored is a recovered item in the form the API answers with (a Task,
// a Note); its module's DTO implements it.
type Restored interface {
	// RestoredEntity names the entity type, as in Item.
	RestoredEntity() string
}

// AsRecoverer annotates a constructor returning a Recoverer so that it joins
// the "recoverers" group.
func AsRecoverer(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"recoverers"`)) }
