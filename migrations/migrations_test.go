package migrations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/perpetuaflow/api/migrations"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

// TestOldActivityRowsGetTheClientsEntityTypes: rows written before the
// activity log kept to the web client's entity types are rewritten.
func TestOldActivityRowsGetTheClientsEntityTypes(t *testing.T) {
	t.Parallel()
	db := testkit.OpenDB(t)
	ctx := context.Background()
	all := migrations.All()
	var before = all
	for i, m := range all {
		if m.ID == "202612061100_activity_entity_types" {
			before = all[:i]
		}
	}
	if err := db.Migrate(ctx, before); err != nil {
		t.Fatal(err)
	}
	const (
		user    = "018f0000-0000-7000-8000-000000000001"
		task    = "018f0000-0000-7000-8000-0000000000aa"
		session = "018f0000-0000-7000-8000-0000000000bb"
		tmpl    = "018f0000-0000-7000-8000-0000000000cc"
	)
	rows := []struct{ id, typ, entity, action, extra string }{
		{"018f0000-0000-7000-8000-000000000011", "focus_session", session, "started", `{"task_id": "` + task + `"}`},
		{"018f0000-0000-7000-8000-000000000012", "focus_session", session, "ended", `{"task_id": "` + task + `", "duration_seconds": 60}`},
		{"018f0000-0000-7000-8000-000000000013", "credits", user, "granted", `{"kind": "kickstart", "amount": 5}`},
		{"018f0000-0000-7000-8000-000000000014", "template", tmpl, "created", `{"rrule": "FREQ=DAILY"}`},
		{"018f0000-0000-7000-8000-000000000015", "task", task, "created", `{}`},
	}
	for _, r := range rows {
		if err := db.Gorm.Exec(`INSERT INTO activity_log (id, user_id, entity_type, entity_id, action, source, extra_data, created_at)
			VALUES (?, ?, ?, ?, ?, 'user', ?, CURRENT_TIMESTAMP)`, r.id, user, r.typ, r.entity, r.action, r.extra).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Migrate(ctx, all); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		ID, EntityType, EntityID, Action, ExtraData string
	}
	if err := db.Gorm.Raw(`SELECT CAST(id AS text) AS id, entity_type, CAST(entity_id AS text) AS entity_id, action, extra_data
		FROM activity_log ORDER BY id`).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d rows, want 4 (the credit grant removed): %+v", len(got), got)
	}
	want := []struct{ typ, entity, action string }{
		{"task", task, "focus_started"}, {"task", task, "focus_ended"}, {"task", tmpl, "template_created"}, {"task", task, "created"},
	}
	for i, w := range want {
		if got[i].EntityType != w.typ || got[i].EntityID != w.entity || got[i].Action != w.action {
			t.Errorf("row %d: %+v, want %+v", i, got[i], w)
		}
	}
	var extra map[string]any
	if err := json.Unmarshal([]byte(got[1].ExtraData), &extra); err != nil || extra["session_id"] != session ||
		extra["duration_seconds"] != float64(60) || extra["task_id"] != nil {
		t.Fatalf("focus row's extra_data %s", got[1].ExtraData)
	}
}

// migrateBefore applies the migrations before the one with id.
func migrateBefore(t *testing.T, db *database.DB, id string) {
	t.Helper()
	all := migrations.All()
	for i, m := range all {
		if m.ID == id {
			if err := db.Migrate(context.Background(), all[:i]); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no migration %s", id)
}

// TestTaskStateCountsAreFilledFromTheTasksThere: the counts by state start
// from the tasks a database already has, and the triggers keep them.
func TestTaskStateCountsAreFilledFromTheTasksThere(t *testing.T) {
	t.Parallel()
	db := testkit.OpenDB(t)
	migrateBefore(t, db, "202612061200_task_state_counts")
	const user = "018f0000-0000-7000-8000-000000000001"
	insert := func(i int, completed, hidden, archived bool) {
		t.Helper()
		if err := db.Gorm.Exec(`INSERT INTO tasks (id, user_id, title, description, priority, focus_time_seconds, completed, hidden,
			archived, subtask_count, subtask_completed_count, version, created_at, updated_at)
			VALUES (?, ?, 't', '', 'medium', 0, ?, ?, ?, 0, 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
			fmt.Sprintf("018f0000-0000-7000-8000-%012d", i), user, completed, hidden, archived).Error; err != nil {
			t.Fatal(err)
		}
	}
	for i := range 16 {
		insert(i, i&4 != 0, i&2 != 0, i&1 != 0) // two of each state
	}
	insert(16, false, false, false)
	if err := db.Migrate(context.Background(), migrations.All()); err != nil {
		t.Fatal(err)
	}
	insert(17, true, true, true) // after: the trigger counts it
	var c struct{ Active, S000, S001, S010, S011, S100, S101, S110, S111 int64 }
	if err := db.Gorm.Raw("SELECT active, s000, s001, s010, s011, s100, s101, s110, s111 FROM task_counts WHERE user_id = ?", user).
		Scan(&c).Error; err != nil {
		t.Fatal(err)
	}
	if c != (struct{ Active, S000, S001, S010, S011, S100, S101, S110, S111 int64 }{5, 3, 2, 2, 2, 2, 2, 2, 3}) {
		t.Fatalf("counts %+v", c)
	}
}
