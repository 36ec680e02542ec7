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

type updateSubtaskInput struct {
	ID   string `path:"id" format:"uuid" doc:"Subtask id"`
	Body struct {
		Title      *string `json:"title,omitempty" minLength:"1" maxLength:"200"`
		Completed  *bool   `json:"completed,omitempty"`
		OrderIndex *int    `json:"order_index,omitempty" minimum:"0" maximum:"10000" doc:"Position; past the end puts it last"`
	} `nameHint:"SubtaskUpdate"`
}

type reorderInput struct {
	ID   string `path:"id" format:"uuid" doc:"Task id"`
	Body struct {
		SubtaskIDs []uuid.UUID `json:"subtask_ids" maxItems:"100"`
	} `nameHint:"SubtaskReorder"`
}

func (h *handlers) registerSubtasks(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/tasks/{id}/subtasks", "subtasks-list",
		"A task's subtasks by order_index", "Subtasks"), h.listSubtasks)
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/tasks/{id}/subtasks", "subtasks-create",
		"Add a subtask (last unless order_index says otherwise)", "Subtasks")), h.createSubtask)
	for _, m := range []string{http.MethodPatch, http.MethodPut} {
		huma.Register(api, httpx.Route(m, "/api/v1/subtasks/{id}", "subtasks-update-"+m,
			"Change a subtask (completing the last open one completes the task)", "Subtasks"), h.updateSubtask)
	}
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/subtasks/{id}/complete", "subtasks-complete",
		"Complete a subtask", "Subtasks"), h.completeSubtask)
	huma.Register(api, httpx.Route(http.MethodPut, "/api/v1/tasks/{id}/subtasks/reorder", "subtasks-reorder",
		"Put a task's subtasks in the given order (a permutation)", "Subtasks"), h.reorderSubtasks)
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/subtasks/{id}", "subtasks-delete",
		"Delete a subtask", "Subtasks"), h.deleteSubtask)
}

func (h *handlers) listSubtasks(ctx context.Context, in *idPath) (*httpx.DataOutput[[]SubtaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	list, err := h.svc.Subtasks(ctx, p, taskID)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTOs(list)), nil
}

func (h *handlers) createSubtask(ctx context.Context, in *createSubtaskInput) (*httpx.DataOutput[SubtaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := h.svc.AddSubtask(ctx, p, taskID, NewSubtask{Title: in.Body.Title, OrderIndex: in.Body.OrderIndex})
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTO(st)), nil
}

func (h *handlers) updateSubtask(ctx context.Context, in *updateSubtaskInput) (*httpx.DataOutput[SubtaskDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := h.svc.UpdateSubtask(ctx, p, id, SubtaskChanges{Title: in.Body.Title, Completed: in.Body.Completed,
		OrderIndex: in.Body.OrderIndex})
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTO(st)), nil
}

func (h *handlers) completeSubtask(ctx context.Context, in *optionalBodyInput) (*httpx.DataOutput[SubtaskDTO], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	st, err := h.svc.CompleteSubtask(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTO(st)), nil
}

func (h *handlers) reorderSubtasks(ctx context.Context, in *reorderInput) (*httpx.DataOutput[[]SubtaskDTO], error) {
	p, taskID, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	list, err := h.svc.ReorderSubtasks(ctx, p, taskID, in.Body.SubtaskIDs)
	if err != nil {
		return nil, err
	}
	return httpx.Reply(toSubtaskDTOs(list)), nil
}

func (h *handlers) deleteSubtask(ctx context.Context, in *idPath) (*httpx.DataOutput[httpx.DeletedID], error) {
	p, id, err := auth.CallerAndID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteSubtask(ctx, p, id); err != nil {
		return nil, err
	}
	return httpx.Reply(httpx.DeletedID{ID: id, Deleted: true}), nil
}
