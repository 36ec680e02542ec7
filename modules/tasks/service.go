package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/gamification/perks"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
)

var (
	errTaskNotFound = apperr.NotFound(CodeTaskNotFound, "task")
	errArchived     = apperr.New(apperr.KindConflict, CodeArchived,
		"the task is archived; un-archive it (archived: false) to change it")
	// errStale means the row changed between our read and our conditional
	// update, which the row lock taken before every change rules out; should
	// it happen all the same, the client is told to reload.
	errStale = apperr.New(apperr.KindConflict, apperr.CodeConflict, "task was modified by another request; reload it")
)

const (
	minEstimatedDuration = 1
	maxEstimatedDuration = 720
)

// Service holds the task rules. It is the only writer of the tasks tables.
type Service struct {
	db    *database.DB
	bus   *events.Bus
	clock clock.Clock
	cfg   Config
	perks perks.Bonus
	users auth.Users
	bin   recovery.Bin
	// anchors are positions of deep pages found (see anchors.go).
	anchors *anchors
}

type serviceParams struct {
	fx.In

	DB    *database.DB
	Bus   *events.Bus
	Clock clock.Clock
	Cfg   Config
	Users auth.Users
	Bin   recovery.Bin
	Perks perks.Bonus `optional:"true"`
	Reg   prometheus.Registerer
}

func newService(p serviceParams) *Service {
	return &Service{db: p.DB, bus: p.Bus, clock: p.Clock, cfg: p.Cfg, perks: p.Perks, users: p.Users, bin: p.Bin, anchors: newAnchors(p.Reg)}
}

// ListFilter selects tasks; nil fields do not filter.
type ListFilter struct {
	Completed *bool
	Hidden    *bool
	Archived  *bool
	Priority  *string
	DueBefore *time.Time
	DueAfter  *time.Time
	Query     string
	Sort      string
	// Cursor, from the previous page's NextCursor, starts the page after
	// that page's last task (Offset then counts from there).
	Cursor string
	Offset int
	Limit  int
}

// Get returns one task of the user.
func (s *Service) Get(ctx context.Context, p auth.Principal, taskID uuid.UUID) (*Task, error) {
	return s.load(s.db.WithContext(ctx), p.UserID, taskID)
}

// TaskDetail is a task with its subtasks (by order) and reminders (by time).
type TaskDetail struct {
	Task      Task
	Subtasks  []Subtask
	Reminders []Reminder
}

// Detail returns a task with its children.
func (s *Service) Detail(ctx context.Context, p auth.Principal, taskID uuid.UUID) (*TaskDetail, error) {
	db := s.db.WithContext(ctx)
	t, err := s.load(db, p.UserID, taskID)
	if err != nil {
		return nil, err
	}
	d := &TaskDetail{Task: *t}
	if d.Subtasks, err = s.subtasksOf(db, p.UserID, taskID); err != nil {
		return nil, err
	}
	if err := db.Where("task_id = ? AND user_id = ?", taskID, p.UserID).Order("scheduled_at, id").Find(&d.Reminders).Error; err != nil {
		return nil, err
	}
	return d, nil
}

func (s *Service) load(tx *gorm.DB, userID, taskID uuid.UUID) (*Task, error) {
	return database.Owned[Task](tx, userID, taskID, errTaskNotFound)
}

// Create adds a task, within the user's active-task limit.
func (s *Service) Create(ctx context.Context, p auth.Principal, in NewTask) (*Task, error) {
	var out *Task
	err := s.db.TxOrJoin(ctx, func(tx *gorm.DB) (err error) {
		out, err = s.create(ctx, tx, p, in)
		return err
	})
	return out, err
}

func (s *Service) create(ctx context.Context, tx *gorm.DB, p auth.Principal, in NewTask) (*Task, error) {
	title, err := s.checkTitle(in.Title)
	if err != nil {
		return nil, err
	}
	if err := s.checkDescription(p, in.Description); err != nil {
		return nil, err
	}
	if err := s.checkDueDate(in.DueDate); err != nil {
		return nil, err
	}
	if err := checkEstimate(in.EstimatedDuration); err != nil {
		return nil, err
	}
	priority := in.Priority
	if priority == "" {
		priority = PriorityMedium
	}
	now := s.clock.Now()
	t := Task{ID: id.New(), UserID: p.UserID, Title: title, Description: in.Description, Priority: priority,
		DueDate: utcPtr(in.DueDate), EstimatedDuration: in.EstimatedDuration, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.insertWithinLimit(ctx, tx, p, &t); err != nil {
		return nil, err
	}
	return &t, s.bus.Publish(ctx, tx, taskCreated(&t))
}

// insertWithinLimit inserts t if the user has fewer active tasks than
// their limit. Below the tier's own limit (nearly always) the count's
// lock, its check and the insert are one statement on PostgreSQL; at it,
// for a user's first task (no count row yet), or on SQLite, the count is
// read and locked first and perks (which only add) are read when the
// tier's limit is reached.
func (s *Service) insertWithinLimit(ctx context.Context, tx *gorm.DB, p auth.Principal, t *Task) error {
	inserted, err := database.InsertBelow(tx, t, keptActiveCountSQL, []any{p.UserID}, int64(s.cfg.limits(p.Tier).MaxTasks))
	if err != nil || inserted {
		return err
	}
	if err := s.checkTaskLimit(ctx, tx, p); err != nil {
		return err
	}
	if err := tx.Create(t).Error; err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	return nil
}

// touchesMoreThanArchived reports whether the changes go beyond the
// archived flag (an archived task accepts only un-archiving).
func (c Changes) touchesMoreThanArchived() bool {
	return c.Title != nil || c.Description != nil || c.ClearDescription || c.Priority != nil ||
		c.DueDate != nil || c.ClearDueDate || c.EstimatedDuration != nil || c.ClearEstimatedDuration ||
		c.Hidden != nil || c.Completed != nil
}

// Update changes a task. The version is enforced only when the caller sends
// one (the client's complete/reopen and hide toggles send none: last write
// wins). completed: true has every effect of Complete.
func (s *Service) Update(ctx context.Context, p auth.Principal, taskID uuid.UUID, c Changes) (*Task, error) {
	var out *Task
	err := s.db.TxOrJoin(ctx, func(tx *gorm.DB) (err error) {
		out, err = s.update(ctx, tx, p, taskID, c)
		return err
	})
	return out, err
}

// checkChanges validates the fields of c that need no database and
// returns c with the title trimmed.
func (s *Service) checkChanges(p auth.Principal, c Changes) (Changes, error) {
	if c.Title != nil {
		title, err := s.checkTitle(*c.Title)
		if err != nil {
			return c, err
		}
		c.Title = &title
	}
	if c.Description != nil {
		if err := s.checkDescription(p, *c.Description); err != nil {
			return c, err
		}
	}
	if err := s.checkDueDate(c.DueDate); err != nil {
		return c, err
	}
	return c, checkEstimate(c.EstimatedDuration)
}

// completion says how the changes move the task's completion: completed now
// (every effect of Complete), reopened, or neither.
func completion(before, after *Task) (completedNow, reopened bool) {
	return after.Completed && !before.Completed, !after.Completed && before.Completed
}

func (s *Service) update(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, c Changes) (*Task, error) {
	c, err := s.checkChanges(p, c)
	if err != nil {
		return nil, err
	}
	t, err := s.lockVersion(tx, p, taskID, c.Version)
	if err != nil {
		return nil, err
	}
	unarchive := c.Archived != nil && !*c.Archived
	if t.Archived && !unarchive && c.touchesMoreThanArchived() {
		return nil, errArchived
	}
	before := *t
	now := s.clock.Now()
	applyChanges(t, c)
	completedNow, reopened := completion(&before, t)
	switch {
	case completedNow:
		by := CompletedManual
		t.CompletedAt, t.CompletedBy = &now, &by
	case reopened:
		t.CompletedAt, t.CompletedBy = nil, nil
	}
	if before.Archived && !t.Archived && t.Active() {
		if err := s.checkTaskLimit(ctx, tx, p); err != nil {
			return nil, err
		}
	}
	fields := changedFields(&before, t)
	if len(fields) == 0 {
		return t, nil
	}
	if err := s.save(tx, t, now); err != nil {
		return nil, err
	}
	if !eqTime(before.DueDate, t.DueDate) {
		if err := s.moveRelativeReminders(ctx, tx, t, now); err != nil {
			return nil, err
		}
	}
	if completedNow {
		if _, err := s.publishCompleted(ctx, tx, p, t, now); err != nil {
			return nil, err
		}
		fields = without(fields, "completed")
	}
	if len(fields) > 0 {
		e := TaskUpdated{UserID: t.UserID, TaskID: t.ID, Changed: fields, Archived: t.Archived}
		if err := s.bus.Publish(ctx, tx, e); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func applyChanges(t *Task, c Changes) {
	if c.Title != nil {
		t.Title = *c.Title
	}
	if c.Description != nil {
		t.Description = *c.Description
	}
	if c.ClearDescription {
		t.Description = ""
	}
	if c.Priority != nil {
		t.Priority = *c.Priority
	}
	if c.DueDate != nil {
		t.DueDate = utcPtr(c.DueDate)
	}
	if c.ClearDueDate {
		t.DueDate = nil
	}
	if c.EstimatedDuration != nil {
		t.EstimatedDuration = c.EstimatedDuration
	}
	if c.ClearEstimatedDuration {
		t.EstimatedDuration = nil
	}
	if c.Hidden != nil {
		t.Hidden = *c.Hidden
	}
	if c.Archived != nil {
		t.Archived = *c.Archived
	}
	if c.Completed != nil {
		t.Completed = *c.Completed
	}
}

// changedFields names the editable fields that differ between a and b.
func changedFields(a, b *Task) []string {
	var out []string
	add := func(differs bool, name string) {
		if differs {
			out = append(out, name)
		}
	}
	add(a.Title != b.Title, "title")
	add(a.Description != b.Description, "description")
	add(a.Priority != b.Priority, "priority")
	add(!eqTime(a.DueDate, b.DueDate), "due_date")
	add(!eqInt(a.EstimatedDuration, b.EstimatedDuration), "estimated_duration")
	add(a.Hidden != b.Hidden, "hidden")
	add(a.Archived != b.Archived, "archived")
	add(a.Completed != b.Completed, "completed")
	return out
}

func without(list []string, name string) []string {
	out := list[:0:0]
	for _, s := range list {
		if s != name {
			out = append(out, s)
		}
	}
	return out
}

// Completion is the answer of completing a task.
type Completion struct {
	Task    Task
	Rewards Rewards
}

// Complete completes a task ("manual") or force-completes it ("force"). A task
// that is already complete is returned as it is, with no second reward:
// completing is safe to retry.
func (s *Service) Complete(ctx context.Context, p auth.Principal, taskID uuid.UUID, by string, version *int) (*Completion, error) {
	var out *Completion
	err := s.db.TxOrJoin(ctx, func(tx *gorm.DB) (err error) {
		out, err = s.complete(ctx, tx, p, taskID, by, version)
		return err
	})
	return out, err
}

func (s *Service) complete(ctx context.Context, tx *gorm.DB, p auth.Principal, taskID uuid.UUID, by string, version *int) (*Completion, error) {
	t, err := s.lockVersion(tx, p, taskID, version)
	if err != nil {
		return nil, err
	}
	if t.Archived {
		return nil, errArchived
	}
	if t.Completed {
		return &Completion{Task: *t, Rewards: Rewards{Unlocked: []UnlockedAchievement{}}}, nil
	}
	now := s.clock.Now()
	t.Completed, t.CompletedAt, t.CompletedBy = true, &now, &by
	if err := s.save(tx, t, now); err != nil {
		return nil, err
	}
	if by == CompletedForce {
		if err := s.completeOpenSubtasks(tx, t.ID, now); err != nil {
			return nil, err
		}
		if err := tx.Where("id = ?", t.ID).Take(t).Error; err != nil {
			return nil, err
		}
	}
	rewards, err := s.publishCompleted(ctx, tx, p, t, now)
	if err != nil {
		return nil, err
	}
	return &Completion{Task: *t, Rewards: *rewards}, nil
}

func (s *Service) publishCompleted(ctx context.Context, tx *gorm.DB, p auth.Principal, t *Task, now time.Time) (*Rewards, error) {
	rewards := &Rewards{Unlocked: []UnlockedAchievement{}}
	by := CompletedManual
	if t.CompletedBy != nil {
		by = *t.CompletedBy
	}
	err := s.bus.Publish(ctx, tx, TaskCompleted{UserID: p.UserID, Timezone: p.Timezone, TaskID: t.ID,
		CompletedBy: by, At: now, EstimatedMinutes: t.EstimatedDuration, FocusTimeSeconds: t.FocusTimeSeconds,
		Rewards: rewards})
	return rewards, err
}

// lockVersion locks the task (see lockTask). When the caller sent a version
// it must be the current one (409 CONFLICT otherwise); without one, the
// change applies to whatever the task is now (last write wins): the row lock
// makes concurrent writers take turns instead of failing.
func (s *Service) lockVersion(tx *gorm.DB, p auth.Principal, taskID uuid.UUID, version *int) (*Task, error) {
	t, err := s.lockTask(tx, p.UserID, taskID)
	if err != nil {
		return nil, err
	}
	if version != nil && *version != t.Version {
		return nil, apperr.VersionConflict("task", t.Version)
	}
	return t, nil
}

// lockTask loads a task of the user and locks its row until tx ends. Every
// change to a task or to what hangs on it (subtasks, reminders, attached
// notes) takes this lock first, so such changes run one after another and
// always lock in the same order: parent before children.
func (s *Service) lockTask(tx *gorm.DB, userID, taskID uuid.UUID) (*Task, error) {
	return s.load(database.ForUpdate(tx), userID, taskID)
}

// save writes t with the next version, if the row still has t's version.
func (s *Service) save(tx *gorm.DB, t *Task, now time.Time) error {
	if err := database.SaveVersion(tx, t, now, errStale, "title", "description", "priority", "due_date",
		"estimated_duration", "completed", "completed_at", "completed_by", "hidden", "archived"); err != nil {
		return fmt.Errorf("save task %s: %w", t.ID, err)
	}
	return nil
}

// Delete removes a task into a tombstone, recoverable for the configured
// time. A user keeps at most the configured number of tombstones: making one
// more purges the oldest.
func (s *Service) Delete(ctx context.Context, p auth.Principal, taskID uuid.UUID) (*recovery.Buried, error) {
	var out *recovery.Buried
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := s.lockTask(tx, p.UserID, taskID)
		if err != nil {
			return err
		}
		snap := taskSnapshot{Task: *t, Attached: map[string]json.RawMessage{}}
		if snap.Subtasks, err = s.subtasksOf(tx, p.UserID, t.ID); err != nil {
			return err
		}
		if err := tx.Where("task_id = ? AND user_id = ?", t.ID, p.UserID).Order("scheduled_at, id").
			Find(&snap.Reminders).Error; err != nil {
			return err
		}
		attach := func(name string, v any) error {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			snap.Attached[name] = b
			return nil
		}
		if err := s.bus.Publish(ctx, tx, TaskDeleting{UserID: p.UserID, TaskID: t.ID, Attach: attach}); err != nil {
			return err
		}
		for _, child := range []any{&Subtask{}, &Reminder{}} {
			if err := tx.Where("task_id = ? AND user_id = ?", t.ID, p.UserID).Delete(child).Error; err != nil {
				return fmt.Errorf("delete task children: %w", err)
			}
		}
		buried, err := s.bin.Bury(ctx, tx, recovery.Item{UserID: p.UserID, EntityType: EntityTask, EntityID: t.ID,
			Title: t.Title, Snapshot: snap})
		if err != nil {
			return err
		}
		if err := database.One(tx.Where("id = ? AND user_id = ?", t.ID, p.UserID).Delete(&Task{}), errTaskNotFound); err != nil {
			return fmt.Errorf("delete task: %w", err)
		}
		if err := s.bus.Publish(ctx, tx, TaskDeleted{UserID: p.UserID, TaskID: t.ID, TombstoneID: buried.TombstoneID,
			At: s.clock.Now()}); err != nil {
			return err
		}
		out = buried
		return nil
	})
	return out, err
}

// MaxTasks is the user's effective active-task limit.
func (s *Service) MaxTasks(ctx context.Context, tx *gorm.DB, p auth.Principal) (int, error) {
	return perks.Limit(ctx, tx, s.perks, p.UserID, perks.MaxTasks, s.cfg.limits(p.Tier).MaxTasks)
}

// checkTaskLimit fails when the user has no room for one more active task.
// Reading the user's active-task count locks its row until the transaction
// ends, so check-then-insert is safe under concurrent requests.
func (s *Service) checkTaskLimit(ctx context.Context, tx *gorm.DB, p auth.Principal) error {
	active, err := lockActiveCount(tx, p.UserID)
	if err != nil {
		return err
	}
	if active < int64(s.cfg.limits(p.Tier).MaxTasks) {
		return nil // below the tier's own limit: perks (which only add) need not be read
	}
	limit, err := s.MaxTasks(ctx, tx, p)
	if err != nil {
		return err
	}
	if active >= int64(limit) {
		return apperr.LimitExceeded(perks.MaxTasks, limit)
	}
	return nil
}

// keptActiveCountSQL returns the user's number of active tasks (as n) and
// locks its row, when the user has one: a lock, where lockActiveCountSQL's
// upsert writes a new version of the row (which the insert's trigger then
// writes again).
const keptActiveCountSQL = `SELECT active AS n FROM task_counts WHERE user_id = ? FOR UPDATE`

// lockActiveCountSQL returns the user's number of active tasks (as n) and
// locks it (see lockActiveCount).
const lockActiveCountSQL = `INSERT INTO task_counts (user_id, active) VALUES (?, 0)
	ON CONFLICT (user_id) DO UPDATE SET active = task_counts.active RETURNING active AS n`

// lockActiveCount reads the user's number of active tasks and locks it
// until tx ends. Triggers on tasks keep the count (see the migration
// active_task_counts); the upsert makes the row of a user who never had a
// task, and on PostgreSQL its update takes the row lock the way
// SELECT ... FOR UPDATE would.
func lockActiveCount(tx *gorm.DB, userID uuid.UUID) (int64, error) {
	var active int64
	err := tx.Raw(lockActiveCountSQL, userID).Row().Scan(&active)
	if err != nil {
		return 0, fmt.Errorf("count active tasks: %w", err)
	}
	return active, nil
}

func (s *Service) checkTitle(title string) (string, error) {
	t := strings.TrimSpace(title)
	if t == "" {
		return "", apperr.Validation("title", "must not be empty")
	}
	if utf8.RuneCountInString(t) > MaxTitleLength {
		return "", apperr.Validation("title", "must be at most %d characters", MaxTitleLength)
	}
	return t, nil
}

func (s *Service) checkDescription(p auth.Principal, d string) error {
	max := s.cfg.limits(p.Tier).MaxDescriptionLength
	if utf8.RuneCountInString(d) > max {
		return apperr.Validation("description", "must be at most %d characters on the %s tier", max, p.Tier)
	}
	return nil
}

func (s *Service) checkDueDate(due *time.Time) error {
	if due == nil {
		return nil
	}
	latest := s.clock.Now().Add(time.Duration(s.cfg.MaxDueDaysAhead) * 24 * time.Hour)
	if due.After(latest) {
		return apperr.Validation("due_date", "must be at most %d days ahead", s.cfg.MaxDueDaysAhead)
	}
	return nil
}

func checkEstimate(minutes *int) error {
	if minutes != nil && (*minutes < minEstimatedDuration || *minutes > maxEstimatedDuration) {
		return apperr.Validation("estimated_duration", "must be %d-%d minutes", minEstimatedDuration, maxEstimatedDuration)
	}
	return nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func eqInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// OwnedTask implements Lookup.
func (s *Service) OwnedTask(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) (*TaskInfo, error) {
	t, err := s.load(tx.WithContext(ctx), userID, taskID)
	if err != nil {
		return nil, err
	}
	return t.info(), nil
}

// LockTask implements Lookup.
func (s *Service) LockTask(ctx context.Context, tx *gorm.DB, userID, taskID uuid.UUID) (*TaskInfo, error) {
	t, err := s.lockTask(tx.WithContext(ctx), userID, taskID)
	if err != nil {
		return nil, err
	}
	return t.info(), nil
}
