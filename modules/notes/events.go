package notes

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
)

// NoteChanged is published when a note is created, updated, archived,
// converted, deleted or recovered.
type NoteChanged struct {
	UserID uuid.UUID
	NoteID uuid.UUID
	TaskID *uuid.UUID
	Action string
}

func noteChanged(n *Note, action string) NoteChanged {
	return NoteChanged{UserID: n.UserID, NoteID: n.ID, TaskID: n.TaskID, Action: action}
}

// ActivityEntry implements events.Recordable.
func (e NoteChanged) ActivityEntry() events.Entry {
	extra := map[string]any{}
	if e.TaskID != nil {
		extra["task_id"] = e.TaskID.String()
	}
	return events.Entry{UserID: e.UserID, EntityType: EntityNote, EntityID: e.NoteID, Action: e.Action, Extra: extra}
}

// VoiceNoteAdded is published, in the transaction that stores it, when a
// voice note is created: its transcription is scheduled on it.
type VoiceNoteAdded struct {
	UserID uuid.UUID
	NoteID uuid.UUID
	// Seconds is the audio's duration as the client gave it.
	Seconds int
}

// attachName is the name of the notes in a task's tombstone.
const attachName = "notes"

// buryWithTask removes the notes of a task being deleted and attaches them
// to its tombstone.
func buryWithTask() events.Subscription {
	return events.On("notes of deleted task", func(ctx context.Context, tx *gorm.DB, e tasks.TaskDeleting) error {
		var list []Note
		err := database.ForUpdate(tx).Where("task_id = ? AND user_id = ?", e.TaskID, e.UserID).Order("created_at, id").Find(&list).Error
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		if err := e.Attach(attachName, list); err != nil {
			return err
		}
		return tx.Where("task_id = ? AND user_id = ?", e.TaskID, e.UserID).Delete(&Note{}).Error
	})
}

// recoverWithTask gives a recovered task its notes back, within the note
// limit.
func recoverWithTask(s *Service) events.Subscription {
	return events.On("notes of recovered task", func(ctx context.Context, tx *gorm.DB, e tasks.TaskRecovering) error {
		raw, ok := e.Attached[attachName]
		if !ok {
			return nil
		}
		var list []Note
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("read attached notes: %w", err)
		}
		p := auth.Principal{UserID: e.UserID, Tier: e.Tier}
		for i := range list {
			if _, err := s.restore(ctx, tx, p, list[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// RestoredEntity implements recovery.Restored.
func (NoteDTO) RestoredEntity() string { return EntityNote }

func newRecoverer(s *Service) recovery.Recoverer {
	return recovery.Recoverer{EntityType: EntityNote,
		Recover: func(ctx context.Context, tx *gorm.DB, p auth.Principal, from recovery.Restore) (recovery.Restored, error) {
			var n Note
			if err := json.Unmarshal(from.Snapshot, &n); err != nil {
				return nil, fmt.Errorf("read note snapshot: %w", err)
			}
			if n.TaskID != nil {
				// The note's task may be gone; the note comes back on its own then.
				if _, err := s.tasks.OwnedTask(ctx, tx, p.UserID, *n.TaskID); err != nil {
					n.TaskID = nil
				}
			}
			restored, err := s.restore(ctx, tx, p, n)
			if err != nil {
				return nil, err
			}
			return toDTO(restored), nil
		}}
}
