package notes

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
)

// This file and events.go are the module's public face.

// EntityNote is the entity type of a note in the recycle bin and the
// activity log.
const EntityNote = "note"

// NoteChanged actions other modules react to.
const (
	// ActionConverted: the note became a task (ConvertTx).
	ActionConverted = "converted"
	// ActionTranscribed: a voice note got its text.
	ActionTranscribed = "transcribed"
	// ActionTranscriptionFailed: a voice note's transcription failed for good.
	ActionTranscriptionFailed = "transcription_failed"
)

// Transcription statuses of voice notes.
const (
	TranscriptionPending   = "pending"
	TranscriptionCompleted = "completed"
	TranscriptionFailed    = "failed"
)

// NoteInfo is what other modules see of a note.
type NoteInfo struct {
	ID       uuid.UUID
	UserID   uuid.UUID
	TaskID   *uuid.UUID
	Content  string
	Archived bool
	VoiceURL *string
	// VoiceDurationSeconds is the duration the client gave for the audio.
	VoiceDurationSeconds *int
	TranscriptionStatus  *string
	Version              int
}

func (n *Note) info() *NoteInfo {
	return &NoteInfo{ID: n.ID, UserID: n.UserID, TaskID: n.TaskID, Content: n.Content, Archived: n.Archived,
		VoiceURL: n.VoiceURL, VoiceDurationSeconds: n.VoiceDurationSeconds, TranscriptionStatus: n.TranscriptionStatus,
		Version: n.Version}
}

// Notes reads notes and records what the assistant did with them, inside
// the caller's transaction.
type Notes interface {
	// Note fails with NOT_FOUND unless the user owns the note.
	Note(ctx context.Context, tx *gorm.DB, userID, noteID uuid.UUID) (*NoteInfo, error)
	// ConvertTx archives a note that became a task (activity "converted",
	// counted by gamification). It locks the note, and fails with 409
	// ARCHIVED when the note is archived already: a note is converted once.
	ConvertTx(ctx context.Context, tx *gorm.DB, p auth.Principal, noteID uuid.UUID) (*NoteInfo, error)
	// FinishTranscription writes a pending voice note's transcription (ok,
	// with its text) or marks it failed. It changes nothing and returns false
	// when the note is gone or not pending any more, so that a transcription
	// is written (and paid) once.
	FinishTranscription(ctx context.Context, tx *gorm.DB, userID, noteID uuid.UUID, text string, ok bool) (bool, error)
}

// Transcriber gives voice notes their text. The ai module provides it;
// without it voice notes are refused with 503.
type Transcriber interface {
	// Admit checks a voice note's audio before the note is stored: the URL,
	// the duration, and that transcription is configured. Its error is the
	// answer to the request. VoiceNoteAdded, published in the transaction
	// that stores the note, is the provider's cue to hold the credits (its
	// error, 402, refuses the note) and schedule the transcription.
	Admit(ctx context.Context, p auth.Principal, audioURL string, seconds int) error
}

// Converter turns a note into a task with the assistant. The ai module
// provides it; without it the convert route is absent.
type Converter interface {
	// Convert drafts a task from the note, paid in credits. With confirm it
	// also creates the task and its subtasks and archives the note
	// (ConvertTx), all in the transaction that pays; a draft the user was
	// shown and the note has not changed since is confirmed for free.
	Convert(ctx context.Context, p auth.Principal, noteID uuid.UUID, confirm bool) (*Conversion, error)
}

// TaskDraft is a task drafted from a note.
type TaskDraft struct {
	Title       string
	Description string
	Priority    string
	DueDate     *time.Time
	Subtasks    []string
}

// Conversion is a note's task draft and, once confirmed, the task made
// from it.
type Conversion struct {
	NoteID uuid.UUID
	Draft  TaskDraft
	// Task is the task made (nil until confirmed), Subtasks its subtasks.
	Task             *tasks.TaskInfo
	Subtasks         []tasks.SubtaskInfo
	CreditsUsed      int
	CreditsRemaining int
	// Warning: the sign-in session is near its request limit.
	Warning bool
}
