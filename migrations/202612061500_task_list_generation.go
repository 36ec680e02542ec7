package migrations

import (
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// taskListGeneration adds to task_counts a generation that every insert,
// deletion and change of state of a user's tasks raises by one: while it
// holds, every list of the user's tasks by creation time, filtered by state
// only, has the same rows in the same places, so that a deep page's
// position found once can be used again (see the tasks module's anchors).
var taskListGeneration = &gormigrate.Migration{
	ID: "202612061500_task_list_generation",
	Migrate: func(tx *gorm.DB) error {
		columns := append(append([]string{}, countColumns...), "generation")
		stmts := []string{`ALTER TABLE task_counts ADD COLUMN generation bigint NOT NULL DEFAULT 0`}
		if tx.Dialector.Name() == "postgres" {
			stmts = append(stmts, "DROP TRIGGER tasks_count_insert ON tasks", "DROP TRIGGER tasks_count_update ON tasks",
				"DROP TRIGGER tasks_count_delete ON tasks", "DROP FUNCTION tasks_count()")
			stmts = append(stmts, postgresStateTriggers(columns)...)
		} else {
			stmts = append(stmts, "DROP TRIGGER tasks_count_insert", "DROP TRIGGER tasks_count_update", "DROP TRIGGER tasks_count_delete")
			stmts = append(stmts, sqliteStateTriggers(columns)...)
		}
		return execAll(tx, stmts)
	},
	Rollback: func(*gorm.DB) error {
		return fmt.Errorf("202612061500_task_list_generation cannot be rolled back: restore a backup")
	},
}
