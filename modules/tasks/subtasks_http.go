package tasks

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/httpx"
)

func toSubtaskDTOs(list []Subtask) []SubtaskDTO { return httpx.Map(list, toSubtaskDTO) }

type subtaskBody struct {
	Title      string `json:"title" minLength:"1" maxLength:"200"`
	OrderIndex *int   `json:"order_index,omitempty" minimum:"0" maximum:"10000" doc:"Position; past the end puts it last"`
}

type createSubtaskInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body subtaskBody
}

func (in *createSubtaskInput) PathID() string { return in.ID }

type updateSubtaskInput struct {
	ID   string `path:"id" format:"uuid" doc:"Subtask id"`
	Body struct {
		Title      *string `json:"title,omitempty" minLength:"1" maxLength:"200"`
		Completed  *bool   `json:"completed,omitempty"`
		OrderIndex *int    `json:"order_index,omitempty" minimum:"0" maximum:"10000" doc:"Position; past the end puts it last"`
	} `nameHint:"SubtaskUpdate"`
}

func (in *updateSubtaskInput) PathID() string { return in.ID }

type reorderInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body struct {
		SubtaskIDs []uuid.UUID `json:"subtask_ids" maxItems:"100"`
	} `nameHint:"SubtaskReorder"`
}

func (in *reorderInput) PathID() string { return in.ID }

func (h *handlers) registerSubtasks(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/subtasks", "subtasks-list",
		"A task's subtasks by order_index", "Subtasks"), httpx.HandleID(auth.Caller, h.listSubtasks, toSubtaskDTOs))
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/subtasks", "subtasks-create",
		"Add a subtask (last unless order_index says otherwise)", "Subtasks")), httpx.HandleID(auth.Caller, h.createSubtask, toSubtaskDTO))
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		huma.Register(api, httpx.Route(m, "/api/v1/subtasks/{id}", "subtasks-update-"+m,
			"Change a subtask (completing the last open one completes the task)", "Subtasks"), httpx.HandleID(auth.Caller, h.updateSubtask, toSubtaskDTO))
	}
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/subtasks/{id}/complete", "subtasks-complete",
		"Complete a subtask", "Subtasks"), httpx.HandleID(auth.Caller, h.completeSubtask, toSubtaskDTO))
	huma.Register(api, httpx.Route(http.MethodPut, "/api/v1/tasks/{id}/subtasks/reorder", "subtasks-reorder",
		"Put a task's subtasks in the given order (a permutation)", "Subtasks"), httpx.HandleID(auth.Caller, h.reorderSubtasks, toSubtaskDTOs))
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/subtasks/{id}", "subtasks-delete",
		"Delete a subtask", "Subtasks"), httpx.HandleID(auth.Caller, h.deleteSubtask, httpx.Same))
}

func (h *handlers) listSubtasks(ctx context.Context, p auth.Principal, taskID uuid.UUID, _ *idPath) ([]Subtask, error) {
	return h.svc.Subtasks(ctx, p, taskID)
}

func (h *handlers) createSubtask(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *createSubtaskInput) (*Subtask, error) {
	return h.svc.AddSubtask(ctx, p, taskID, NewSubtask{Title: in.Body.Title, OrderIndex: in.Body.OrderIndex})
}

func (h *handlers) updateSubtask(ctx context.Context, p auth.Principal, id uuid.UUID, in *updateSubtaskInput) (*Subtask, error) {
	return h.svc.UpdateSubtask(ctx, p, id, SubtaskChanges{Title: in.Body.Title, Completed: in.Body.Completed,
		OrderIndex: in.Body.OrderIndex})
}

func (h *handlers) completeSubtask(ctx context.Context, p auth.Principal, id uuid.UUID, _ *optionalBodyInput) (*Subtask, error) {
	return h.svc.CompleteSubtask(ctx, p, id)
}

func (h *handlers) reorderSubtasks(ctx context.Context, p auth.Principal, taskID uuid.UUID, in *reorderInput) ([]Subtask, error) {
	return h.svc.ReorderSubtasks(ctx, p, taskID, in.Body.SubtaskIDs)
}

func (h *handlers) deleteSubtask(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (httpx.DeletedID, error) {
	return httpx.DeletedID{ID: id, Deleted: true}, h.svc.DeleteSubtask(ctx, p, id)
}
