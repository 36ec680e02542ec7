package recovery

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/httpx"
)

// TombstoneDTO is one recoverable item.
type TombstoneDTO struct {
	ID               uuid.UUID `json:"id" format:"uuid"`
	EntityType       string    `json:"entity_type" doc:"task or note"`
	EntityID         uuid.UUID `json:"entity_id" format:"uuid"`
	Title            string    `json:"title"`
	DeletedAt        time.Time `json:"deleted_at"`
	RecoverableUntil time.Time `json:"recoverable_until"`
}

func toDTO(ts *Tombstone) TombstoneDTO {
	return TombstoneDTO{ID: ts.ID, EntityType: ts.EntityType, EntityID: ts.EntityID, Title: ts.Title,
		DeletedAt: ts.DeletedAt.UTC(), RecoverableUntil: ts.RecoverableUntil.UTC()}
}

// RestoredDTO is the item a recovery brought back, as its module shows it.
type RestoredDTO struct{ item Restored }

// MarshalJSON encodes the item itself.
func (r RestoredDTO) MarshalJSON() ([]byte, error) { return json.Marshal(r.item) }

// Schema documents the item.
func (RestoredDTO) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeObject, Description: "The recovered Task or Note, with its original id",
		AdditionalProperties: true}
}

type idPath struct {
	ID   string `path:"id" format:"uuid" doc:"Tombstone id"`
	Body *httpx.EmptyBody
}

func (in *idPath) PathID() string { return in.ID }

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	for id, path := range map[string]string{"recovery-list": "/api/v1/recovery",
		"recovery-list-tombstones": "/api/v1/recovery/tombstones"} {
		huma.Register(api, httpx.Route(http.MethodGet, path, id, "Deleted items that can still be recovered",
			"Recovery"), httpx.Handle(auth.Caller, h.list, toDTOs))
	}
	for id, path := range map[string]string{"recovery-recover": "/api/v1/recovery/{id}/recover",
		"recovery-recover-tombstones": "/api/v1/recovery/tombstones/{id}/recover",
		"recovery-recover-tasks":      "/api/v1/tasks/recover/{id}"} {
		huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, path, id,
			"Recover a deleted task or note (original id, version 1)", "Recovery")), httpx.HandleID(auth.Caller, h.recover, toRestoredDTO))
	}
}

func (h *handlers) list(ctx context.Context, p auth.Principal, _ *struct{}) ([]Tombstone, error) {
	return h.svc.List(ctx, p)
}

func toDTOs(list []Tombstone) []TombstoneDTO { return httpx.Map(list, toDTO) }

func (h *handlers) recover(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (Restored, error) {
	return h.svc.Recover(ctx, p, id)
}

func toRestoredDTO(item Restored) RestoredDTO { return RestoredDTO{item: item} }
