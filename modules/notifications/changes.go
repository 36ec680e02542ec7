package notifications

import (
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/database"
)

// notificationEntity is the notification in the live stream and sync, in
// its REST shape.
func notificationEntity(db *database.DB) changes.Entity {
	return changes.Rows(db.Gorm, "notification", "id", func(n *Notification) string { return n.ID.String() }, toDTO, "")
}
