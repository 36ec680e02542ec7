package notes

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
)

// This file and events.go are the module's public face.

// EntityNote is the entity type of a note in the recycle bin and the
// activity log.
const EntityNote = "note"

// ActionConverted is the NoteChanged action of a note that became a task
// (ArchiveTx with it).
const ActionConverted = "converted"

// NoteInfo is what other modules see of a note.
type NoteInfo struct {
	ID       uuid.UUID
	UserID   uuid.UUID
	TaskID   *uuid.UUID
	Content  string
	Archived bool
	VoiceURL *string
	Version  int
}

func (n *Note) info() *NoteInfo {
	return &NoteInfo{ID: n.ID, UserID: n.UserID, TaskID: n.TaskID, Content: n.Content, Archived: n.Archived,
		VoiceURL: n.VoiceURL, Version: n.Version}
}

// Notes reads and archives notes inside the caller's transaction (the AI
// assistant turns a note into a task and archives the note).
type Notes interface {
	// Note fails with NOT_FOUND unless the user owns the note.
	Note(ctx context.Context, tx *gorm.DB, userID, noteID uuid.UUID) (*NoteInfo, error)
	// ArchiveTx archives the note (a no-op when it is archived already),
	// with the activity of the HTTP route; Action names the activity
	// ("archived", or "converted" for a note that became a task).
	ArchiveTx(ctx context.Context, tx *gorm.DB, p auth.Principal, noteID uuid.UUID, action string) (*NoteInfo, error)
}
