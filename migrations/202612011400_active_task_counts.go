package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// activeTaskCounts keeps each user's number of active tasks (neither
// completed nor archived) in task_counts, maintained by triggers on tasks
// so that no way of changing a task can forget it. The task limit reads and
// locks one row instead of counting the user's tasks on every create.
var activeTaskCounts = &gormigrate.Migration{
	ID: "202612011400_active_task_counts",
	Migrate: func(tx *gorm.DB) error {
		stmts := []string{
			`CREATE TABLE task_counts (user_id uuid PRIMARY KEY, active bigint NOT NULL DEFAULT 0)`,
			`INSERT INTO task_counts (user_id, active)
				SELECT user_id, count(*) FROM tasks WHERE NOT completed AND NOT archived GROUP BY user_id`,
		}
		if tx.Dialector.Name() == "postgres" {
			stmts = append(stmts, postgresTaskCountTriggers...)
		} else {
			stmts = append(stmts, sqliteTaskCountTriggers...)
		}
		return execAll(tx, stmts)
	},
	Rollback: func(tx *gorm.DB) error {
		stmts := []string{
			"DROP TRIGGER IF EXISTS tasks_count_insert ON tasks",
			"DROP TRIGGER IF EXISTS tasks_count_update ON tasks",
			"DROP TRIGGER IF EXISTS tasks_count_delete ON tasks",
			"DROP FUNCTION IF EXISTS tasks_count_active()",
			"DROP TABLE task_counts",
		}
		if tx.Dialector.Name() != "postgres" {
			stmts = []string{
				"DROP TRIGGER IF EXISTS tasks_count_insert",
				"DROP TRIGGER IF EXISTS tasks_count_update",
				"DROP TRIGGER IF EXISTS tasks_count_delete",
				"DROP TABLE task_counts",
			}
		}
		return execAll(tx, stmts)
	},
}

// The triggers fire only when a row enters or leaves the active set (or
// changes owner), so most updates of a task cost nothing.
var postgresTaskCountTriggers = []string{
	`CREATE FUNCTION tasks_count_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') AND NOT OLD.completed AND NOT OLD.archived THEN
		UPDATE task_counts SET active = active - 1 WHERE user_id = OLD.user_id;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') AND NOT NEW.completed AND NOT NEW.archived THEN
		INSERT INTO task_counts (user_id, active) VALUES (NEW.user_id, 1)
			ON CONFLICT (user_id) DO UPDATE SET active = task_counts.active + 1;
	END IF;
	RETURN NULL;
END
$$`,
	`CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks FOR EACH ROW
		WHEN (NOT NEW.completed AND NOT NEW.archived) EXECUTE FUNCTION tasks_count_active()`,
	`CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks FOR EACH ROW
		WHEN (NOT OLD.completed AND NOT OLD.archived) EXECUTE FUNCTION tasks_count_active()`,
	`CREATE TRIGGER tasks_count_update AFTER UPDATE OF completed, archived, user_id ON tasks FOR EACH ROW
		WHEN ((OLD.completed OR OLD.archived) IS DISTINCT FROM (NEW.completed OR NEW.archived)
			OR OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION tasks_count_active()`,
}

var sqliteTaskCountTriggers = []string{
	`CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks
		WHEN NOT NEW.completed AND NOT NEW.archived
	BEGIN
		INSERT OR IGNORE INTO task_counts (user_id, active) VALUES (NEW.user_id, 0);
		UPDATE task_counts SET active = active + 1 WHERE user_id = NEW.user_id;
	END`,
	`CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
		WHEN NOT OLD.completed AND NOT OLD.archived
	BEGIN
		UPDATE task_counts SET active = active - 1 WHERE user_id = OLD.user_id;
	END`,
	`CREATE TRIGGER tasks_count_update AFTER UPDATE OF completed, archived, user_id ON tasks
		WHEN (OLD.completed OR OLD.archived) IS NOT (NEW.completed OR NEW.archived) OR OLD.user_id IS NOT NEW.user_id
	BEGIN
		UPDATE task_counts SET active = active - 1
			WHERE user_id = OLD.user_id AND NOT OLD.completed AND NOT OLD.archived;
		INSERT OR IGNORE INTO task_counts (user_id, active)
			SELECT NEW.user_id, 0 WHERE NOT NEW.completed AND NOT NEW.archived;
		UPDATE task_counts SET active = active + 1
			WHERE user_id = NEW.user_id AND NOT NEW.completed AND NOT NEW.archived;
	END`,
}

func execAll(tx *gorm.DB, stmts []string) error {
	for _, stmt := range stmts {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}
