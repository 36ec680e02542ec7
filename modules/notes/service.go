package notes

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/gamification/perks"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
)

// Error codes of this module.
const (
	CodeTierRequired             = "TIER_REQUIRED"
	CodeTranscriptionUnavailable = "TRANSCRIPTION_SERVICE_UNAVAILABLE"
)

// voicePlaceholder is the content of a voice note given without text, until
// its transcription replaces it.
const voicePlaceholder = "Voice note"

var (
	errNoteNotFound = apperr.NotFound(apperr.CodeNotFound, "note")
	// errNoteChanged means the note changed between our read and our
	// conditional update, which the row lock taken first rules out.
	errNoteChanged = apperr.New(apperr.KindConflict, apperr.CodeConflict, "note was modified by another request; reload it")
)

// Service holds the note rules; the only writer of the notes table.
type Service struct {
	db    *database.DB
	bus   *events.Bus
	clock clock.Clock
	cfg   Config
	tasks tasks.Lookup
	bin   recovery.Bin
	perks perks.Bonus
	stt   Transcriber
}

type serviceParams struct {
	fx.In

	DB    *database.DB
	Bus   *events.Bus
	Clock clock.Clock
	Cfg   Config
	Tasks tasks.Lookup
	Bin   recovery.Bin
	Perks perks.Bonus `optional:"true"`
	STT   Transcriber `optional:"true"`
}

func newService(p serviceParams) *Service {
	return &Service{db: p.DB, bus: p.Bus, clock: p.Clock, cfg: p.Cfg, tasks: p.Tasks, bin: p.Bin, perks: p.Perks, stt: p.STT}
}

// Filter selects notes; nil fields do not filter.
type Filter struct {
	Archived *bool
	TaskID   *uuid.UUID
	Window   database.Window
}

// List returns the user's notes, newest first. Without archived both kinds
// are listed (the client filters them itself).
func (s *Service) List(ctx context.Context, p auth.Principal, f Filter) (database.Paged[Note], error) {
	db := s.db.WithContext(ctx)
	q := db.Model(&Note{}).Where("user_id = ?", p.UserID)
	// Kept totals: all notes, and the archived ones (see row_counts).
	kept := &database.Kept{UserID: p.UserID, Plus: []string{"notes"}}
	if f.Archived != nil {
		q = q.Where("archived = ?", *f.Archived)
		if *f.Archived {
			kept.Plus = []string{"notes:archived"}
		} else {
			kept.Minus = []string{"notes:archived"}
		}
	}
	if f.TaskID != nil {
		if _, err := s.tasks.OwnedTask(ctx, db, p.UserID, *f.TaskID); err != nil {
			return database.Paged[Note]{}, err
		}
		q, kept = q.Where("task_id = ?", *f.TaskID), nil
	}
	return database.Page(q, noteOrder, f.Window, kept)
}

// noteOrder is the notes' order, newest first.
var noteOrder = database.Keyset[Note]{List: "notes", Column: "created_at",
	Key: func(n *Note) (time.Time, uuid.UUID) { return n.CreatedAt, n.ID }}

// Get returns one note of the user.
func (s *Service) Get(ctx context.Context, p auth.Principal, noteID uuid.UUID) (*Note, error) {
	return s.load(s.db.WithContext(ctx), p.UserID, noteID)
}

func (s *Service) load(tx *gorm.DB, userID, noteID uuid.UUID) (*Note, error) {
	return database.Owned[Note](tx, userID, noteID, errNoteNotFound)
}

// lock finds a note of the user and locks it until tx ends. A note attached
// to a task is changed under its task's lock (taken first, parent before
// child), as the task's own deletion takes its notes along.
func (s *Service) lock(ctx context.Context, tx *gorm.DB, userID, noteID uuid.UUID) (*Note, error) {
	n, err := s.load(tx, userID, noteID)
	if err != nil {
		return nil, err
	}
	if n.TaskID != nil {
		if _, err := s.tasks.LockTask(ctx, tx, userID, *n.TaskID); err != nil && !apperr.Is(err, tasks.CodeTaskNotFound) {
			return nil, err
		}
	}
	return s.load(database.ForUpdate(tx), userID, noteID)
}

// NewNote is the input of Create.
type NewNote struct {
	Content              *string
	TaskID               *uuid.UUID
	VoiceURL             *string
	VoiceDurationSeconds *int
}

// Create adds a note within the user's note limit. A voice note (Pro) is
// stored with transcription pending and its transcription job, in one
// transaction.
func (s *Service) Create(ctx context.Context, p auth.Principal, in NewNote) (*Note, error) {
	voice, err := s.admitVoice(ctx, p, in)
	if err != nil {
		return nil, err
	}
	var content string
	switch {
	case in.Content != nil:
		if content, err = s.checkContent(p, *in.Content); err != nil {
			return nil, err
		}
	case voice:
		content = voicePlaceholder
	default:
		return nil, apperr.Validation("content", "is required")
	}
	now := s.clock.Now()
	n := Note{ID: id.New(), UserID: p.UserID, TaskID: in.TaskID, Content: content, Version: 1, CreatedAt: now, UpdatedAt: now}
	if voice {
		status := TranscriptionPending
		n.VoiceURL, n.VoiceDurationSeconds, n.TranscriptionStatus = in.VoiceURL, in.VoiceDurationSeconds, &status
	}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if in.TaskID != nil {
			t, err := s.tasks.OwnedTask(ctx, tx, p.UserID, *in.TaskID)
			if err != nil {
				return err
			}
			if t.Archived {
				return apperr.New(apperr.KindConflict, tasks.CodeArchived, "the task is archived")
			}
		}
		if err := s.checkLimit(ctx, tx, p); err != nil {
			return err
		}
		if err := tx.Create(&n).Error; err != nil {
			return fmt.Errorf("create note: %w", err)
		}
		if voice {
			if err := s.bus.Publish(ctx, tx, VoiceNoteAdded{UserID: p.UserID, NoteID: n.ID, Seconds: *n.VoiceDurationSeconds}); err != nil {
				return err
			}
		}
		return s.bus.Publish(ctx, tx, noteChanged(&n, "created"))
	})
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// admitVoice checks the voice part of a new note: Pro only, and the
// transcriber's checks (URL, duration, credits). It reports whether the
// note is a voice note.
func (s *Service) admitVoice(ctx context.Context, p auth.Principal, in NewNote) (bool, error) {
	if in.VoiceURL == nil {
		if in.VoiceDurationSeconds != nil {
			return false, apperr.Validation("voice_url", "is required with voice_duration_seconds")
		}
		return false, nil
	}
	if !s.cfg.limits(p.Tier).VoiceNotes {
		return false, apperr.New(apperr.KindForbidden, CodeTierRequired, "voice notes are a Pro feature")
	}
	if in.VoiceDurationSeconds == nil {
		return false, apperr.Validation("voice_duration_seconds", "is required with voice_url")
	}
	if s.stt == nil {
		return false, apperr.New(apperr.KindUnavailable, CodeTranscriptionUnavailable,
			"voice notes need transcription, which this server does not run (the ai module is disabled)")
	}
	return true, s.stt.Admit(ctx, p, *in.VoiceURL, *in.VoiceDurationSeconds)
}

// Changes is the input of Update; nil leaves a field alone.
type Changes struct {
	Content  *string
	Archived *bool
}

// Update edits or (un)archives a note. Un-archiving counts against the limit
// again.
func (s *Service) Update(ctx context.Context, p auth.Principal, noteID uuid.UUID, c Changes) (*Note, error) {
	var out *Note
	err := s.db.Tx(ctx, func(tx *gorm.DB) (err error) {
		out, err = s.update(ctx, tx, p, noteID, c, "")
		return err
	})
	return out, err
}

// apply puts c on n and says which activity it is ("updated", "archived"),
// or "" when nothing changes. unarchived tells that the note comes back
// into the limit.
func apply(n *Note, c Changes) (action string, unarchived bool) {
	changed := false
	if c.Content != nil && *c.Content != n.Content {
		n.Content, changed = *c.Content, true
		action = "updated"
	}
	if c.Archived != nil && *c.Archived != n.Archived {
		unarchived = !*c.Archived
		if !changed && *c.Archived {
			action = "archived"
		} else {
			action = "updated"
		}
		n.Archived, changed = *c.Archived, true
	}
	return action, unarchived
}

// update changes a note in tx; action, when given, names the activity.
func (s *Service) update(ctx context.Context, tx *gorm.DB, p auth.Principal, noteID uuid.UUID, c Changes, action string) (*Note, error) {
	if c.Content != nil {
		content, err := s.checkContent(p, *c.Content)
		if err != nil {
			return nil, err
		}
		c.Content = &content
	}
	n, err := s.lock(ctx, tx, p.UserID, noteID)
	if err != nil {
		return nil, err
	}
	applied, unarchived := apply(n, c)
	if applied == "" {
		return n, nil
	}
	if action == "" {
		action = applied
	}
	if unarchived {
		if err := s.checkLimit(ctx, tx, p); err != nil {
			return nil, err
		}
	}
	if err := database.SaveVersion(tx, n, s.clock.Now(), errNoteChanged, "content", "archived"); err != nil {
		return nil, fmt.Errorf("update note: %w", err)
	}
	return n, s.bus.Publish(ctx, tx, noteChanged(n, action))
}

// Note implements Notes.
func (s *Service) Note(ctx context.Context, tx *gorm.DB, userID, noteID uuid.UUID) (*NoteInfo, error) {
	n, err := s.load(tx.WithContext(ctx), userID, noteID)
	if err != nil {
		return nil, err
	}
	return n.info(), nil
}

// ConvertTx implements Notes.
func (s *Service) ConvertTx(ctx context.Context, tx *gorm.DB, p auth.Principal, noteID uuid.UUID) (*NoteInfo, error) {
	n, err := s.lock(ctx, tx, p.UserID, noteID)
	if err != nil {
		return nil, err
	}
	if n.Archived {
		return nil, apperr.New(apperr.KindConflict, tasks.CodeArchived, "the note is archived: it was converted already")
	}
	archived := true
	if n, err = s.update(ctx, tx, p, noteID, Changes{Archived: &archived}, ActionConverted); err != nil {
		return nil, err
	}
	return n.info(), nil
}

// FinishTranscription implements Notes. The text replaces the placeholder
// of a note given without text, or follows the text the user gave; it is
// cut to the note length limit.
func (s *Service) FinishTranscription(ctx context.Context, tx *gorm.DB, userID, noteID uuid.UUID, text string, ok bool) (bool, error) {
	n, err := s.lock(ctx, tx, userID, noteID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if n.TranscriptionStatus == nil || *n.TranscriptionStatus != TranscriptionPending {
		return false, nil
	}
	status, action := TranscriptionFailed, ActionTranscriptionFailed
	if ok {
		status, action = TranscriptionCompleted, ActionTranscribed
		text = strings.TrimSpace(text)
		switch {
		case text == "":
		case n.Content == voicePlaceholder:
			n.Content = text
		default:
			n.Content += "\n\n" + text
		}
		if max := s.cfg.limits("").MaxNoteLength; utf8.RuneCountInString(n.Content) > max {
			n.Content = string([]rune(n.Content)[:max-1]) + "…"
		}
	}
	n.TranscriptionStatus = &status
	if err := database.SaveVersion(tx, n, s.clock.Now(), errNoteChanged, "content", "transcription_status"); err != nil {
		return false, fmt.Errorf("write transcription: %w", err)
	}
	return true, s.bus.Publish(ctx, tx, noteChanged(n, action))
}

// Delete removes a note into a tombstone (recoverable).
func (s *Service) Delete(ctx context.Context, p auth.Principal, noteID uuid.UUID) (*recovery.Buried, error) {
	var out *recovery.Buried
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		n, err := s.lock(ctx, tx, p.UserID, noteID)
		if err != nil {
			return err
		}
		if out, err = s.bin.Bury(ctx, tx, recovery.Item{UserID: p.UserID, EntityType: EntityNote, EntityID: n.ID,
			Title: excerpt(n.Content), Snapshot: n}); err != nil {
			return err
		}
		if err := database.One(tx.Where("id = ?", n.ID).Delete(&Note{}), errNoteNotFound); err != nil {
			return fmt.Errorf("delete note: %w", err)
		}
		return s.bus.Publish(ctx, tx, noteChanged(n, "deleted"))
	})
	return out, err
}

// restore puts a note back (recovery), with its id and created_at, version
// 1, within the limit when it is not archived.
func (s *Service) restore(ctx context.Context, tx *gorm.DB, p auth.Principal, n Note) (*Note, error) {
	if !n.Archived {
		if err := s.checkLimit(ctx, tx, p); err != nil {
			return nil, err
		}
	}
	n.UserID, n.Version, n.UpdatedAt = p.UserID, 1, s.clock.Now()
	if err := tx.Create(&n).Error; err != nil {
		if database.IsUniqueViolation(err) {
			return nil, apperr.New(apperr.KindConflict, apperr.CodeConflict, "the note exists already")
		}
		return nil, fmt.Errorf("restore note: %w", err)
	}
	if err := s.bus.Publish(ctx, tx, noteChanged(&n, "recovered")); err != nil {
		return nil, err
	}
	return &n, nil
}

// checkLimit fails when the user has no room for one more note that is not
// archived.
func (s *Service) checkLimit(ctx context.Context, tx *gorm.DB, p auth.Principal) error {
	if err := database.LockKey(tx, "notes:"+p.UserID.String()); err != nil {
		return err
	}
	limit, err := perks.Limit(ctx, tx, s.perks, p.UserID, perks.MaxNotes, s.cfg.limits(p.Tier).MaxNotes)
	if err != nil {
		return err
	}
	// The notes that are not archived, from the counts row_counts keeps
	// (not a count over the user's history).
	var n int64
	if err := tx.Raw(`SELECT COALESCE(SUM(CASE WHEN list = 'notes' THEN n ELSE -n END), 0) FROM row_counts
		WHERE user_id = ? AND list IN ('notes', 'notes:archived')`, p.UserID).Scan(&n).Error; err != nil {
		return err
	}
	if n >= int64(limit) {
		return apperr.LimitExceeded(perks.MaxNotes, limit)
	}
	return nil
}

func (s *Service) checkContent(p auth.Principal, content string) (string, error) {
	if strings.TrimSpace(content) == "" {
		return "", apperr.Validation("content", "must not be empty")
	}
	if max := s.cfg.limits(p.Tier).MaxNoteLength; utf8.RuneCountInString(content) > max {
		return "", apperr.Validation("content", "must be at most %d characters", max)
	}
	return content, nil
}

func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return s
}
