package ai

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/events"
)

// draftRecord is a notes.TaskDraft as ai_drafts keeps it.
type draftRecord struct {
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Priority    string     `json:"priority"`
	DueDate     *time.Time `json:"due_date"`
	Subtasks    []string   `json:"subtasks"`
}

var errNoteArchived = apperr.New(apperr.KindConflict, tasks.CodeArchived,
	"the note is archived (a converted note is archived): un-archive it to convert it again")

// Convert implements notes.Converter.
func (s *Service) Convert(ctx context.Context, p auth.Principal, noteID uuid.UUID, confirm bool) (*notes.Conversion, error) {
	return s.convert(ctx, p, noteID, confirm, nil)
}

// convert drafts a task from a note (one credit); with confirm the task is
// created with its subtasks, the note archived and counted as converted,
// all in one transaction. Confirming uses given when set, else the draft
// the user last saw (free), else drafts anew (one credit).
func (s *Service) convert(ctx context.Context, p auth.Principal, noteID uuid.UUID, confirm bool, given *notes.TaskDraft) (_ *notes.Conversion, err error) {
	db := s.db.WithContext(ctx)
	note, err := s.notes.Note(ctx, db, p.UserID, noteID)
	if err != nil {
		return nil, err
	}
	if note.Archived {
		return nil, errNoteArchived
	}
	draft := given
	if draft == nil && confirm {
		if draft, err = s.storedDraft(ctx, p, note); err != nil {
			return nil, err
		}
	}
	var a *admission
	defer func() {
		if a != nil {
			a.end(ctx, err)
		}
	}()
	if draft == nil {
		if !s.llm.ok {
			return nil, errNotConfigured
		}
		if a, err = s.admit(ctx, p, "convert", s.cfg.Costs.Convert); err != nil {
			return nil, err
		}
		lim := s.cfg.Tiers.For(p.Tier)
		reply, err := structured[draftReply](ctx, s.llm, draftShape,
			conversation(system(s.clock.Now()), note.Content, fmt.Sprintf(convertPrompt, lim.MaxSubtasks, lim.MaxDescription)))
		if err != nil {
			return nil, err
		}
		draft = s.sanitize(reply, p, note.Content)
	} else {
		draft.DueDate = s.dueDate(draft.DueDate)
	}
	conv := &notes.Conversion{NoteID: noteID, Draft: *draft}
	effects := func(tx *gorm.DB) error {
		if !confirm {
			return s.saveDraft(tx, p, note, draft)
		}
		return s.createFromDraft(ctx, tx, p, noteID, draft, conv)
	}
	var bal billing.Balance
	if a != nil {
		if bal, err = a.pay(ctx, effects); err != nil {
			return nil, err
		}
		conv.CreditsUsed, conv.Warning = a.cost, a.warning()
	} else {
		ctx = events.WithSource(ctx, events.SourceAI)
		err = s.db.Tx(ctx, func(tx *gorm.DB) error {
			if err := effects(tx); err != nil {
				return err
			}
			bal, err = s.credits.Balance(ctx, tx, p.UserID)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	conv.CreditsRemaining = bal.Total()
	return conv, nil
}

// createFromDraft makes the task of a conversion. The note is archived
// first: its row lock makes a second confirmation wait, then find it
// converted.
func (s *Service) createFromDraft(ctx context.Context, tx *gorm.DB, p auth.Principal, noteID uuid.UUID, d *notes.TaskDraft, conv *notes.Conversion) error {
	if _, err := s.notes.ConvertTx(ctx, tx, p, noteID); err != nil {
		return err
	}
	t, err := s.editor.CreateTaskTx(ctx, tx, p, tasks.NewTask{Title: d.Title, Description: d.Description,
		Priority: d.Priority, DueDate: d.DueDate})
	if err != nil {
		return err
	}
	conv.Subtasks = []tasks.SubtaskInfo{}
	if len(d.Subtasks) > 0 {
		in := make([]tasks.NewSubtask, len(d.Subtasks))
		for i, title := range d.Subtasks {
			in[i] = tasks.NewSubtask{Title: title, Source: tasks.SourceAI}
		}
		if conv.Subtasks, err = s.editor.AddSubtasksTx(ctx, tx, p, t.ID, in); err != nil {
			return err
		}
		if t, err = s.tasks.OwnedTask(ctx, tx, p.UserID, t.ID); err != nil {
			return err
		}
	}
	conv.Task = t
	// The draft stays (ai_purge drops it): a second confirmation racing this
	// one finds it, then the archived note (409), instead of drafting anew.
	return nil
}

// sanitize makes a model's draft fit the rules: a title, a description
// within the tier's length, a due date inside the allowed horizon (else
// none), at most the tier's subtasks.
func (s *Service) sanitize(r *draftReply, p auth.Principal, content string) *notes.TaskDraft {
	lim := s.cfg.Tiers.For(p.Tier)
	title := clip(strings.Join(strings.Fields(r.Title), " "), tasks.MaxTitleLength)
	if title == "" {
		title = clip(strings.Join(strings.Fields(content), " "), tasks.MaxTitleLength)
	}
	d := &notes.TaskDraft{Title: title, Description: clip(strings.TrimSpace(r.Description), lim.MaxDescription),
		Priority: r.Priority, Subtasks: cleanTitles(r.Subtasks, lim.MaxSubtasks, nil)}
	if r.DueDate != nil {
		for _, layout := range []string{time.RFC3339, "2006-01-02"} {
			if t, err := time.Parse(layout, *r.DueDate); err == nil {
				d.DueDate = s.dueDate(&t)
				break
			}
		}
	}
	return d
}

// dueDate keeps a due date that the tasks module would accept now.
func (s *Service) dueDate(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	now := s.clock.Now()
	if t.Before(now) || t.After(now.AddDate(0, 0, s.cfg.MaxDueDaysAhead)) {
		return nil
	}
	u := t.UTC()
	return &u
}

// saveDraft keeps the draft the user is shown, tied to the note's version.
func (s *Service) saveDraft(tx *gorm.DB, p auth.Principal, note *notes.NoteInfo, d *notes.TaskDraft) error {
	raw, err := json.Marshal(draftRecord(*d))
	if err != nil {
		return err
	}
	row := Draft{NoteID: note.ID, UserID: p.UserID, NoteVersion: note.Version, Task: string(raw), CreatedAt: s.clock.Now()}
	return tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "note_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"note_version", "task", "created_at"})}).Create(&row).Error
}

// storedDraft is the draft the user last saw of the note, while the note
// has not changed since; nil otherwise.
func (s *Service) storedDraft(ctx context.Context, p auth.Principal, note *notes.NoteInfo) (*notes.TaskDraft, error) {
	var rows []Draft
	err := s.db.WithContext(ctx).Where("note_id = ? AND user_id = ? AND note_version = ?", note.ID, p.UserID, note.Version).
		Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	var d draftRecord
	if err := json.Unmarshal([]byte(rows[0].Task), &d); err != nil {
		return nil, nil // an unreadable draft is drafted again
	}
	draft := notes.TaskDraft(d)
	return &draft, nil
}
