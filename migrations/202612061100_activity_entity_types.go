package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// activityEntityTypes rewrites the activity rows whose entity type the web
// client does not know (its schema rejects a whole list for one of them):
// focus sessions go under their task (focus_started, focus_ended, the
// session in extra_data), templates under "task" (template_created, ...),
// and credit grants, which are not activity (the credit history is their
// record), are removed.
var activityEntityTypes = &gormigrate.Migration{
	ID: "202612061100_activity_entity_types",
	Migrate: func(tx *gorm.DB) error {
		focus := `UPDATE activity_log SET entity_type = 'task', action = 'focus_' || action,
			entity_id = json_extract(extra_data, '$.task_id'),
			extra_data = json_set(json_remove(extra_data, '$.task_id'), '$.session_id', entity_id)
			WHERE entity_type = 'focus_session' AND json_extract(extra_data, '$.task_id') IS NOT NULL`
		if tx.Dialector.Name() == "postgres" {
			focus = `UPDATE activity_log SET entity_type = 'task', action = 'focus_' || action,
				entity_id = (extra_data::jsonb ->> 'task_id')::uuid,
				extra_data = ((extra_data::jsonb - 'task_id') || jsonb_build_object('session_id', entity_id::text))::text
				WHERE entity_type = 'focus_session' AND extra_data::jsonb ? 'task_id'`
		}
		return execAll(tx, []string{
			focus,
			`DELETE FROM activity_log WHERE entity_type = 'focus_session'`,
			`UPDATE activity_log SET entity_type = 'task', action = 'template_' || action WHERE entity_type = 'template'`,
			`DELETE FROM activity_log WHERE entity_type = 'credits'`,
		})
	},
	Rollback: func(*gorm.DB) error { return nil }, // the old types were the bug
}
