// Package tasks owns tasks and what hangs on them: subtasks, recurring
// templates and reminder definitions, with optimistic locking and tier
// limits. Deleted tasks go to the recovery module's bin; the activity module
// logs the events published here.
package tasks

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the tasks module; deleted tasks go to the recovery module's bin.
var Module = platform.Module{
	Name:  "tasks",
	Needs: []string{"recovery"},
	Option: fx.Module("tasks",
		userdata.Contribute(
			userdata.Table("tasks", "tasks", "user_id"),
			userdata.Table("subtasks", "subtasks", "user_id"),
			userdata.Table("templates", "task_templates", "user_id"),
			userdata.Table("reminders", "reminders", "user_id"),
			userdata.Table("calendar_feed", "calendar_feeds", "user_id", "secret_hash"),
			userdata.Derived("counts of the user's tasks by state, derived from the tasks", "task_counts", "user_id"),
		),
		fx.Provide(
			newConfig,
			newService,
			func(s *Service) ReminderDelivery { return s },
			func(s *Service) Lookup { return s },
			func(s *Service) Editor { return s },
			func(s *Service) Focus { return s },
			platform.AsRoutes(newHandlers),
			changes.AsEntity(taskEntity),
			changes.AsEntity(subtaskEntity),
			changes.AsEntity(reminderEntity),
			changes.AsEntity(templateEntity),
			httpx.AsJSONItem(taskJSON),
			platform.AsModels(models),
			recovery.AsRecoverer(newRecoverer),
			jobs.AsHousekeeping(recurringJob),
		),
	),
}

// TierLimits are the limits of one tier that tasks enforce.
type TierLimits struct {
	MaxTasks             int `mapstructure:"max_tasks"`
	MaxSubtasks          int `mapstructure:"max_subtasks"`
	MaxDescriptionLength int `mapstructure:"max_description_length"`
	MaxReminders         int `mapstructure:"max_reminders"`
}

// Config is what the tasks module reads: the tasks section and the tier
// limits.
type Config struct {
	MaxDueDaysAhead   int           `mapstructure:"max_due_days_ahead"`
	RecurringInterval time.Duration `mapstructure:"recurring_interval"`
	GenerateAhead     time.Duration `mapstructure:"generate_ahead"`

	Tiers config.Tiered[TierLimits] `mapstructure:"-"`
	// PublicURL is where calendar apps reach the API (server.public_url).
	PublicURL string `mapstructure:"-"`
}

// Validate checks the tasks section.
func (c Config) Validate() error {
	switch {
	case c.MaxDueDaysAhead < 1:
		return config.Invalid("max_due_days_ahead", "must be at least 1")
	case c.RecurringInterval <= 0:
		return config.Invalid("recurring_interval", "must be positive")
	case c.GenerateAhead < 0:
		return config.Invalid("generate_ahead", "must not be negative")
	}
	return nil
}

// Validate checks one tier's limits.
func (l TierLimits) Validate() error {
	switch {
	case l.MaxTasks < 1:
		return config.Invalid("max_tasks", "must be at least 1")
	case l.MaxSubtasks < 0:
		return config.Invalid("max_subtasks", "must not be negative")
	case l.MaxDescriptionLength < 1:
		return config.Invalid("max_description_length", "must be at least 1")
	case l.MaxReminders < 0:
		return config.Invalid("max_reminders", "must not be negative")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	if err := cfg.Section("tasks", &c); err != nil {
		return c, err
	}
	var err error
	c.Tiers, err = config.LoadTiered[TierLimits](cfg, "limits", auth.TierFree)
	c.PublicURL = cfg.PublicBaseURL()
	return c, err
}

// limits returns the base limits of tier (free for an unknown tier).
func (c Config) limits(tier string) TierLimits { return c.Tiers.For(tier) }

func models() platform.Models {
	return platform.Models{Module: "tasks", List: []any{&Task{}, &Subtask{}, &Template{}, &Reminder{}, &CalendarFeed{}}}
}
