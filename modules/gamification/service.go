package gamification

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/gamification/perks"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
)

const day = "2006-01-02"

// errStatsChanged means the stats row changed under its lock, which cannot
// happen; the client is told to try again all the same.
var errStatsChanged = apperr.New(apperr.KindConflict, apperr.CodeConflict, "your stats changed meanwhile; try again")

// Service holds the rules of stats, streaks, achievements and focus; the
// only writer of this module's tables.
type Service struct {
	db     *database.DB
	bus    *events.Bus
	clock  clock.Clock
	cfg    Config
	users  auth.Users
	tasks  tasks.Lookup
	focus  tasks.Focus
	byCode map[string]Achievement
}

type serviceParams struct {
	fx.In

	DB    *database.DB
	Bus   *events.Bus
	Clock clock.Clock
	Cfg   Config
	Users auth.Users
	Tasks tasks.Lookup
	Focus tasks.Focus
}

func newService(p serviceParams) *Service {
	s := &Service{db: p.DB, bus: p.Bus, clock: p.Clock, cfg: p.Cfg, users: p.Users, tasks: p.Tasks, focus: p.Focus,
		byCode: map[string]Achievement{}}
	for _, a := range p.Cfg.Achievements {
		s.byCode[a.Code] = a
	}
	return s
}

// localDay is the calendar day of t in the zone named tz (UTC when the
// name is unknown).
func localDay(t time.Time, tz string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	return t.In(loc).Format(day)
}

// dayBefore is the calendar day before d (YYYY-MM-DD).
func dayBefore(d string) string {
	t, err := time.Parse(day, d)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, -1).Format(day)
}

// counted puts one counted completion on the local day today into st.
func counted(st *Stats, today string) {
	st.LifetimeTasksCompleted++
	st.Streak.Complete(today)
}

// lockStats returns the user's stats, created at zero the first time,
// locked until tx ends.
func (s *Service) lockStats(tx *gorm.DB, userID uuid.UUID) (*Stats, error) {
	now := s.clock.Now()
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&Stats{UserID: userID, Version: 1, CreatedAt: now, UpdatedAt: now}).Error; err != nil {
		return nil, fmt.Errorf("create stats: %w", err)
	}
	var st Stats
	if err := database.ForUpdate(tx).Where("user_id = ?", userID).Take(&st).Error; err != nil {
		return nil, fmt.Errorf("load stats: %w", err)
	}
	return &st, nil
}

func (s *Service) saveStats(tx *gorm.DB, st *Stats) error {
	return database.SaveVersion(tx, st, s.clock.Now(), errStatsChanged, "lifetime_tasks_completed", "current_streak",
		"longest_streak", "last_completion_date", "streak_checked_on", "focus_completions", "notes_converted")
}

// rewardCompletion counts a completion (once per task and local day),
// checks the focus rule and unlocks what the new numbers reach.
func (s *Service) rewardCompletion(ctx context.Context, tx *gorm.DB, e tasks.TaskCompleted) error {
	st, err := s.lockStats(tx, e.UserID)
	if err != nil {
		return err
	}
	today := localDay(e.At, e.Timezone)
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&CountedCompletion{TaskID: e.TaskID, LocalDate: today, UserID: e.UserID, CreatedAt: s.clock.Now()})
	if res.Error != nil {
		return fmt.Errorf("count completion: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		counted(st, today)
		focused, err := s.focusedEnough(tx, e)
		if err != nil {
			return err
		}
		if focused {
			st.FocusCompletions++
		}
		if err := s.saveStats(tx, st); err != nil {
			return err
		}
	}
	unlocked, err := s.unlock(ctx, tx, st)
	if err != nil {
		return err
	}
	if e.Rewards != nil {
		e.Rewards.Unlocked = append(e.Rewards.Unlocked, unlocked...)
		e.Rewards.Streak = st.CurrentStreak
	}
	return nil
}

// focusedEnough says whether the completion counts as a focus completion:
// a session on the task is running, and the task's focus time (with that
// session's) is at least half its estimate (any time without one).
func (s *Service) focusedEnough(tx *gorm.DB, e tasks.TaskCompleted) (bool, error) {
	var running FocusSession
	err := tx.Where("user_id = ? AND task_id = ? AND ended_at IS NULL", e.UserID, e.TaskID).Take(&running).Error
	if database.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	spent := e.FocusTimeSeconds + s.elapsed(&running, e.At)
	if e.EstimatedMinutes == nil {
		return spent > 0, nil
	}
	return spent*2 >= *e.EstimatedMinutes*60, nil
}

// countConversion counts a note that became a task.
func (s *Service) countConversion(ctx context.Context, tx *gorm.DB, userID uuid.UUID) error {
	st, err := s.lockStats(tx, userID)
	if err != nil {
		return err
	}
	st.NotesConverted++
	if err := s.saveStats(tx, st); err != nil {
		return err
	}
	_, err = s.unlock(ctx, tx, st)
	return err
}

// value is the stat an achievement of category counts.
func value(st *Stats, category string) int {
	switch category {
	case CategoryTasks:
		return st.LifetimeTasksCompleted
	case CategoryStreaks:
		return st.CurrentStreak
	case CategoryFocus:
		return st.FocusCompletions
	case CategoryNotes:
		return st.NotesConverted
	}
	return 0
}

// unlock records, once each, the achievements the stats reach, tells the
// user (AchievementUnlocked) and returns them.
func (s *Service) unlock(ctx context.Context, tx *gorm.DB, st *Stats) ([]tasks.UnlockedAchievement, error) {
	have, err := unlockedCodes(tx, st.UserID)
	if err != nil {
		return nil, err
	}
	out := []tasks.UnlockedAchievement{}
	for _, a := range s.cfg.Achievements {
		if have[a.Code] || value(st, a.Category) < a.Threshold {
			continue
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&UserAchievement{UserID: st.UserID, AchievementCode: a.Code, UnlockedAt: s.clock.Now()})
		if res.Error != nil {
			return nil, fmt.Errorf("unlock %s: %w", a.Code, res.Error)
		}
		if res.RowsAffected == 0 {
			continue
		}
		if err := s.bus.Publish(ctx, tx, AchievementUnlocked{UserID: st.UserID, Code: a.Code, Name: a.Name,
			Message: a.Message, PerkType: a.PerkType, PerkValue: a.PerkValue}); err != nil {
			return nil, err
		}
		u := tasks.UnlockedAchievement{AchievementID: a.Code, AchievementName: a.Name}
		if a.PerkType != "" {
			u.Perk = &tasks.Perk{Type: a.PerkType, Value: a.PerkValue}
		}
		out = append(out, u)
	}
	return out, nil
}

func unlockedCodes(tx *gorm.DB, userID uuid.UUID) (map[string]bool, error) {
	var codes []string
	if err := tx.Model(&UserAchievement{}).Where("user_id = ?", userID).Pluck("achievement_code", &codes).Error; err != nil {
		return nil, fmt.Errorf("load achievements: %w", err)
	}
	out := make(map[string]bool, len(codes))
	for _, c := range codes {
		out[c] = true
	}
	return out, nil
}

// perkBook answers the Perks faces. It needs nothing but the database: the
// tasks module asks it while the Service itself needs the tasks module.
type perkBook struct {
	byCode map[string]Achievement
}

func newPerkBook(cfg Config) *perkBook {
	b := &perkBook{byCode: map[string]Achievement{}}
	for _, a := range cfg.Achievements {
		b.byCode[a.Code] = a
	}
	return b
}

// PerkBonus implements perks.Bonus.
func (b *perkBook) PerkBonus(ctx context.Context, tx *gorm.DB, userID uuid.UUID, kind string) (int, error) {
	have, err := unlockedCodes(tx.WithContext(ctx), userID)
	if err != nil {
		return 0, err
	}
	return bonuses(b.byCode, have)[kind], nil
}

// bonuses sums, per limit kind, the perks of the unlocked achievements.
func bonuses(byCode map[string]Achievement, unlocked map[string]bool) map[string]int {
	out := map[string]int{}
	for code := range unlocked {
		if a, ok := byCode[code]; ok && a.PerkType != "" {
			out[a.PerkType] += a.PerkValue
		}
	}
	return out
}

// Profile is a user's stats, unlocked achievements and effective limits.
type Profile struct {
	Stats    Stats
	Unlocked map[string]bool
	Limits   Limits
	// Progress is each achievement of the catalog, in its order: how far
	// the stats are toward it.
	Progress []Progress
}

// Progress is how far a user is toward one achievement.
type Progress struct {
	Code      string
	Name      string
	Current   int
	Threshold int
	Unlocked  bool
}

// Catalog is every achievement, in the configured order.
func (s *Service) Catalog() []Achievement { return s.cfg.Achievements }

// progress is how far st is toward each achievement of catalog.
func progress(catalog []Achievement, st *Stats, unlocked map[string]bool) []Progress {
	out := make([]Progress, len(catalog))
	for i, a := range catalog {
		out[i] = Progress{Code: a.Code, Name: a.Name, Current: value(st, a.Category), Threshold: a.Threshold,
			Unlocked: unlocked[a.Code]}
	}
	return out
}

// Limits are a user's effective limits: the tier's base plus perks.
type Limits struct {
	MaxTasks       int
	MaxNotes       int
	DailyAICredits int
}

// Profile returns the caller's stats, achievements and limits.
func (s *Service) Profile(ctx context.Context, p auth.Principal) (*Profile, error) {
	db := s.db.WithContext(ctx)
	out := &Profile{Stats: Stats{UserID: p.UserID}}
	err := db.Where("user_id = ?", p.UserID).Take(&out.Stats).Error
	if err != nil && !database.IsNotFound(err) {
		return nil, fmt.Errorf("load stats: %w", err)
	}
	if out.Unlocked, err = unlockedCodes(db, p.UserID); err != nil {
		return nil, err
	}
	base, bonus := s.cfg.Tiers.For(p.Tier), bonuses(s.byCode, out.Unlocked)
	out.Limits = Limits{MaxTasks: base.MaxTasks + bonus[perks.MaxTasks], MaxNotes: base.MaxNotes + bonus[perks.MaxNotes],
		DailyAICredits: base.DailyAICredits + bonus[perks.DailyCredits]}
	out.Progress = progress(s.cfg.Achievements, &out.Stats, out.Unlocked)
	return out, nil
}

// BreakStaleStreaks sets to 0 the streaks of users whose last completion
// is before yesterday in their own time zone. Each user is looked at once
// per local day (so a run on the same day changes nothing), whatever the
// DST change or zone change between runs. It returns how many broke.
func (s *Service) BreakStaleStreaks(ctx context.Context) (int, error) {
	broken := 0
	after := uuid.Nil
	for {
		var batch []Stats
		err := s.db.WithContext(ctx).Where("current_streak > 0 AND user_id > ?", after).
			Order("user_id").Limit(500).Find(&batch).Error
		if err != nil {
			return broken, fmt.Errorf("find streaks: %w", err)
		}
		if len(batch) == 0 {
			return broken, nil
		}
		after = batch[len(batch)-1].UserID
		ids := make([]uuid.UUID, len(batch))
		for i := range batch {
			ids[i] = batch[i].UserID
		}
		users, err := s.users.Principals(ctx, s.db.WithContext(ctx), ids)
		if err != nil {
			return broken, err
		}
		now := s.clock.Now()
		for i := range batch {
			n, err := s.checkStreak(ctx, &batch[i], localDay(now, users[batch[i].UserID].Timezone))
			if err != nil {
				return broken, err
			}
			broken += n
		}
	}
}

// checkStreak looks at one user's streak on their local day today.
func (s *Service) checkStreak(ctx context.Context, st *Stats, today string) (int, error) {
	changed, broke := st.Streak.Check(today)
	if !changed {
		return 0, nil
	}
	// Not locked: a completion that lands meanwhile wins (it changed the
	// version) and this look changes nothing.
	err := database.SaveVersion(s.db.WithContext(ctx), st, s.clock.Now(), errStatsChanged, "streak_checked_on", "current_streak")
	switch {
	case errors.Is(err, errStatsChanged):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("check streak: %w", err)
	case broke:
		return 1, nil
	}
	return 0, nil
}
