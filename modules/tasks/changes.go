package tasks

import (
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/database"
)

// The tasks module's entities in the live stream and sync, in their REST
// shapes.

func taskEntity(db *database.DB) changes.Entity {
	return changes.Rows(db.Gorm, "task", "id", func(t *Task) string { return t.ID.String() }, toTaskDTO, "")
}

func subtaskEntity(db *database.DB) changes.Entity {
	return changes.Rows(db.Gorm, "subtask", "id", func(st *Subtask) string { return st.ID.String() }, toSubtaskDTO, "")
}

func reminderEntity(db *database.DB) changes.Entity {
	return changes.Rows(db.Gorm, "reminder", "id", func(r *Reminder) string { return r.ID.String() }, toReminderDTO, "")
}

func templateEntity(db *database.DB) changes.Entity {
	return changes.Rows(db.Gorm, "template", "id", func(t *Template) string { return t.ID.String() }, toTemplateDTO, "")
}
