package migrations_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/perpetuaflow/api/migrations"
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
