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

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	for id, path := range map[string]string{"recovery-list": "/api/v1/recovery",
		"recovery-list-tombstones": "/api/v1/recovery/tombstones"} {
		huma.Register(api, httpx.Route(http.MethodGet, path, id, "Deleted items that can still be recovered",
			"Recovery"), h.list)
	}
	for id, path := range map[string]string{"recovery-recover": "/api/v1/recovery/{id}/recover",
		"recovery-recover-tombstones": "/api/v1/recovery/tombstones/{id}/recover",
		"recovery-recover-tasks":      "/api/v1/tasks/recover/{id}"} {
		huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, path, id,
			"Recover a deleted task or note (original id, version 1)", "Recovery")), h.recover)
	}
}

func (h *handlers) list(ctx context.Context, _ *struct{}) (*httpx.DataOutput[[]TombstoneDTO], error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	list, err := h.svc.List(ctx, p)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(httpx.Map(list, toDTO)), nil
}

func (h *handlers) recover(ctx context.Context, in *idPath) (*httpx.DataOutput[RestoredDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	item, err := h.svc.Recover(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(RestoredDTO{item: item}), nil
}
