package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// taskListIndex serves the task list's default order (newest first, id as
// the tie-break) straight from the index: the first page reads 25 entries
// and sorts nothing.
var taskListIndex = &gormigrate.Migration{
	ID: "202612011300_task_list_index",
	Migrate: func(tx *gorm.DB) error {
		if err := tx.Exec("CREATE INDEX idx_tasks_user_created_id ON tasks (user_id, created_at DESC, id DESC)").Error; err != nil {
			return err
		}
		return tx.Exec("DROP INDEX idx_tasks_user_created").Error
	},
	Rollback: func(tx *gorm.DB) error {
		if err := tx.Exec("CREATE INDEX idx_tasks_user_created ON tasks (user_id, created_at)").Error; err != nil {
			return err
		}
		return tx.Exec("DROP INDEX idx_tasks_user_created_id").Error
	},
}
