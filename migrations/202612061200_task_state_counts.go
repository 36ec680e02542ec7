package migrations

import (
	"fmt"
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// taskStateCounts keeps, beside each user's number of active tasks, the
// number of their tasks in each of the eight states of (completed, hidden,
// archived): columns s000 … s111, the digits in that order. The task list's
// total for any of those filters, or none, is then a sum of a few columns
// of one row instead of a count over the user's whole history. One trigger
// per event keeps every column of the row, with one statement.
var taskStateCounts = &gormigrate.Migration{
	ID: "202612061200_task_state_counts",
	Migrate: func(tx *gorm.DB) error {
		var stmts []string
		for k := range 8 {
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE task_counts ADD COLUMN %s bigint NOT NULL DEFAULT 0`, stateColumn(k)))
		}
		var sums, sets []string
		for k := range 8 {
			sums = append(sums, fmt.Sprintf("SUM(CASE WHEN %s THEN 1 ELSE 0 END) AS %s", stateWhere("", k), stateColumn(k)))
			sets = append(sets, fmt.Sprintf("%s = g.%s", stateColumn(k), stateColumn(k)))
		}
		stmts = append(stmts,
			`INSERT INTO task_counts (user_id, active) SELECT DISTINCT user_id, 0 FROM tasks WHERE true ON CONFLICT (user_id) DO NOTHING`,
			`UPDATE task_counts SET `+strings.Join(sets, ", ")+` FROM (SELECT user_id, `+strings.Join(sums, ", ")+
				` FROM tasks GROUP BY user_id) g WHERE task_counts.user_id = g.user_id`,
		)
		if tx.Dialector.Name() == "postgres" {
			stmts = append(stmts,
				"DROP TRIGGER tasks_count_insert ON tasks", "DROP TRIGGER tasks_count_update ON tasks",
				"DROP TRIGGER tasks_count_delete ON tasks", "DROP FUNCTION tasks_count_active()")
			stmts = append(stmts, postgresStateTriggers(countColumns)...)
		} else {
			stmts = append(stmts, "DROP TRIGGER tasks_count_insert", "DROP TRIGGER tasks_count_update", "DROP TRIGGER tasks_count_delete")
			stmts = append(stmts, sqliteStateTriggers(countColumns)...)
		}
		// The lists filtered by completion (the web client's
		// ?completed=false) read in their own order.
		stmts = append(stmts, `CREATE INDEX idx_tasks_user_completed_created ON tasks (user_id, completed, created_at DESC, id DESC)`)
		return execAll(tx, stmts)
	},
	Rollback: func(*gorm.DB) error {
		return fmt.Errorf("202612061200_task_state_counts cannot be rolled back: restore a backup")
	},
}

// stateColumn is the column of state k: bit 4 completed, 2 hidden, 1
// archived.
func stateColumn(k int) string { return fmt.Sprintf("s%d%d%d", k>>2&1, k>>1&1, k&1) }

// stateWhere is the condition that a row (of prefix, "NEW." or "OLD." or
// none) is in state k.
func stateWhere(prefix string, k int) string {
	not := func(bit int) string {
		if k&bit == 0 {
			return "NOT "
		}
		return ""
	}
	return fmt.Sprintf("%s%scompleted AND %s%shidden AND %s%sarchived", not(4), prefix, not(2), prefix, not(1), prefix)
}

// deltas are the changes of every column for a row that leaves the state
// of old (none when old is "") and enters the state of new (none when new
// is ""): active and s000 … s111, as SQL expressions, then 1 (the
// generation's) when generation is set.
func deltas(old, new string, boolInt func(cond string) string, generation bool) []string {
	term := func(prefix string, cond string, sign string) string {
		if prefix == "" {
			return ""
		}
		return " " + sign + " " + boolInt(cond)
	}
	active := func(p string) string { return "NOT " + p + "completed AND NOT " + p + "archived" }
	out := []string{"0" + term(new, active(new), "+") + term(old, active(old), "-")}
	for k := range 8 {
		out = append(out, "0"+term(new, stateWhere(new, k), "+")+term(old, stateWhere(old, k), "-"))
	}
	if generation {
		out = append(out, "1")
	}
	return out
}

var countColumns = []string{"active", "s000", "s001", "s010", "s011", "s100", "s101", "s110", "s111"}

// postgresStateTriggers keep task_counts's columns (countColumns, with or
// without generation last) with one upsert per event: the values inserted
// are the deltas (a user's first task makes the row).
func postgresStateTriggers(columns []string) []string {
	generation := columns[len(columns)-1] == "generation"
	boolInt := func(cond string) string { return "(" + cond + ")::int" }
	upsert := func(user string, d []string) string {
		var sets []string
		for _, c := range columns {
			sets = append(sets, fmt.Sprintf("%s = task_counts.%s + EXCLUDED.%s", c, c, c))
		}
		return fmt.Sprintf("INSERT INTO task_counts (user_id, %s) VALUES (%s, %s) ON CONFLICT (user_id) DO UPDATE SET %s;",
			strings.Join(columns, ", "), user, strings.Join(d, ", "), strings.Join(sets, ", "))
	}
	fn := `CREATE FUNCTION tasks_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		` + upsert("NEW.user_id", deltas("", "NEW.", boolInt, generation)) + `
	ELSIF TG_OP = 'DELETE' THEN
		` + upsert("OLD.user_id", deltas("OLD.", "", boolInt, generation)) + `
	ELSIF OLD.user_id IS DISTINCT FROM NEW.user_id THEN
		` + upsert("OLD.user_id", deltas("OLD.", "", boolInt, generation)) + `
		` + upsert("NEW.user_id", deltas("", "NEW.", boolInt, generation)) + `
	ELSE
		` + upsert("NEW.user_id", deltas("OLD.", "NEW.", boolInt, generation)) + `
	END IF;
	RETURN NULL;
END
$$`
	return []string{fn,
		`CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_count()`,
		`CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_count()`,
		`CREATE TRIGGER tasks_count_update AFTER UPDATE OF completed, hidden, archived, user_id ON tasks FOR EACH ROW
			WHEN (OLD.completed IS DISTINCT FROM NEW.completed OR OLD.hidden IS DISTINCT FROM NEW.hidden
				OR OLD.archived IS DISTINCT FROM NEW.archived OR OLD.user_id IS DISTINCT FROM NEW.user_id)
			EXECUTE FUNCTION tasks_count()`,
	}
}

// sqliteStateTriggers do the same with SQLite's triggers (one writer: no
// lock order to keep).
func sqliteStateTriggers(columns []string) []string {
	generation := columns[len(columns)-1] == "generation"
	boolInt := func(cond string) string { return "(CASE WHEN " + cond + " THEN 1 ELSE 0 END)" }
	update := func(user string, d []string) string {
		var sets []string
		for i, c := range columns {
			sets = append(sets, fmt.Sprintf("%s = %s + %s", c, c, d[i]))
		}
		return fmt.Sprintf("INSERT OR IGNORE INTO task_counts (user_id) VALUES (%s); UPDATE task_counts SET %s WHERE user_id = %s;",
			user, strings.Join(sets, ", "), user)
	}
	return []string{
		`CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN ` + update("NEW.user_id", deltas("", "NEW.", boolInt, generation)) + ` END`,
		`CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN ` + update("OLD.user_id", deltas("OLD.", "", boolInt, generation)) + ` END`,
		`CREATE TRIGGER tasks_count_update AFTER UPDATE OF completed, hidden, archived, user_id ON tasks
			WHEN OLD.completed IS NOT NEW.completed OR OLD.hidden IS NOT NEW.hidden OR OLD.archived IS NOT NEW.archived
				OR OLD.user_id IS NOT NEW.user_id
			BEGIN ` + update("OLD.user_id", deltas("OLD.", "", boolInt, generation)) + update("NEW.user_id", deltas("", "NEW.", boolInt, generation)) + ` END`,
	}
}
