package gamification

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
)

var (
	errSessionNotFound = apperr.NotFound(apperr.CodeNotFound, "focus session")
	errNoActiveSession = apperr.NotFound(apperr.CodeNotFound, "active focus session")
)

// elapsed is how long a running session has lasted at now, at most the
// configured maximum.
func (s *Service) elapsed(fs *FocusSession, now time.Time) int {
	d := min(max(now.Sub(fs.StartedAt), 0), s.cfg.FocusMaxDuration)
	return int(d / time.Second)
}

// StartFocus starts a focus session on a task of the user. One session
// runs per user: a running one ends first (its time goes to its task).
func (s *Service) StartFocus(ctx context.Context, p auth.Principal, taskID uuid.UUID) (*FocusSession, error) {
	var out *FocusSession
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		// Starts of one user take turns: the partial unique index allows one
		// running session, and the second start must end the first.
		if err := database.LockKey(tx, "focus:"+p.UserID.String()); err != nil {
			return err
		}
		t, err := s.tasks.OwnedTask(ctx, tx, p.UserID, taskID)
		if err != nil {
			return err
		}
		if t.Archived {
			return apperr.New(apperr.KindConflict, tasks.CodeArchived, "the task is archived")
		}
		running, err := s.running(tx, p.UserID)
		if err != nil {
			return err
		}
		if running != nil {
			if err := s.end(ctx, tx, running); err != nil {
				return err
			}
		}
		now := s.clock.Now()
		fs := FocusSession{ID: id.New(), UserID: p.UserID, TaskID: taskID, StartedAt: now, CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&fs).Error; err != nil {
			return fmt.Errorf("start focus session: %w", err)
		}
		out = &fs
		return s.bus.Publish(ctx, tx, FocusChanged{UserID: p.UserID, SessionID: fs.ID, TaskID: taskID, Action: "started"})
	})
	return out, err
}

// running is the user's running session, or nil.
func (s *Service) running(tx *gorm.DB, userID uuid.UUID) (*FocusSession, error) {
	var fs FocusSession
	err := database.ForUpdate(tx).Where("user_id = ? AND ended_at IS NULL", userID).Take(&fs).Error
	if database.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find running session: %w", err)
	}
	return &fs, nil
}

// end ends a running session now (at most the maximum duration after its
// start) and adds its time to its task; a task deleted meanwhile gets
// nothing.
func (s *Service) end(ctx context.Context, tx *gorm.DB, fs *FocusSession) error {
	now := s.clock.Now()
	secs := s.elapsed(fs, now)
	ended := fs.StartedAt.Add(time.Duration(secs) * time.Second)
	fs.EndedAt, fs.DurationSeconds, fs.UpdatedAt = &ended, &secs, now
	res := tx.Model(&FocusSession{}).Where("id = ? AND ended_at IS NULL", fs.ID).
		Updates(map[string]any{"ended_at": ended, "duration_seconds": secs, "updated_at": now})
	if err := database.One(res, errSessionNotFound); err != nil {
		return fmt.Errorf("end focus session: %w", err)
	}
	if _, err := s.focus.AddFocusTime(ctx, tx, fs.UserID, fs.TaskID, secs); err != nil && !apperr.Is(err, tasks.CodeTaskNotFound) {
		return err
	}
	return s.bus.Publish(ctx, tx, FocusChanged{UserID: fs.UserID, SessionID: fs.ID, TaskID: fs.TaskID, Action: "ended",
		DurationSeconds: secs})
}

// EndFocus ends a session of the user (a session that has ended is
// answered as it is).
func (s *Service) EndFocus(ctx context.Context, p auth.Principal, sessionID uuid.UUID) (*FocusSession, error) {
	var out *FocusSession
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		fs, err := database.Owned[FocusSession](database.ForUpdate(tx), p.UserID, sessionID, errSessionNotFound)
		if err != nil {
			return err
		}
		out = fs
		if fs.EndedAt != nil {
			return nil
		}
		return s.end(ctx, tx, fs)
	})
	return out, err
}

// EndActiveFocus ends the user's running session (404 when none runs).
func (s *Service) EndActiveFocus(ctx context.Context, p auth.Principal) (*FocusSession, error) {
	var out *FocusSession
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		fs, err := s.running(tx, p.UserID)
		if err != nil {
			return err
		}
		if fs == nil {
			return errNoActiveSession
		}
		out = fs
		return s.end(ctx, tx, fs)
	})
	return out, err
}

// ActiveFocus returns the user's running session (404 when none runs).
func (s *Service) ActiveFocus(ctx context.Context, p auth.Principal) (*FocusSession, error) {
	var fs FocusSession
	err := s.db.WithContext(ctx).Where("user_id = ? AND ended_at IS NULL", p.UserID).Take(&fs).Error
	if database.IsNotFound(err) {
		return nil, errNoActiveSession
	}
	if err != nil {
		return nil, err
	}
	return &fs, nil
}

// FocusSessions lists the user's sessions (of one task when taskID is
// set), newest first.
func (s *Service) FocusSessions(ctx context.Context, p auth.Principal, taskID *uuid.UUID, w database.Window) (database.Paged[FocusSession], error) {
	db := s.db.WithContext(ctx)
	q := db.Model(&FocusSession{}).Where("user_id = ?", p.UserID)
	kept := &database.Kept{UserID: p.UserID, Plus: []string{"focus_sessions"}}
	if taskID != nil {
		if _, err := s.tasks.OwnedTask(ctx, db, p.UserID, *taskID); err != nil {
			return database.Paged[FocusSession]{}, err
		}
		q, kept = q.Where("task_id = ?", *taskID), nil
	}
	return database.Page(q, focusOrder, w, kept)
}

// focusOrder is the sessions' order, the latest started first.
var focusOrder = database.Keyset[FocusSession]{List: "focus", Column: "started_at",
	Key: func(f *FocusSession) (time.Time, uuid.UUID) { return f.StartedAt, f.ID }}

// AutoEndFocus ends the sessions that have run for the maximum duration
// (their time is that maximum). It returns how many it ended.
func (s *Service) AutoEndFocus(ctx context.Context) (int, error) {
	var due []FocusSession
	err := s.db.WithContext(ctx).Where("ended_at IS NULL AND started_at <= ?", s.clock.Now().Add(-s.cfg.FocusMaxDuration)).
		Order("started_at").Limit(1000).Find(&due).Error
	if err != nil {
		return 0, fmt.Errorf("find sessions to end: %w", err)
	}
	n := 0
	for _, fs := range due {
		// The closure may run again after a deadlock: it says what its last
		// run did, and the count is taken once it committed.
		var ended bool
		err := s.db.Tx(ctx, func(tx *gorm.DB) error {
			ended = false
			running, err := database.Owned[FocusSession](database.ForUpdate(tx), fs.UserID, fs.ID, errSessionNotFound)
			if err != nil || running.EndedAt != nil {
				return err
			}
			ended = true
			return s.end(ctx, tx, running)
		})
		if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
			return n, err
		}
		if err == nil && ended {
			n++
		}
	}
	return n, nil
}
