package gamification

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
)

// AchievementDTO is one achievement of the catalog.
type AchievementDTO struct {
	ID        string  `json:"id" example:"tasks_5"`
	Name      string  `json:"name"`
	Message   string  `json:"message"`
	Category  string  `json:"category" enum:"tasks,streaks,focus,notes"`
	Threshold int     `json:"threshold"`
	PerkType  *string `json:"perk_type" enum:"max_tasks,max_notes,daily_credits" nullable:"true"`
	PerkValue *int    `json:"perk_value" nullable:"true"`
}

func toAchievementDTO(a *Achievement) AchievementDTO {
	out := AchievementDTO{ID: a.Code, Name: a.Name, Message: a.Message, Category: a.Category, Threshold: a.Threshold}
	if a.PerkType != "" {
		t, v := a.PerkType, a.PerkValue
		out.PerkType, out.PerkValue = &t, &v
	}
	return out
}

// StatsDTO are a user's counters.
type StatsDTO struct {
	LifetimeTasksCompleted int     `json:"lifetime_tasks_completed"`
	CurrentStreak          int     `json:"current_streak"`
	LongestStreak          int     `json:"longest_streak"`
	LastCompletionDate     *string `json:"last_completion_date" nullable:"true" doc:"YYYY-MM-DD in the user's time zone"`
	FocusCompletions       int     `json:"focus_completions"`
	NotesConverted         int     `json:"notes_converted"`
}

// LimitsDTO are a user's effective limits (tier base plus perks).
type LimitsDTO struct {
	MaxTasks       int `json:"max_tasks"`
	MaxNotes       int `json:"max_notes"`
	DailyAICredits int `json:"daily_ai_credits"`
}

// ProgressDTO is how far a user is toward one achievement.
type ProgressDTO struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Current   int    `json:"current"`
	Threshold int    `json:"threshold"`
	Unlocked  bool   `json:"unlocked"`
}

// ProfileDTO is the answer of /achievements/me.
type ProfileDTO struct {
	Stats           StatsDTO      `json:"stats"`
	Unlocked        []string      `json:"unlocked"`
	Progress        []ProgressDTO `json:"progress"`
	EffectiveLimits LimitsDTO     `json:"effective_limits"`
}

// FocusSessionDTO is one focus session.
type FocusSessionDTO struct {
	ID              uuid.UUID  `json:"id" format:"uuid"`
	UserID          uuid.UUID  `json:"user_id" format:"uuid"`
	TaskID          uuid.UUID  `json:"task_id" format:"uuid"`
	StartedAt       time.Time  `json:"started_at"`
	EndedAt         *time.Time `json:"ended_at" nullable:"true"`
	DurationSeconds *int       `json:"duration_seconds" nullable:"true"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

func toFocusDTO(fs *FocusSession) FocusSessionDTO {
	return FocusSessionDTO{ID: fs.ID, UserID: fs.UserID, TaskID: fs.TaskID, StartedAt: fs.StartedAt.UTC(),
		EndedAt: httpx.UTCPtr(fs.EndedAt), DurationSeconds: fs.DurationSeconds, CreatedAt: fs.CreatedAt.UTC(),
		UpdatedAt: fs.UpdatedAt.UTC()}
}

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

type userPath struct {
	ID string `path:"id" format:"uuid" doc:"The caller's own id"`
}

func (in *userPath) PathID() string { return in.ID }

type idPath struct {
	ID   string `path:"id" format:"uuid"`
	Body *httpx.EmptyBody
}

func (in *idPath) PathID() string { return in.ID }

type startFocusInput struct {
	Body struct {
		TaskID uuid.UUID `json:"task_id" doc:"The task to focus on"`
	} `nameHint:"FocusStart"`
}

type taskFocusInput struct {
	ID string `path:"id" format:"uuid" doc:"Task id"`
	httpx.Page
}

func (in *taskFocusInput) PathID() string { return in.ID }

type endActiveInput struct {
	Body *httpx.EmptyBody
}

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/achievements", "achievements-list",
		"The achievement catalog", "Achievements"), h.catalog)
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/achievements/me", "achievements-me",
		"The caller's stats, unlocked achievements, progress and effective limits", "Achievements"), httpx.Handle(auth.Caller, h.profile, toProfileDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/users/{id}/achievements", "achievements-user",
		"Same as /achievements/me, for the caller's own id", "Achievements"), httpx.HandleID(auth.Caller, h.userProfile, toProfileDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/achievements/stats", "achievements-stats",
		"The caller's stats", "Achievements"), httpx.Handle(auth.Caller, h.profile, toStatsDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/achievements/limits", "achievements-limits",
		"The caller's effective limits (tier plus perks)", "Achievements"), httpx.Handle(auth.Caller, h.profile, toLimitsDTO))

	for id, path := range map[string]string{"focus-start": "/api/v1/focus-sessions", "focus-start-alias": "/api/v1/focus/start"} {
		huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, path, id,
			"Start focusing on a task (a running session ends first)", "Focus")), httpx.Handle(auth.Caller, h.start, toFocusDTO))
	}
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/focus-sessions/{id}/end", "focus-end",
		"End a focus session (its time goes to its task)", "Focus"), httpx.HandleID(auth.Caller, h.end, toFocusDTO))
	for id, path := range map[string]string{"focus-end-active": "/api/v1/focus/end", "focus-stop": "/api/v1/focus/stop"} {
		huma.Register(api, httpx.Route(http.MethodPost, path, id, "End the running focus session", "Focus"), httpx.Handle(auth.Caller, h.endActive, toFocusDTO))
	}
	for id, path := range map[string]string{"focus-active": "/api/v1/focus-sessions/active", "focus-active-alias": "/api/v1/focus/active"} {
		huma.Register(api, httpx.Route(http.MethodGet, path, id, "The running focus session (404 when none)", "Focus"), httpx.Handle(auth.Caller, h.active, toFocusDTO))
	}
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/focus-sessions", "focus-list",
		"The caller's focus sessions, newest first", "Focus"), httpx.HandleList(auth.Caller, h.list, toFocusDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/focus-sessions", "focus-list-task",
		"A task's focus sessions, newest first", "Focus"), httpx.HandleListID(auth.Caller, h.listOfTask, toFocusDTO))
}

func (h *handlers) catalog(ctx context.Context, _ *struct{}) (*httpx.DataOutput[[]AchievementDTO], error) {
	return httpx.Reply(httpx.Map(h.svc.Catalog(), toAchievementDTO)), nil
}

func (h *handlers) profile(ctx context.Context, p auth.Principal, _ *struct{}) (*Profile, error) {
	return h.svc.Profile(ctx, p)
}

// userProfile is the caller's profile under their own id (no one else's).
func (h *handlers) userProfile(ctx context.Context, p auth.Principal, id uuid.UUID, _ *userPath) (*Profile, error) {
	if id != p.UserID {
		return nil, apperr.NotFound(apperr.CodeNotFound, "user")
	}
	return h.svc.Profile(ctx, p)
}

func toProfileDTO(pr *Profile) ProfileDTO {
	out := ProfileDTO{
		Stats:           toStatsDTO(pr),
		Unlocked:        []string{},
		Progress:        make([]ProgressDTO, len(pr.Progress)),
		EffectiveLimits: toLimitsDTO(pr),
	}
	for i, g := range pr.Progress {
		if g.Unlocked {
			out.Unlocked = append(out.Unlocked, g.Code)
		}
		out.Progress[i] = ProgressDTO{ID: g.Code, Name: g.Name, Current: g.Current, Threshold: g.Threshold, Unlocked: g.Unlocked}
	}
	return out
}

func toStatsDTO(pr *Profile) StatsDTO {
	st := &pr.Stats
	return StatsDTO{LifetimeTasksCompleted: st.LifetimeTasksCompleted, CurrentStreak: st.CurrentStreak,
		LongestStreak: st.LongestStreak, LastCompletionDate: st.LastCompletionDate,
		FocusCompletions: st.FocusCompletions, NotesConverted: st.NotesConverted}
}

func toLimitsDTO(pr *Profile) LimitsDTO {
	return LimitsDTO{MaxTasks: pr.Limits.MaxTasks, MaxNotes: pr.Limits.MaxNotes, DailyAICredits: pr.Limits.DailyAICredits}
}

func (h *handlers) start(ctx context.Context, p auth.Principal, in *startFocusInput) (*FocusSession, error) {
	return h.svc.StartFocus(ctx, p, in.Body.TaskID)
}

func (h *handlers) end(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (*FocusSession, error) {
	return h.svc.EndFocus(ctx, p, id)
}

func (h *handlers) endActive(ctx context.Context, p auth.Principal, _ *endActiveInput) (*FocusSession, error) {
	return h.svc.EndActiveFocus(ctx, p)
}

func (h *handlers) active(ctx context.Context, p auth.Principal, _ *struct{}) (*FocusSession, error) {
	return h.svc.ActiveFocus(ctx, p)
}

func (h *handlers) list(ctx context.Context, p auth.Principal, in *httpx.Page) (database.Paged[FocusSession], error) {
	return h.svc.FocusSessions(ctx, p, nil, in.Window())
}

func (h *handlers) listOfTask(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *taskFocusInput) (database.Paged[FocusSession], error) {
	return h.svc.FocusSessions(ctx, p, &taskID, in.Page.Window())
}
