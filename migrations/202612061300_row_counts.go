package migrations

import (
	"fmt"
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// rowCounts keeps, per user, the number of rows of the lists that grow with
// a user's history (notes, notifications, activity, credit history, focus
// sessions), and of the part of them a filter of the web client selects
// (archived notes, unread notifications), in row_counts, maintained by
// triggers in the writer's transaction. A list's total is then one row, or
// two, instead of a count over the user's history (database.Page).
var rowCounts = &gormigrate.Migration{
	ID: "202612061300_row_counts",
	Migrate: func(tx *gorm.DB) error {
		stmts := []string{
			`CREATE TABLE row_counts (user_id uuid NOT NULL, list varchar(40) NOT NULL, n bigint NOT NULL DEFAULT 0,
				PRIMARY KEY (user_id, list))`,
		}
		for _, t := range keptTables {
			for _, l := range t.lists {
				stmts = append(stmts, fmt.Sprintf(`INSERT INTO row_counts (user_id, list, n)
					SELECT user_id, '%s', count(*) FROM %s WHERE %s GROUP BY user_id`, l.name, t.table, l.cond("")))
			}
			if tx.Dialector.Name() == "postgres" {
				stmts = append(stmts, t.postgresTriggers()...)
			} else {
				stmts = append(stmts, t.sqliteTriggers()...)
			}
		}
		return execAll(tx, stmts)
	},
	Rollback: func(*gorm.DB) error {
		return fmt.Errorf("202612061300_row_counts cannot be rolled back: restore a backup")
	},
}

// keptList is one count: the rows of the table that match when (a
// condition on the row's columns, "" for every row); or, when sum names a
// column, the sum of that column over those rows.
type keptList struct {
	name string
	when string
	sum  string
}

// cond is when on the row of prefix ("NEW.", "OLD." or "").
func (l keptList) cond(prefix string) string {
	if l.when == "" {
		return "true"
	}
	return strings.ReplaceAll(l.when, "{r}", prefix)
}

// keptTable is a table whose rows are counted per user in row_counts; an
// update changes the counts only when one of columns changes.
type keptTable struct {
	table   string
	lists   []keptList
	columns []string
}

var keptTables = []keptTable{
	{table: "notes", lists: []keptList{{"notes", "", ""}, {"notes:archived", "{r}archived", ""}}, columns: []string{"archived"}},
	{table: "notifications", lists: []keptList{{"notifications", "", ""}, {"notifications:unread", "NOT {r}read", ""}},
		columns: []string{"read"}},
	{table: "activity_log", lists: []keptList{{"activity", "", ""}}},
	{table: "credit_ledger", lists: []keptList{{"credit_history", "", ""}}},
	{table: "focus_sessions", lists: []keptList{{"focus_sessions", "", ""}}},
}

// delta is the change of list for a row that leaves old (none when "") and
// enters new (none when ""), as an SQL expression.
func (l keptList) delta(old, new string, boolInt func(string) string) string {
	d := "0"
	term := func(prefix string) string {
		if l.sum != "" {
			return prefix + l.sum + " * " + boolInt(l.cond(prefix))
		}
		return boolInt(l.cond(prefix))
	}
	if new != "" {
		d += " + " + term(new)
	}
	if old != "" {
		d += " - " + term(old)
	}
	return d
}

func (t keptTable) postgresTriggers() []string {
	boolInt := func(c string) string { return "(" + c + ")::int" }
	upsert := func(user, old, new string) string {
		var values []string
		for _, l := range t.lists {
			values = append(values, fmt.Sprintf("('%s', %s)", l.name, l.delta(old, new, boolInt)))
		}
		// Rows in the order of their names: two writers lock them alike.
		return fmt.Sprintf(`INSERT INTO row_counts (user_id, list, n) SELECT %s, v.l, v.d FROM (VALUES %s) AS v(l, d)
			WHERE v.d <> 0 ORDER BY v.l ON CONFLICT (user_id, list) DO UPDATE SET n = row_counts.n + EXCLUDED.n;`,
			user, strings.Join(values, ", "))
	}
	fn := t.table + "_row_counts"
	out := []string{fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		%s
	ELSIF TG_OP = 'DELETE' THEN
		%s
	ELSIF OLD.user_id IS DISTINCT FROM NEW.user_id THEN
		%s
		%s
	ELSE
		%s
	END IF;
	RETURN NULL;
END
$$`, fn, upsert("NEW.user_id", "", "NEW."), upsert("OLD.user_id", "OLD.", ""), upsert("OLD.user_id", "OLD.", ""),
		upsert("NEW.user_id", "", "NEW."), upsert("NEW.user_id", "OLD.", "NEW.")),
		fmt.Sprintf(`CREATE TRIGGER %s_count_insert AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION %s()`, t.table, t.table, fn),
		fmt.Sprintf(`CREATE TRIGGER %s_count_delete AFTER DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()`, t.table, t.table, fn),
	}
	cols := append([]string{"user_id"}, t.columns...)
	var changed []string
	for _, c := range cols {
		changed = append(changed, fmt.Sprintf("OLD.%s IS DISTINCT FROM NEW.%s", c, c))
	}
	return append(out, fmt.Sprintf(`CREATE TRIGGER %s_count_update AFTER UPDATE OF %s ON %s FOR EACH ROW WHEN (%s) EXECUTE FUNCTION %s()`,
		t.table, strings.Join(cols, ", "), t.table, strings.Join(changed, " OR "), fn))
}

func (t keptTable) sqliteTriggers() []string {
	boolInt := func(c string) string { return "(CASE WHEN " + c + " THEN 1 ELSE 0 END)" }
	update := func(user, old, new string) string {
		var b strings.Builder
		for _, l := range t.lists {
			fmt.Fprintf(&b, `INSERT OR IGNORE INTO row_counts (user_id, list, n) VALUES (%s, '%s', 0);
				UPDATE row_counts SET n = n + (%s) WHERE user_id = %s AND list = '%s';`, user, l.name, l.delta(old, new, boolInt), user, l.name)
		}
		return b.String()
	}
	cols := append([]string{"user_id"}, t.columns...)
	var changed []string
	for _, c := range cols {
		changed = append(changed, fmt.Sprintf("OLD.%s IS NOT NEW.%s", c, c))
	}
	return []string{
		fmt.Sprintf(`CREATE TRIGGER %s_count_insert AFTER INSERT ON %s BEGIN %s END`, t.table, t.table, update("NEW.user_id", "", "NEW.")),
		fmt.Sprintf(`CREATE TRIGGER %s_count_delete AFTER DELETE ON %s BEGIN %s END`, t.table, t.table, update("OLD.user_id", "OLD.", "")),
		fmt.Sprintf(`CREATE TRIGGER %s_count_update AFTER UPDATE OF %s ON %s WHEN %s BEGIN %s %s END`, t.table, strings.Join(cols, ", "),
			t.table, strings.Join(changed, " OR "), update("OLD.user_id", "OLD.", ""), update("NEW.user_id", "", "NEW.")),
	}
}
