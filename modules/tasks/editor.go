package tasks

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/database"
)

// The Editor and Focus faces: the HTTP routes' rules, in the caller's
// transaction.

// CreateTaskTx implements Editor.
func (s *Service) CreateTaskTx(ctx context.Context, tx *gorm.DB, p auth.Principal, in NewTask) (*TaskInfo, error) {
	t, err := s.create(ctx, tx, p, in)
	if err != nil {
		return nil, err
	}
	return t.info(), nil
}

// UpdateTaskTx implements Editor.
func (s *Service) UpdateTaskTx(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, c Changes) (*TaskInfo, error) {
	t, err := s.update(ctx, tx, p, taskID, c)
	if err != nil {
		return nil, err
	}
	return t.info(), nil
}

// CompleteTaskTx implements Editor.
func (s *Service) CompleteTaskTx(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID) (*TaskInfo, *Rewards, error) {
	c, err := s.complete(ctx, tx, p, taskID, CompletedManual, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.Task.info(), &c.Rewards, nil
}

// AddSubtasksTx implements Editor.
func (s *Service) AddSubtasksTx(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, in []NewSubtask) ([]SubtaskInfo, error) {
	list, err := s.addSubtasks(ctx, tx, p, taskID, in)
	if err != nil {
		return nil, err
	}
	out := make([]SubtaskInfo, len(list))
	for i := range list {
		out[i] = list[i].info()
	}
	return out, nil
}

// AddFocusTime implements Focus. Time can be added to any task of the user,
// archived or completed too: the session happened.
func (s *Service) AddFocusTime(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID, seconds int) (*TaskInfo, error) {
	t, err := s.lockTask(tx.WithContext(ctx), userID, taskID)
	if err != nil {
		return nil, err
	}
	if seconds <= 0 {
		return t.info(), nil
	}
	t.FocusTimeSeconds += seconds
	if err := database.SaveVersion(tx, t, s.clock.Now(), errStale, "focus_time_seconds"); err != nil {
		return nil, err
	}
	return t.info(), nil
}

// OpenTasks implements Lookup.
func (s *Service) OpenTasks(ctx context.Context, tx *gorm.DB, userID uuid.UUID, limit int) ([]TaskInfo, error) {
	var list []Task
	err := tx.WithContext(ctx).Where("user_id = ? AND completed = ? AND archived = ?", userID, false, false).
		Order("CASE priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, " +
			"CASE WHEN due_date IS NULL THEN 1 ELSE 0 END, due_date, created_at DESC, id").
		Limit(limit).Find(&list).Error
	if err != nil {
		return nil, fmt.Errorf("open tasks: %w", err)
	}
	out := make([]TaskInfo, len(list))
	for i := range list {
		out[i] = *list[i].info()
	}
	return out, nil
}

// SubtasksOf implements Lookup.
func (s *Service) SubtasksOf(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) ([]SubtaskInfo, error) {
	db := tx.WithContext(ctx)
	if _, err := s.load(db, userID, taskID); err != nil {
		return nil, err
	}
	list, err := s.subtasksOf(db, userID, taskID)
	if err != nil {
		return nil, err
	}
	out := make([]SubtaskInfo, len(list))
	for i := range list {
		out[i] = list[i].info()
	}
	return out, nil
}
