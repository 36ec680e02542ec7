package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/id"
)

var errTemplateNotFound = apperr.NotFound(apperr.CodeNotFound, "template")

// maxCatchUp bounds the occurrences one generation run makes per template,
// so a template whose worker was down long does not flood the task list.
const maxCatchUp = 10

// TemplateInput is the input of CreateTemplate and UpdateTemplate; nil
// fields are absent (for an update: unchanged).
type TemplateInput struct {
	Title                  *string
	Description            *string
	Priority               *string
	EstimatedDuration      *int
	ClearEstimatedDuration bool
	RRule                  *string
	Active                 *bool
	SubtaskTitles          *[]string
}

func location(p auth.Principal) *time.Location {
	if loc, err := time.LoadLocation(p.Timezone); err == nil && p.Timezone != "" {
		return loc
	}
	return time.UTC
}

// Templates lists the user's templates, newest first.
func (s *Service) Templates(ctx context.Context, p auth.Principal, w database.Window) (database.Paged[Template], error) {
	q := s.db.WithContext(ctx).Model(&Template{}).Where("user_id = ?", p.UserID)
	return database.Page(q, templateOrder, w, nil)
}

// templateOrder is the templates' order, newest first.
var templateOrder = database.Keyset[Template]{List: "templates", Column: "created_at",
	Key: func(t *Template) (time.Time, uuid.UUID) { return t.CreatedAt, t.ID }}

// Template returns one template of the user.
func (s *Service) Template(ctx context.Context, p auth.Principal, templateID uuid.UUID) (*Template, error) {
	return s.loadTemplate(s.db.WithContext(ctx), p.UserID, templateID)
}

func (s *Service) loadTemplate(tx *gorm.DB, userID, templateID uuid.UUID) (*Template, error) {
	return database.Owned[Template](tx, userID, templateID, errTemplateNotFound)
}

// CreateTemplate adds a recurring task. Its first occurrence is the first
// the rule gives from now on.
func (s *Service) CreateTemplate(ctx context.Context, p auth.Principal, in TemplateInput) (*Template, error) {
	if in.Title == nil || in.RRule == nil {
		return nil, apperr.Validation("rrule", "title and rrule are required")
	}
	now := s.clock.Now()
	t := Template{ID: id.New(), UserID: p.UserID, Priority: PriorityMedium, Active: true, SubtaskTitles: []string{},
		StartsAt: now, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.applyTemplate(p, &t, in, now); err != nil {
		return nil, err
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&t).Error; err != nil {
			return fmt.Errorf("create template: %w", err)
		}
		return s.bus.Publish(ctx, tx, templateChanged(&t, "created"))
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// applyTemplate validates in and applies it to t, recomputing the next
// occurrence when the rule or the active flag changes.
func (s *Service) applyTemplate(p auth.Principal, t *Template, in TemplateInput, now time.Time) error {
	in, err := s.checkTemplate(p, in)
	if err != nil {
		return err
	}
	if !applyTemplateFields(t, in) {
		return nil
	}
	return reschedule(t, location(p), in.Active, now)
}

// checkTemplate validates the fields of in and returns them cleaned
// (trimmed titles).
func (s *Service) checkTemplate(p auth.Principal, in TemplateInput) (TemplateInput, error) {
	if in.Title != nil {
		title, err := s.checkTitle(*in.Title)
		if err != nil {
			return in, err
		}
		in.Title = &title
	}
	if in.Description != nil {
		if err := s.checkDescription(p, *in.Description); err != nil {
			return in, err
		}
	}
	if err := checkEstimate(in.EstimatedDuration); err != nil {
		return in, err
	}
	if in.SubtaskTitles != nil {
		titles := make([]string, 0, len(*in.SubtaskTitles))
		for _, raw := range *in.SubtaskTitles {
			title, err := checkSubtaskTitle(raw)
			if err != nil {
				return in, apperr.Validation("subtask_titles", "%s", strings.TrimPrefix(err.(*apperr.Error).Message, "title: "))
			}
			titles = append(titles, title)
		}
		if limit := s.cfg.limits(p.Tier).MaxSubtasks; len(titles) > limit {
			return in, apperr.LimitExceeded("max_subtasks", limit)
		}
		in.SubtaskTitles = &titles
	}
	if in.RRule != nil {
		rule := strings.TrimSpace(*in.RRule)
		in.RRule = &rule
	}
	return in, nil
}

// applyTemplateFields puts in on t and reports whether the next occurrence
// must be computed again (a new rule, or the template turned active).
func applyTemplateFields(t *Template, in TemplateInput) (reschedule bool) {
	if in.Title != nil {
		t.Title = *in.Title
	}
	if in.Description != nil {
		t.Description = *in.Description
	}
	if in.Priority != nil {
		t.Priority = *in.Priority
	}
	if in.EstimatedDuration != nil {
		t.EstimatedDuration = in.EstimatedDuration
	}
	if in.ClearEstimatedDuration {
		t.EstimatedDuration = nil
	}
	if in.SubtaskTitles != nil {
		t.SubtaskTitles = *in.SubtaskTitles
	}
	if in.RRule != nil {
		t.RRule = *in.RRule
		reschedule = true
	}
	if in.Active != nil && *in.Active != t.Active {
		t.Active = *in.Active
		reschedule = reschedule || t.Active
	}
	return reschedule
}

// reschedule parses t's rule in loc and sets its next occurrence from now;
// a rule with none left makes the template inactive (or, when the caller
// asked to activate it, is refused).
func reschedule(t *Template, loc *time.Location, activate *bool, now time.Time) error {
	rule, err := ParseRule(t.RRule, loc, t.StartsAt)
	if err != nil {
		return apperr.Validation("rrule", "%v", err)
	}
	t.StartsAt = rule.Start()
	next, ok := rule.Next(now, true)
	if !ok {
		if activate != nil && *activate {
			return apperr.Validation("rrule", "the rule has no occurrence left to activate")
		}
		t.Active, t.NextDue = false, nil
		return nil
	}
	if t.Active {
		t.NextDue = &next
	}
	return nil
}

// UpdateTemplate changes a template.
func (s *Service) UpdateTemplate(ctx context.Context, p auth.Principal, templateID uuid.UUID, in TemplateInput) (*Template, error) {
	var out *Template
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := s.loadTemplate(database.ForUpdate(tx), p.UserID, templateID)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if err := s.applyTemplate(p, t, in, now); err != nil {
			return err
		}
		if err := s.saveTemplate(tx, t, now); err != nil {
			return err
		}
		out = t
		return s.bus.Publish(ctx, tx, templateChanged(t, "updated"))
	})
	return out, err
}

func (s *Service) saveTemplate(tx *gorm.DB, t *Template, now time.Time) error {
	err := database.SaveVersion(tx, t, now, apperr.VersionConflict("template", t.Version+1), "title", "description",
		"priority", "estimated_duration", "rrule", "starts_at", "next_due", "active", "subtask_titles")
	if err != nil && !apperr.Is(err, apperr.CodeConflict) {
		return fmt.Errorf("save template: %w", err)
	}
	return err
}

// DeleteTemplate removes a template; the tasks it made stay.
func (s *Service) DeleteTemplate(ctx context.Context, p auth.Principal, templateID uuid.UUID) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := s.loadTemplate(database.ForUpdate(tx), p.UserID, templateID)
		if err != nil {
			return err
		}
		if err := database.One(tx.Where("id = ?", t.ID).Delete(&Template{}), errTemplateNotFound); err != nil {
			return fmt.Errorf("delete template: %w", err)
		}
		return s.bus.Publish(ctx, tx, templateChanged(t, "deleted"))
	})
}

// Instantiate makes the template's next occurrence now, with its subtasks,
// and moves the template to the occurrence after it. An inactive (or
// exhausted) template makes a task without a due date.
func (s *Service) Instantiate(ctx context.Context, p auth.Principal, templateID uuid.UUID) (*Task, []Subtask, error) {
	var task *Task
	var subtasks []Subtask
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := s.loadTemplate(database.ForUpdate(tx), p.UserID, templateID)
		if err != nil {
			return err
		}
		if err := s.checkTaskLimit(ctx, tx, p); err != nil {
			return err
		}
		now := s.clock.Now()
		var due *time.Time
		if t.Active && t.NextDue != nil {
			rule, err := ParseRule(t.RRule, location(p), t.StartsAt)
			if err != nil {
				return fmt.Errorf("template %s: %w", t.ID, err)
			}
			// Occurrences the job already made are skipped.
			for range maxCatchUp {
				taken, err := s.occurrenceTaken(tx, t.ID, *t.NextDue)
				if err != nil {
					return err
				}
				if !taken {
					d := *t.NextDue
					due = &d
				}
				advance(t, rule)
				if due != nil || t.NextDue == nil {
					break
				}
			}
		}
		task, subtasks, err = s.createInstance(ctx, tx, p, t, due, now)
		if err != nil {
			return err
		}
		if task == nil {
			return apperr.New(apperr.KindConflict, apperr.CodeConflict, "this occurrence was just created; try again")
		}
		return s.saveTemplate(tx, t, now)
	})
	return task, subtasks, err
}

func advance(t *Template, rule *Rule) {
	next, ok := rule.Next(*t.NextDue, false)
	if !ok {
		t.NextDue, t.Active = nil, false
		return
	}
	t.NextDue = &next
}

func (s *Service) occurrenceTaken(tx *gorm.DB, templateID uuid.UUID, due time.Time) (bool, error) {
	var n int64
	err := tx.Model(&Task{}).Where("template_id = ? AND due_date = ?", templateID, due).Count(&n).Error
	return n > 0, err
}

// createInstance inserts a task for template t due at due, with its
// subtasks. It returns nil when that occurrence exists already (the unique
// index on template and due date decides, not luck).
func (s *Service) createInstance(ctx context.Context, tx *gorm.DB, p auth.Principal, t *Template, due *time.Time, now time.Time) (*Task, []Subtask, error) {
	task := Task{ID: id.New(), UserID: p.UserID, TemplateID: &t.ID, Title: t.Title, Description: t.Description,
		Priority: t.Priority, DueDate: due, EstimatedDuration: t.EstimatedDuration, Version: 1, CreatedAt: now, UpdatedAt: now}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&task)
	if res.Error != nil {
		return nil, nil, fmt.Errorf("create task from template: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil, nil
	}
	if err := s.bus.Publish(ctx, tx, taskCreated(&task)); err != nil {
		return nil, nil, err
	}
	var subtasks []Subtask
	if len(t.SubtaskTitles) > 0 {
		in := make([]NewSubtask, len(t.SubtaskTitles))
		for i, title := range t.SubtaskTitles {
			in[i] = NewSubtask{Title: title}
		}
		var err error
		if subtasks, err = s.addSubtasks(ctx, tx, p, task.ID, in); err != nil {
			return nil, nil, err
		}
		if err := tx.Where("id = ?", task.ID).Take(&task).Error; err != nil {
			return nil, nil, err
		}
	}
	return &task, subtasks, nil
}

// GenerateDue makes the task of every active template whose next
// occurrence has come (up to now + ahead), each template in its own
// transaction. It returns how many tasks it made.
func (s *Service) GenerateDue(ctx context.Context, ahead time.Duration) (int, error) {
	ctx = events.WithSource(ctx, events.SourceSystem)
	made := 0
	var lastErr error
	seen := map[uuid.UUID]bool{}
	for {
		horizon := s.clock.Now().Add(ahead)
		var due []Template
		err := s.db.WithContext(ctx).Where("active = ? AND next_due IS NOT NULL AND next_due <= ?", true, horizon).
			Order("next_due, id").Limit(100).Find(&due).Error
		if err != nil {
			return made, fmt.Errorf("find due templates: %w", err)
		}
		progressed := false
		for _, t := range due {
			if seen[t.ID] {
				continue
			}
			seen[t.ID] = true
			progressed = true
			n, err := s.generate(ctx, t.ID, horizon)
			made += n
			if err != nil {
				lastErr = fmt.Errorf("template %s: %w", t.ID, err)
			}
		}
		if !progressed {
			return made, lastErr
		}
	}
}

// generate makes the due occurrences of one template (at most maxCatchUp)
// and advances it. An occurrence that finds the user at their task limit is
// skipped, and the user is told (RecurringTaskSkipped).
func (s *Service) generate(ctx context.Context, templateID uuid.UUID, horizon time.Time) (int, error) {
	made := 0
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		made = 0 // a run after a deadlock counts afresh
		var t Template
		if err := database.ForUpdate(tx).Where("id = ?", templateID).Take(&t).Error; err != nil {
			if database.IsNotFound(err) {
				return nil
			}
			return err
		}
		if !t.Active || t.NextDue == nil || t.NextDue.After(horizon) {
			return nil
		}
		p, err := s.users.Principal(ctx, tx, t.UserID)
		if err != nil {
			return fmt.Errorf("load owner: %w", err)
		}
		rule, err := ParseRule(t.RRule, location(p), t.StartsAt)
		if err != nil {
			// A rule that no longer parses cannot produce anything.
			t.Active = false
			return s.saveTemplate(tx, &t, s.clock.Now())
		}
		now := s.clock.Now()
		for i := 0; i < maxCatchUp && t.NextDue != nil && !t.NextDue.After(horizon); i++ {
			due := *t.NextDue
			if err := s.checkTaskLimit(ctx, tx, p); err != nil {
				if !apperr.Is(err, apperr.CodeLimitExceeded) {
					return err
				}
				if err := s.bus.Publish(ctx, tx, RecurringTaskSkipped{UserID: t.UserID, TemplateID: t.ID,
					Title: t.Title, DueDate: due, Reason: err.Error()}); err != nil {
					return err
				}
			} else {
				task, _, err := s.createInstance(ctx, tx, p, &t, &due, now)
				if err != nil {
					return err
				}
				if task != nil {
					made++
				}
			}
			advance(&t, rule)
		}
		if !t.Active {
			if err := s.bus.Publish(ctx, tx, templateChanged(&t, "deactivated")); err != nil {
				return err
			}
		}
		return s.saveTemplate(tx, &t, now)
	})
	if errors.Is(err, context.Canceled) {
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	return made, nil
}
