package migrations

import (
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// changes keeps, per user, the ordered log of changes to the entities the
// live stream and incremental sync send: triggers on each entity's table
// write one row per inserted, updated or deleted row in the writer's
// transaction, so no write path can forget it and a rolled-back change
// leaves nothing. Each change gets the user's next sequence number
// (sync_heads) — on PostgreSQL when the transaction commits (deferred
// constraint triggers: the user's head is locked only during the commit, and
// a user's numbers follow the order their transactions committed in), with
// a NOTIFY on perpetua_changes naming the user when a stream of theirs is
// open (live_listeners); on SQLite (one writer) at once.
var changes = &gormigrate.Migration{
	ID: "202612062000_changes",
	Migrate: func(tx *gorm.DB) error {
		pg := tx.Dialector.Name() == "postgres"
		var stmts []string
		if pg {
			stmts = append(stmts,
				`CREATE TABLE sync_heads (user_id uuid PRIMARY KEY, seq bigint NOT NULL)`,
				`CREATE TABLE changes (id bigserial PRIMARY KEY, user_id uuid NOT NULL, seq bigint,
					entity varchar(20) NOT NULL, entity_id varchar(64) NOT NULL, action varchar(10) NOT NULL,
					at timestamptz NOT NULL DEFAULT now())`,
				`CREATE UNIQUE INDEX idx_changes_user_seq ON changes (user_id, seq)`,
				`CREATE INDEX idx_changes_at ON changes (at)`)
		} else {
			stmts = append(stmts,
				`CREATE TABLE sync_heads (user_id uuid PRIMARY KEY, seq bigint NOT NULL)`,
				`CREATE TABLE changes (id integer PRIMARY KEY AUTOINCREMENT, user_id uuid NOT NULL, seq bigint,
					entity varchar(20) NOT NULL, entity_id varchar(64) NOT NULL, action varchar(10) NOT NULL,
					at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
				`CREATE UNIQUE INDEX idx_changes_user_seq ON changes (user_id, seq)`,
				`CREATE INDEX idx_changes_at ON changes (at)`)
		}
		// Single-use tickets that open a live stream (EventSource cannot send
		// an Authorization header): the SHA-256 of the ticket.
		ts := "datetime"
		if pg {
			ts = "timestamptz"
		}
		stmts = append(stmts, `CREATE TABLE event_tickets (hash varchar(64) PRIMARY KEY, user_id uuid NOT NULL,
			session_id uuid NOT NULL, expires_at `+ts+` NOT NULL, used_at `+ts+`, created_at `+ts+` NOT NULL)`,
			`CREATE INDEX idx_event_tickets_expires ON event_tickets (expires_at)`)
		// The live streams open on every instance, leased: the PostgreSQL
		// trigger notifies only for users with one, and the per-user limit
		// counts them across instances.
		stmts = append(stmts, `CREATE TABLE live_listeners (stream uuid PRIMARY KEY, user_id uuid NOT NULL,
			instance uuid NOT NULL, opened_at `+ts+` NOT NULL, expires_at `+ts+` NOT NULL)`,
			`CREATE INDEX idx_live_listeners_user ON live_listeners (user_id)`,
			`CREATE INDEX idx_live_listeners_instance ON live_listeners (instance)`)
		for _, t := range changedTables {
			if pg {
				stmts = append(stmts, t.postgresTriggers()...)
			} else {
				stmts = append(stmts, t.sqliteTriggers()...)
			}
		}
		return execAll(tx, stmts)
	},
	Rollback: func(*gorm.DB) error {
		return fmt.Errorf("202612062000_changes cannot be rolled back: restore a backup")
	},
}

// changedTable is a table whose rows are an entity of the live stream:
// entity names it, id is the column that identifies a row to the client.
type changedTable struct {
	table, entity, id string
	// action overrides the action of every change (credits: the ledger's
	// rows are one entity, the balance, always "updated").
	action string
}

var changedTables = []changedTable{
	{table: "tasks", entity: "task", id: "id"},
	{table: "subtasks", entity: "subtask", id: "id"},
	{table: "reminders", entity: "reminder", id: "id"},
	{table: "task_templates", entity: "template", id: "id"},
	{table: "notes", entity: "note", id: "id"},
	{table: "notifications", entity: "notification", id: "id"},
	{table: "focus_sessions", entity: "focus_session", id: "id"},
	{table: "user_achievements", entity: "achievement", id: "achievement_code"},
	{table: "subscriptions", entity: "subscription", id: "user_id"},
	{table: "user_stats", entity: "stats", id: "user_id"},
	{table: "credit_ledger", entity: "credits", id: "user_id", action: "updated"},
}

func (t changedTable) actionOf(op string) string {
	if t.action != "" {
		return "'" + t.action + "'"
	}
	return op
}

// postgresTriggers: a deferred constraint trigger, so the row is logged
// when the transaction commits, with the user's next number (the head is
// locked only then), and a NOTIFY when a stream of the user is open (a
// NOTIFY serialises the commits that send one: users nobody watches send
// none).
func (t changedTable) postgresTriggers() []string {
	fn := t.table + "_changes"
	log := func(row, action string) string {
		return fmt.Sprintf(`u := %s.user_id; eid := %s.%s::text; act := %s;`, row, row, t.id, t.actionOf(action))
	}
	return []string{
		fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE u uuid; eid text; act text; s bigint;
BEGIN
	IF TG_OP = 'INSERT' THEN
		%s
	ELSIF TG_OP = 'DELETE' THEN
		%s
	ELSE
		%s
	END IF;
	INSERT INTO sync_heads AS h (user_id, seq) VALUES (u, 1)
		ON CONFLICT (user_id) DO UPDATE SET seq = h.seq + 1 RETURNING h.seq INTO s;
	INSERT INTO changes (user_id, seq, entity, entity_id, action) VALUES (u, s, '%s', eid, act);
	IF EXISTS (SELECT 1 FROM live_listeners WHERE user_id = u AND expires_at > now()) THEN
		PERFORM pg_notify('perpetua_changes', u::text || ':' || s);
	END IF;
	-- The users this transaction changed, for an application that
	-- announces commits itself (Redis): a transaction-local setting.
	IF position(u::text IN coalesce(current_setting('perpetua.changed', true), '')) = 0 THEN
		PERFORM set_config('perpetua.changed', coalesce(current_setting('perpetua.changed', true), '') || u::text || ',', true);
	END IF;
	RETURN NULL;
END
$$`, fn, log("NEW", "'created'"), log("OLD", "'deleted'"), log("NEW", "'updated'"), t.entity),
		fmt.Sprintf(`CREATE CONSTRAINT TRIGGER %s_change AFTER INSERT OR UPDATE OR DELETE ON %s
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION %s()`, t.table, t.table, fn),
	}
}

func (t changedTable) sqliteTriggers() []string {
	body := func(row, action string) string {
		return fmt.Sprintf(`INSERT INTO sync_heads (user_id, seq) VALUES (%s.user_id, 1)
				ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1;
			INSERT INTO changes (user_id, seq, entity, entity_id, action)
				VALUES (%s.user_id, (SELECT seq FROM sync_heads WHERE user_id = %s.user_id), '%s', %s.%s, %s);`,
			row, row, row, t.entity, row, t.id, t.actionOf(action))
	}
	return []string{
		fmt.Sprintf(`CREATE TRIGGER %s_change_insert AFTER INSERT ON %s BEGIN %s END`, t.table, t.table, body("NEW", "'created'")),
		fmt.Sprintf(`CREATE TRIGGER %s_change_update AFTER UPDATE ON %s BEGIN %s END`, t.table, t.table, body("NEW", "'updated'")),
		fmt.Sprintf(`CREATE TRIGGER %s_change_delete AFTER DELETE ON %s BEGIN %s END`, t.table, t.table, body("OLD", "'deleted'")),
	}
}
