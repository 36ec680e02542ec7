// Package gamification owns what rewards the work: per-user stats (tasks
// completed, streaks in the user's time zone, focus completions, notes
// converted), the achievement catalog and its perks (which raise the
// limits other modules check), and focus sessions. It reacts to the tasks
// and notes modules' events in their transactions.
package gamification

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/gamification/perks"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the gamification module; it rewards the tasks module's
// completions and adds time to its tasks.
var Module = platform.Module{
	Name:  "gamification",
	Needs: []string{"tasks"},
	Option: fx.Module("gamification",
		userdata.Contribute(
			userdata.Table("stats", "user_stats", "user_id"),
			userdata.Table("achievements", "user_achievements", "user_id"),
			userdata.Table("focus_sessions", "focus_sessions", "user_id"),
			userdata.Secret("which completions the stats counted: bookkeeping of the exported stats", "counted_completions", "user_id"),
		),
		fx.Provide(
			newConfig,
			newService,
			newPerkBook,
			func(b *perkBook) perks.Bonus { return b },
			platform.AsRoutes(newHandlers),
			changes.AsEntity(focusEntity),
			changes.AsEntity(achievementEntity),
			changes.AsEntity(statsEntity),
			platform.AsModels(models),
			events.AsSubscriber(rewardCompletions),
			events.AsSubscriber(countConversions),
			jobs.AsHousekeeping(streakJob),
			jobs.AsHousekeeping(focusAutoEndJob),
		),
	),
}

// Achievement is one entry of the catalog (configuration).
type Achievement struct {
	Code      string `mapstructure:"code"`
	Name      string `mapstructure:"name"`
	Message   string `mapstructure:"message"`
	Category  string `mapstructure:"category"`
	Threshold int    `mapstructure:"threshold"`
	PerkType  string `mapstructure:"perk_type"`
	PerkValue int    `mapstructure:"perk_value"`
}

// Categories of achievements: the stat each one counts.
const (
	CategoryTasks   = "tasks"
	CategoryStreaks = "streaks"
	CategoryFocus   = "focus"
	CategoryNotes   = "notes"
)

// BaseLimits are a tier's limits before perks (the keys of limits.<tier>
// this module reports).
type BaseLimits struct {
	MaxTasks       int `mapstructure:"max_tasks"`
	MaxNotes       int `mapstructure:"max_notes"`
	DailyAICredits int `mapstructure:"daily_ai_credits"`
}

// Config is the gamification section and the tiers' base limits.
type Config struct {
	StreakCheckInterval  time.Duration `mapstructure:"streak_check_interval"`
	FocusMaxDuration     time.Duration `mapstructure:"focus_max_duration"`
	FocusAutoEndInterval time.Duration `mapstructure:"focus_autoend_interval"`
	Achievements         []Achievement `mapstructure:"achievements"`

	Tiers config.Tiered[BaseLimits] `mapstructure:"-"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.StreakCheckInterval <= 0:
		return config.Invalid("streak_check_interval", "must be positive")
	case c.FocusMaxDuration <= 0:
		return config.Invalid("focus_max_duration", "must be positive")
	case c.FocusAutoEndInterval <= 0:
		return config.Invalid("focus_autoend_interval", "must be positive")
	}
	seen := map[string]bool{}
	for i, a := range c.Achievements {
		key := fmt.Sprintf("achievements[%d]", i)
		switch {
		case a.Code == "" || seen[a.Code]:
			return config.Invalid(key, "needs a unique code")
		case a.Category != CategoryTasks && a.Category != CategoryStreaks && a.Category != CategoryFocus &&
			a.Category != CategoryNotes:
			return config.Invalid(key, "category must be tasks, streaks, focus or notes, got %q", a.Category)
		case a.Threshold < 1:
			return config.Invalid(key, "threshold must be at least 1")
		case a.PerkType != "" && !slices.Contains(perks.Kinds, a.PerkType):
			return config.Invalid(key, "perk_type must be max_tasks, max_notes or daily_credits, got %q", a.PerkType)
		case a.PerkType != "" && a.PerkValue < 1:
			return config.Invalid(key, "perk_value must be at least 1")
		}
		seen[a.Code] = true
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	if err := cfg.Section("gamification", &c); err != nil {
		return c, err
	}
	var err error
	c.Tiers, err = config.LoadTiered[BaseLimits](cfg, "limits", auth.TierFree)
	return c, err
}

func models() platform.Models {
	return platform.Models{Module: "gamification", List: []any{&Stats{}, &UserAchievement{}, &CountedCompletion{},
		&FocusSession{}}}
}
