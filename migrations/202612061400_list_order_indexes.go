package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// listOrderIndexes gives each list that grows with a user's history an
// index in the list's own order, the id last (newest first, id
// descending), so that a page is read from the index's start whatever the
// user's history; the (user_id, time) indexes it replaces left the id's
// order to a sort of every row of the user, which the planner chose once
// the table's statistics changed.
var listOrderIndexes = &gormigrate.Migration{
	ID: "202612061400_list_order_indexes",
	Migrate: func(tx *gorm.DB) error {
		return execAll(tx, []string{
			`DROP INDEX idx_activity_user_created`,
			`CREATE INDEX idx_activity_user_created_id ON activity_log (user_id, created_at DESC, id DESC)`,
			`DROP INDEX idx_notes_user_created`,
			`CREATE INDEX idx_notes_user_created_id ON notes (user_id, created_at DESC, id DESC)`,
			`DROP INDEX idx_notifications_user_created`,
			`CREATE INDEX idx_notifications_user_created_id ON notifications (user_id, created_at DESC, id DESC)`,
			`DROP INDEX idx_credit_ledger_user_created`,
			`CREATE INDEX idx_credit_ledger_user_created_id ON credit_ledger (user_id, created_at DESC, id DESC)`,
			`DROP INDEX idx_focus_sessions_user_started`,
			`CREATE INDEX idx_focus_sessions_user_started_id ON focus_sessions (user_id, started_at DESC, id DESC)`,
		})
	},
	Rollback: func(tx *gorm.DB) error {
		return execAll(tx, []string{
			`DROP INDEX idx_activity_user_created_id`, `CREATE INDEX idx_activity_user_created ON activity_log (user_id, created_at)`,
			`DROP INDEX idx_notes_user_created_id`, `CREATE INDEX idx_notes_user_created ON notes (user_id, created_at)`,
			`DROP INDEX idx_notifications_user_created_id`, `CREATE INDEX idx_notifications_user_created ON notifications (user_id, created_at)`,
			`DROP INDEX idx_credit_ledger_user_created_id`, `CREATE INDEX idx_credit_ledger_user_created ON credit_ledger (user_id, created_at)`,
			`DROP INDEX idx_focus_sessions_user_started_id`, `CREATE INDEX idx_focus_sessions_user_started ON focus_sessions (user_id, started_at)`,
		})
	},
}
