package notes

import (
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/database"
)

// noteEntity is the note in the live stream and sync, in its REST shape.
func noteEntity(db *database.DB) changes.Entity {
	return changes.Rows(db.Gorm, "note", "id", func(n *Note) string { return n.ID.String() }, toDTO, "")
}
