package activity

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
)

// EntryDTO is one activity entry of the API.
type EntryDTO struct {
	ID         uuid.UUID      `json:"id" format:"uuid"`
	UserID     uuid.UUID      `json:"user_id" format:"uuid"`
	EntityType string         `json:"entity_type" enum:"task,subtask,note,reminder,subscription,achievement,ai_chat"`
	EntityID   uuid.UUID      `json:"entity_id" format:"uuid"`
	Action     string         `json:"action"`
	Source     string         `json:"source" enum:"user,ai,system"`
	ExtraData  map[string]any `json:"extra_data"`
	RequestID  *string        `json:"request_id" nullable:"true"`
	CreatedAt  time.Time      `json:"created_at"`
}

func toDTO(e *Entry) EntryDTO {
	extra := map[string]any{}
	_ = json.Unmarshal([]byte(e.ExtraData), &extra)
	return EntryDTO{ID: e.ID, UserID: e.UserID, EntityType: e.EntityType, EntityID: e.EntityID, Action: e.Action,
		Source: e.Source, ExtraData: extra, RequestID: e.RequestID, CreatedAt: e.CreatedAt.UTC()}
}

// Query is the query of the activity list (exported so that Huma can fill
// it where it is embedded).
type Query struct {
	httpx.Page
	EntityType string                 `query:"entity_type" enum:"task,subtask,note,reminder,subscription,achievement,ai_chat"`
	EntityID   httpx.Param[uuid.UUID] `query:"entity_id"`
	From       httpx.Param[time.Time] `query:"from"`
	To         httpx.Param[time.Time] `query:"to"`
}

type userQuery struct {
	UserID string `path:"id" format:"uuid" doc:"The caller's own id"`
	Query
}

func (in *userQuery) PathID() string { return in.UserID }

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/activity", "activity-list",
		"The user's activity log, newest first", "Activity"), httpx.HandleList(auth.Caller, h.list, toDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/users/{id}/activity", "activity-list-user",
		"Same as /activity, for the caller's own id", "Activity"), httpx.HandleListID(auth.Caller, h.listOfUser, toDTO))
}

func (h *handlers) list(ctx context.Context, p auth.Principal, in *Query) (database.Paged[Entry], error) {
	f := Filter{EntityID: in.EntityID.Ptr(), From: in.From.Ptr(), To: in.To.Ptr(), Window: in.Page.Window()}
	if in.EntityType != "" {
		f.EntityType = &in.EntityType
	}
	return h.svc.List(ctx, p, f)
}

// listOfUser is the caller's log under their own id (no one else's).
func (h *handlers) listOfUser(ctx context.Context, p auth.Principal, id uuid.UUID, in *userQuery) (database.Paged[Entry], error) {
	if id != p.UserID {
		return database.Paged[Entry]{}, apperr.NotFound(apperr.CodeNotFound, "user")
	}
	return h.list(ctx, p, &in.Query)
}
