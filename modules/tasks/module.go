// Package tasks owns tasks and everything that hangs on them: subtasks,
// recurring templates, reminder definitions, optimistic locking, tier
// limits, tombstones and recovery, and the activity log (written from the
// events every module publishes).
package tasks

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
)

// Module is the tasks module.
var Module = fx.Module("tasks",
	fx.Provide(
		newConfig,
		newService,
		newTombstones,
		newRecovery,
		func(s *Service) ReminderDelivery { return s },
		func(s *Service) Lookup { return s },
		func(t *tombstones) Tombstones { return t },
		platform.AsRoutes(newHandlers),
		platform.AsModels(models),
		events.AsSubscriber(recordActivity),
		jobs.AsWorker(newRecurringWorker),
		jobs.AsPeriodic(recurringSchedule),
		jobs.AsWorker(newPurgeWorker),
		jobs.AsPeriodic(purgeSchedule),
		jobs.AsWorker(newActivityPurgeWorker),
		jobs.AsPeriodic(activityPurgeSchedule),
	),
)

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
	TombstoneTTL      time.Duration `mapstructure:"tombstone_ttl"`
	MaxTombstones     int           `mapstructure:"max_tombstones"`
	RecurringInterval time.Duration `mapstructure:"recurring_interval"`
	GenerateAhead     time.Duration `mapstructure:"generate_ahead"`
	ActivityRetention time.Duration `mapstructure:"activity_retention"`
	PurgeInterval     time.Duration `mapstructure:"purge_interval"`

	Tiers config.Tiered[TierLimits] `mapstructure:"-"`
}

// Validate checks the tasks section.
func (c Config) Validate() error {
	switch {
	case c.MaxDueDaysAhead < 1:
		return config.Invalid("max_due_days_ahead", "must be at least 1")
	case c.TombstoneTTL <= 0:
		return config.Invalid("tombstone_ttl", "must be positive")
	case c.MaxTombstones < 1:
		return config.Invalid("max_tombstones", "must be at least 1")
	case c.RecurringInterval <= 0:
		return config.Invalid("recurring_interval", "must be positive")
	case c.GenerateAhead < 0:
		return config.Invalid("generate_ahead", "must not be negative")
	case c.ActivityRetention <= 0:
		return config.Invalid("activity_retention", "must be positive")
	case c.PurgeInterval <= 0:
		return config.Invalid("purge_interval", "must be positive")
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
	return c, err
}

// limits returns the base limits of tier (free for an unknown tier).
func (c Config) limits(tier string) TierLimits { return c.Tiers.For(tier) }

func models() platform.Models {
	return platform.Models{Module: "tasks", List: []any{&Task{}, &Subtask{}, &Template{}, &Reminder{},
		&Tombstone{}, &Activity{}}}
}
