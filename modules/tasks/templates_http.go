package tasks

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

// TemplateDTO is the TaskTemplate of the API.
type TemplateDTO struct {
	ID                uuid.UUID  `json:"id" format:"uuid"`
	UserID            uuid.UUID  `json:"user_id" format:"uuid"`
	Title             string     `json:"title"`
	Description       string     `json:"description"`
	Priority          string     `json:"priority" enum:"low,medium,high"`
	EstimatedDuration *int       `json:"estimated_duration" nullable:"true"`
	RRule             string     `json:"rrule" example:"FREQ=WEEKLY;BYDAY=MO,WE"`
	NextDue           *time.Time `json:"next_due" nullable:"true"`
	Active            bool       `json:"active"`
	SubtaskTitles     []string   `json:"subtask_titles"`
	Version           int        `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func toTemplateDTO(t *Template) TemplateDTO {
	titles := t.SubtaskTitles
	if titles == nil {
		titles = []string{}
	}
	return TemplateDTO{ID: t.ID, UserID: t.UserID, Title: t.Title, Description: t.Description, Priority: t.Priority,
		EstimatedDuration: t.EstimatedDuration, RRule: t.RRule, NextDue: httpx.UTCPtr(t.NextDue), Active: t.Active,
		SubtaskTitles: titles, Version: t.Version, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

type templateBody struct {
	Title             httpx.Optional[string]         `json:"title,omitempty" minLength:"1" maxLength:"500"`
	Description       httpx.Optional[string]         `json:"description,omitempty" maxLength:"2000"`
	Priority          httpx.Optional[string]         `json:"priority,omitempty" enum:"low,medium,high"`
	EstimatedDuration httpx.Optional[int]            `json:"estimated_duration,omitempty" minimum:"1" maximum:"720" nullable:"true"`
	RRule             httpx.Optional[string]         `json:"rrule,omitempty" maxLength:"500" doc:"RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO"`
	Active            httpx.Optional[bool]           `json:"active,omitempty"`
	SubtaskTitles     httpx.Optional[[]subtaskTitle] `json:"subtask_titles,omitempty" maxItems:"10"`
}

func (b templateBody) input() (TemplateInput, error) {
	for field, null := range map[string]bool{"title": b.Title.Null, "priority": b.Priority.Null, "rrule": b.RRule.Null,
		"active": b.Active.Null} {
		if null {
			return TemplateInput{}, apperr.Validation(field, "must not be null")
		}
	}
	in := TemplateInput{Title: b.Title.Ptr(), Priority: b.Priority.Ptr(), EstimatedDuration: b.EstimatedDuration.Ptr(),
		ClearEstimatedDuration: b.EstimatedDuration.Null, RRule: b.RRule.Ptr(), Active: b.Active.Ptr()}
	if titles := b.SubtaskTitles.Ptr(); titles != nil {
		list := make([]string, len(*titles))
		for i, t := range *titles {
			list[i] = string(t)
		}
		in.SubtaskTitles = &list
	}
	if b.Description.Set {
		d := b.Description.Value
		in.Description = &d
	}
	if b.SubtaskTitles.Null {
		empty := []string{}
		in.SubtaskTitles = &empty
	}
	return in, nil
}

// subtaskTitle is one subtask title of a template (bounded like a
// subtask's own title).
type subtaskTitle string

// Schema implements huma.SchemaProvider.
func (subtaskTitle) Schema(huma.Registry) *huma.Schema {
	lo, hi := 1, MaxSubtaskTitleLength
	return &huma.Schema{Type: huma.TypeString, MinLength: &lo, MaxLength: &hi}
}

type createTemplateInput struct {
	Body templateBody
}

type updateTemplateInput struct {
	ID   string `path:"id" format:"uuid"`
	Body templateBody
}

func (in *updateTemplateInput) PathID() string { return in.ID }

func (h *handlers) registerTemplates(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/templates", "templates-list",
		"Recurring task templates", "Templates"), httpx.HandleList(auth.Caller, h.listTemplates, toTemplateDTO))
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/templates", "templates-create",
		"Create a recurring task template", "Templates")), httpx.Handle(auth.Caller, h.createTemplate, toTemplateDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/templates/{id}", "templates-get", "A template", "Templates"), httpx.HandleID(auth.Caller, h.getTemplate, toTemplateDTO))
	huma.Register(api, httpx.Route(http.MethodPatch, "/api/v1/templates/{id}", "templates-update",
		"Change a template", "Templates"), httpx.HandleID(auth.Caller, h.updateTemplate, toTemplateDTO))
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/templates/{id}", "templates-delete",
		"Delete a template (its tasks stay)", "Templates"), httpx.HandleID(auth.Caller, h.deleteTemplate, httpx.Same))
	for _, suffix := range []string{"instantiate", "generate"} {
		huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/templates/{id}/"+suffix, "templates-"+suffix,
			"Make the template's next task now, with its subtasks", "Templates")), httpx.HandleID(auth.Caller, h.instantiate, toTaskDetailDTO))
	}
}

func (h *handlers) createTemplate(ctx context.Context, p auth.Principal, in *createTemplateInput) (*Template, error) {
	input, err := in.Body.input()
	if err != nil {
		return nil, err
	}
	if input.Title == nil {
		return nil, apperr.Validation("title", "is required")
	}
	if input.RRule == nil {
		return nil, apperr.Validation("rrule", "is required")
	}
	return h.svc.CreateTemplate(ctx, p, input)
}

func (h *handlers) getTemplate(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (*Template, error) {
	return h.svc.Template(ctx, p, id)
}

func (h *handlers) updateTemplate(ctx context.Context, p auth.Principal, id uuid.UUID, in *updateTemplateInput) (*Template, error) {
	input, err := in.Body.input()
	if err != nil {
		return nil, err
	}
	return h.svc.UpdateTemplate(ctx, p, id, input)
}

func (h *handlers) deleteTemplate(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idPath) (httpx.DeletedID, error) {
	return httpx.DeletedID{ID: id, Deleted: true}, h.svc.DeleteTemplate(ctx, p, id)
}

func (h *handlers) instantiate(ctx context.Context, p auth.Principal, id uuid.UUID, _ *optionalBodyInput) (*TaskDetail, error) {
	t, subtasks, err := h.svc.Instantiate(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return &TaskDetail{Task: *t, Subtasks: subtasks}, nil
}

func (h *handlers) listTemplates(ctx context.Context, p auth.Principal, in *httpx.Page) (database.Paged[Template], error) {
	return h.svc.Templates(ctx, p, in.Window())
}
