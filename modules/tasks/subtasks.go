package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
)

// CodeSubtaskNotFound is the error code of an unknown subtask.
const CodeSubtaskNotFound = "NOT_FOUND"

var errSubtaskNotFound = apperr.NotFound(CodeSubtaskNotFound, "subtask")

// Subtasks returns a task's subtasks by order_index.
func (s *Service) Subtasks(ctx context.Context, p auth.Principal, taskID uuid.UUID) ([]Subtask, error) {
	db := s.db.WithContext(ctx)
	if _, err := s.load(db, p.UserID, taskID); err != nil {
		return nil, err
	}
	return s.subtasksOf(db, p.UserID, taskID)
}

func (s *Service) subtasksOf(tx *gorm.DB, userID, taskID uuid.UUID) ([]Subtask, error) {
	var out []Subtask
	err := tx.Where("task_id = ? AND user_id = ?", taskID, userID).Order("order_index, created_at, id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list subtasks: %w", err)
	}
	return out, nil
}

// AddSubtask adds a subtask within the per-task limit of the user's tier.
func (s *Service) AddSubtask(ctx context.Context, p auth.Principal, taskID uuid.UUID, in NewSubtask) (*Subtask, error) {
	var out *Subtask
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		created, err := s.addSubtasks(ctx, tx, p, taskID, []NewSubtask{in})
		if err != nil {
			return err
		}
		out = &created[0]
		return nil
	})
	return out, err
}

// addSubtasks adds several subtasks in tx (templates and AI suggestions add
// them in bulk), checking the limit once for all of them.
func (s *Service) addSubtasks(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, in []NewSubtask) ([]Subtask, error) {
	titles := make([]string, len(in))
	for i, n := range in {
		t, err := checkSubtaskTitle(n.Title)
		if err != nil {
			return nil, err
		}
		titles[i] = t
	}
	t, err := s.lockTask(tx, p.UserID, taskID)
	if err != nil {
		return nil, err
	}
	if t.Archived {
		return nil, errArchived
	}
	existing, err := s.subtasksOf(tx, p.UserID, taskID)
	if err != nil {
		return nil, err
	}
	limit := s.cfg.limits(p.Tier).MaxSubtasks
	if len(existing)+len(in) > limit {
		return nil, apperr.LimitExceeded("max_subtasks", limit)
	}
	now := s.clock.Now()
	order := existing
	var created []Subtask
	for i, n := range in {
		source := n.Source
		if source == "" {
			source = SourceUser
		}
		st := Subtask{ID: id.New(), TaskID: taskID, UserID: p.UserID, Title: titles[i], Source: source,
			CreatedAt: now, UpdatedAt: now}
		pos := len(order)
		if n.OrderIndex != nil && *n.OrderIndex < pos {
			pos = max(*n.OrderIndex, 0)
		}
		order = insertAt(order, pos, st)
		created = append(created, st)
	}
	if err := s.writeOrder(tx, order, created, now); err != nil {
		return nil, err
	}
	for i := range created {
		for _, o := range order {
			if o.ID == created[i].ID {
				created[i].OrderIndex = o.OrderIndex
			}
		}
		if err := s.bus.Publish(ctx, tx, subtaskChanged(&created[i], "created", nil)); err != nil {
			return nil, err
		}
	}
	return created, s.refreshCounts(tx, taskID)
}

// writeOrder numbers order 0..n-1, inserting the new subtasks and moving
// existing ones whose position changed.
func (s *Service) writeOrder(tx *gorm.DB, order []Subtask, inserted []Subtask, now time.Time) error {
	isNew := map[uuid.UUID]bool{}
	for _, n := range inserted {
		isNew[n.ID] = true
	}
	for i := range order {
		st := &order[i]
		if isNew[st.ID] {
			st.OrderIndex = i
			if err := tx.Create(st).Error; err != nil {
				return fmt.Errorf("create subtask: %w", err)
			}
			continue
		}
		if st.OrderIndex != i {
			st.OrderIndex = i
			if err := tx.Model(&Subtask{}).Where("id = ?", st.ID).
				Updates(map[string]any{"order_index": i, "updated_at": now}).Error; err != nil {
				return fmt.Errorf("move subtask: %w", err)
			}
		}
	}
	return nil
}

func insertAt(list []Subtask, pos int, st Subtask) []Subtask {
	list = append(list, Subtask{})
	copy(list[pos+1:], list[pos:])
	list[pos] = st
	return list
}

// refreshCounts recomputes a task's subtask counters from its subtasks, so
// they cannot drift.
func (s *Service) refreshCounts(tx *gorm.DB, taskID uuid.UUID) error {
	return tx.Exec(`UPDATE tasks SET
		subtask_count = (SELECT count(*) FROM subtasks WHERE subtasks.task_id = tasks.id),
		subtask_completed_count = (SELECT count(*) FROM subtasks WHERE subtasks.task_id = tasks.id AND subtasks.completed = ?)
		WHERE id = ?`, true, taskID).Error
}

// SubtaskChanges is the input of UpdateSubtask; nil leaves a field alone.
type SubtaskChanges struct {
	Title      *string
	Completed  *bool
	OrderIndex *int
}

// UpdateSubtask changes a subtask. Completing the last open subtask
// completes the task ("auto"); reopening one never reopens the task.
func (s *Service) UpdateSubtask(ctx context.Context, p auth.Principal, subtaskID uuid.UUID, c SubtaskChanges) (*Subtask, error) {
	if c.Title != nil {
		t, err := checkSubtaskTitle(*c.Title)
		if err != nil {
			return nil, err
		}
		c.Title = &t
	}
	var out *Subtask
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		st, task, err := s.loadSubtask(tx, p, subtaskID)
		if err != nil {
			return err
		}
		if task.Archived {
			return errArchived
		}
		now := s.clock.Now()
		changed, completedNow := applySubtaskChanges(st, c, now)
		if len(changed) > 0 {
			if err := tx.Model(&Subtask{}).Where("id = ?", st.ID).
				Select("title", "completed", "completed_at", "updated_at").Updates(st).Error; err != nil {
				return fmt.Errorf("update subtask: %w", err)
			}
		}
		if c.OrderIndex != nil {
			moved, err := s.moveSubtask(tx, p, st, *c.OrderIndex, now)
			if err != nil {
				return err
			}
			if moved {
				changed = append(changed, "order_index")
			}
		}
		if err := s.refreshCounts(tx, task.ID); err != nil {
			return err
		}
		if len(changed) > 0 {
			if err := s.bus.Publish(ctx, tx, subtaskChanged(st, subtaskAction(changed, c), changed)); err != nil {
				return err
			}
		}
		if completedNow {
			if err := s.autoComplete(ctx, tx, p, task.ID, now); err != nil {
				return err
			}
		}
		out = st
		return nil
	})
	return out, err
}

// applySubtaskChanges puts the title and completion of c on st and names
// what changed; completedNow tells that the subtask was just completed.
func applySubtaskChanges(st *Subtask, c SubtaskChanges, now time.Time) (changed []string, completedNow bool) {
	if c.Title != nil && *c.Title != st.Title {
		st.Title = *c.Title
		changed = append(changed, "title")
	}
	if c.Completed != nil && *c.Completed != st.Completed {
		st.Completed = *c.Completed
		st.CompletedAt = nil
		if st.Completed {
			st.CompletedAt, completedNow = &now, true
		}
		changed = append(changed, "completed")
	}
	if len(changed) > 0 {
		st.UpdatedAt = now
	}
	return changed, completedNow
}

// subtaskAction is the activity of a subtask change: a change of its
// completion alone is "completed" or "reopened".
func subtaskAction(changed []string, c SubtaskChanges) string {
	if len(changed) == 1 && changed[0] == "completed" {
		if *c.Completed {
			return "completed"
		}
		return "reopened"
	}
	return "updated"
}

// CompleteSubtask completes a subtask (a no-op when it already is).
func (s *Service) CompleteSubtask(ctx context.Context, p auth.Principal, subtaskID uuid.UUID) (*Subtask, error) {
	done := true
	return s.UpdateSubtask(ctx, p, subtaskID, SubtaskChanges{Completed: &done})
}

// autoComplete completes the task when none of its subtasks is open.
func (s *Service) autoComplete(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, now time.Time) error {
	var open int64
	if err := tx.Model(&Subtask{}).Where("task_id = ? AND completed = ?", taskID, false).Count(&open).Error; err != nil {
		return err
	}
	if open > 0 {
		return nil
	}
	t, err := s.load(tx, p.UserID, taskID)
	if err != nil || t.Completed {
		return err
	}
	by := CompletedAuto
	t.Completed, t.CompletedAt, t.CompletedBy = true, &now, &by
	if err := s.save(tx, t, now); err != nil {
		return err
	}
	_, err = s.publishCompleted(ctx, tx, p, t, now)
	return err
}

// moveSubtask puts st at position pos (clamped) and renumbers the others.
func (s *Service) moveSubtask(tx *gorm.DB, p auth.Principal, st *Subtask, pos int, now time.Time) (bool, error) {
	list, err := s.subtasksOf(tx, p.UserID, st.TaskID)
	if err != nil {
		return false, err
	}
	pos = min(max(pos, 0), len(list)-1)
	from := -1
	for i := range list {
		if list[i].ID == st.ID {
			from = i
		}
	}
	if from == pos || from < 0 {
		return false, nil
	}
	moving := list[from]
	list = append(list[:from], list[from+1:]...)
	list = insertAt(list, pos, moving)
	if err := s.writeOrder(tx, list, nil, now); err != nil {
		return false, err
	}
	st.OrderIndex = pos
	return true, nil
}

// ReorderSubtasks gives a task's subtasks the order of ids, which must be a
// permutation of them.
func (s *Service) ReorderSubtasks(ctx context.Context, p auth.Principal, taskID uuid.UUID, ids []uuid.UUID) ([]Subtask, error) {
	var out []Subtask
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := s.lockTask(tx, p.UserID, taskID)
		if err != nil {
			return err
		}
		if t.Archived {
			return errArchived
		}
		list, err := s.subtasksOf(tx, p.UserID, taskID)
		if err != nil {
			return err
		}
		byID := map[uuid.UUID]Subtask{}
		for _, st := range list {
			byID[st.ID] = st
		}
		if len(ids) != len(list) {
			return apperr.Validation("subtask_ids", "must list each of the task's %d subtasks exactly once", len(list))
		}
		ordered := make([]Subtask, 0, len(ids))
		seen := map[uuid.UUID]bool{}
		for _, sid := range ids {
			st, ok := byID[sid]
			if !ok || seen[sid] {
				return apperr.Validation("subtask_ids", "must list each of the task's %d subtasks exactly once", len(list))
			}
			seen[sid] = true
			ordered = append(ordered, st)
		}
		if err := s.writeOrder(tx, ordered, nil, s.clock.Now()); err != nil {
			return err
		}
		if err := s.bus.Publish(ctx, tx, SubtasksReordered{UserID: p.UserID, TaskID: taskID, Order: ids}); err != nil {
			return err
		}
		out = ordered
		return nil
	})
	return out, err
}

// DeleteSubtask removes a subtask and closes the gap in the order. It never
// completes the task, even when the remaining subtasks are all done.
func (s *Service) DeleteSubtask(ctx context.Context, p auth.Principal, subtaskID uuid.UUID) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		st, task, err := s.loadSubtask(tx, p, subtaskID)
		if err != nil {
			return err
		}
		if task.Archived {
			return errArchived
		}
		if err := database.One(tx.Where("id = ?", st.ID).Delete(&Subtask{}), errSubtaskNotFound); err != nil {
			return fmt.Errorf("delete subtask: %w", err)
		}
		rest, err := s.subtasksOf(tx, p.UserID, st.TaskID)
		if err != nil {
			return err
		}
		if err := s.writeOrder(tx, rest, nil, s.clock.Now()); err != nil {
			return err
		}
		if err := s.refreshCounts(tx, st.TaskID); err != nil {
			return err
		}
		return s.bus.Publish(ctx, tx, subtaskChanged(st, "deleted", nil))
	})
}

// loadSubtask finds a subtask of the user and locks its task (parent before
// child, as every change to a task's subtasks does), then reads the subtask
// again under that lock: a concurrent change may have moved or removed it.
func (s *Service) loadSubtask(tx *gorm.DB, p auth.Principal, subtaskID uuid.UUID) (*Subtask, *Task, error) {
	find := func() (*Subtask, error) { return database.Owned[Subtask](tx, p.UserID, subtaskID, errSubtaskNotFound) }
	st, err := find()
	if err != nil {
		return nil, nil, err
	}
	t, err := s.lockTask(tx, p.UserID, st.TaskID)
	if apperr.Is(err, CodeTaskNotFound) {
		return nil, nil, errSubtaskNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if st, err = find(); err != nil {
		return nil, nil, err
	}
	return st, t, nil
}

// completeOpenSubtasks completes every open subtask of a task
// (force-complete).
func (s *Service) completeOpenSubtasks(tx *gorm.DB, taskID uuid.UUID, now time.Time) error {
	err := tx.Model(&Subtask{}).Where("task_id = ? AND completed = ?", taskID, false).
		Updates(map[string]any{"completed": true, "completed_at": now, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("complete subtasks: %w", err)
	}
	return s.refreshCounts(tx, taskID)
}

func checkSubtaskTitle(title string) (string, error) {
	t := strings.TrimSpace(title)
	if t == "" {
		return "", apperr.Validation("title", "must not be empty")
	}
	if utf8.RuneCountInString(t) > MaxSubtaskTitleLength {
		return "", apperr.Validation("title", "must be at most %d characters", MaxSubtaskTitleLength)
	}
	return t, nil
}
