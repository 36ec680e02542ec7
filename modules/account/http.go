package account

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
)

// ExportDTO is an export of the user's data.
type ExportDTO struct {
	ID        string     `json:"id" format:"uuid"`
	Status    string     `json:"status" enum:"pending,ready,failed,expired" doc:"pending until the archive is written; expired once it was deleted (after a week)"`
	CreatedAt time.Time  `json:"created_at"`
	ReadyAt   *time.Time `json:"ready_at" nullable:"true"`
	ExpiresAt *time.Time `json:"expires_at" nullable:"true" doc:"When the archive is deleted"`
	Rows      int64      `json:"rows" doc:"Rows in the archive's export.json"`
	SizeBytes int64      `json:"size_bytes"`
	// DownloadURL needs no bearer (a browser downloads it): it holds a
	// secret.
	DownloadURL       *string    `json:"download_url" nullable:"true" doc:"The archive (zip), without a bearer token: the URL holds a secret. Valid until download_expires_at; asked for again later, a new one is given while the archive is kept"`
	DownloadExpiresAt *time.Time `json:"download_expires_at" nullable:"true"`
}

func toExportDTO(v *ExportView) ExportDTO {
	d := ExportDTO{ID: v.ID.String(), Status: v.State, CreatedAt: v.CreatedAt, ReadyAt: v.ReadyAt, ExpiresAt: v.ExpiresAt,
		Rows: v.Rows, SizeBytes: v.Bytes}
	if v.DownloadURL != "" {
		d.DownloadURL, d.DownloadExpiresAt = &v.DownloadURL, v.DownloadUntil
	}
	return d
}

// AccountDeletionDTO says the account was closed and its erasure begun.
type AccountDeletionDTO struct {
	UserID          string `json:"user_id" format:"uuid"`
	Status          string `json:"status" enum:"erasing" doc:"Signed out everywhere at once; every row is being erased by a job"`
	SessionsRevoked int    `json:"sessions_revoked"`
}

type exportIDInput struct {
	ID string `path:"id" format:"uuid" doc:"The export's id"`
}

// PathID implements httpx.IDParam.
func (in *exportIDInput) PathID() string { return in.ID }

type downloadInput struct {
	ID    string `path:"id" format:"uuid"`
	Token string `query:"token" required:"true" minLength:"1" maxLength:"128" doc:"The secret of the download URL"`
}

type downloadOutput struct {
	Body func(huma.Context)
}

type deleteAccountInput struct {
	Body struct {
		Confirm string `json:"confirm" minLength:"1" maxLength:"320" doc:"The account's email address, to confirm"`
	}
}

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	req := httpx.Route(http.MethodPost, "/api/v1/users/me/export", "users-me-export",
		"Export everything we hold about the user (a zip archive, written by a job)", "Users")
	req.DefaultStatus = http.StatusAccepted
	req.Description = "202 with the export pending; GET /api/v1/users/me/export/{id} then gives its state and, once " +
		"ready, the download URL. A notification tells the user when it is ready. One export at a time (409 " +
		CodeExportInProgress + "); archives are deleted after a week."
	huma.Register(api, req, httpx.Handle(auth.Caller, h.requestExport, toExportDTO))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/users/me/export/{id}", "users-me-export-get",
		"An export's state and, when ready, its download URL", "Users"),
		httpx.HandleID(auth.Caller, h.getExport, toExportDTO))

	// Public: the general budget, per client IP.
	dl := httpx.Public(httpx.Route(http.MethodGet, "/api/v1/exports/{id}/download", "export-download",
		"Download an export's archive (the URL from the export; no bearer)", "Users"))
	dl.Description = "The zip archive: export.json and README.txt. A wrong token: 404; a link past its time or an " +
		"archive deleted: 410 " + CodeExportExpired + "."
	dl.Responses = map[string]*huma.Response{"200": {Description: "The archive",
		Content: map[string]*huma.MediaType{"application/zip": {Schema: &huma.Schema{Type: huma.TypeString, Format: "binary"}}}}}
	huma.Register(api, dl, h.download)

	del := httpx.Route(http.MethodDelete, "/api/v1/users/me", "users-me-delete",
		"Delete the account: signed out everywhere at once, every row erased by a job", "Users")
	del.DefaultStatus = http.StatusAccepted
	del.Description = "The body's confirm must be the account's email (400 otherwise). At once: every session is " +
		"revoked, push subscriptions removed, reminders to come cancelled, a Pro subscription ended and its card " +
		"deleted at the payment provider. Then the account_erase job deletes every row of the user. Kept: the " +
		"user id, the SHA-256 of the email, when, and the credit and payment totals the accounts need. Signing in " +
		"again with the same Google account creates a new, empty account."
	huma.Register(api, del, httpx.Handle(auth.Caller, h.deleteAccount, func(d *Deletion) AccountDeletionDTO {
		return AccountDeletionDTO{UserID: d.UserID.String(), Status: "erasing", SessionsRevoked: d.SessionsRevoked}
	}))
}

func (h *handlers) requestExport(ctx context.Context, p auth.Principal, _ *struct{}) (*ExportView, error) {
	return h.svc.RequestExport(ctx, p)
}

func (h *handlers) getExport(ctx context.Context, p auth.Principal, id uuid.UUID, _ *exportIDInput) (*ExportView, error) {
	return h.svc.GetExport(ctx, p, id)
}

func (h *handlers) deleteAccount(ctx context.Context, p auth.Principal, in *deleteAccountInput) (*Deletion, error) {
	return h.svc.DeleteAccount(ctx, p, in.Body.Confirm)
}

func (h *handlers) download(ctx context.Context, in *downloadInput) (*downloadOutput, error) {
	id, err := uuid.Parse(in.ID)
	if err != nil {
		return nil, apperr.Validation("id", "must be a UUID")
	}
	a, err := h.svc.OpenArchive(ctx, id, in.Token)
	if err != nil {
		return nil, err
	}
	return &downloadOutput{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "application/zip")
		hctx.SetHeader("Content-Disposition", `attachment; filename="`+a.Filename+`"`)
		hctx.SetHeader("Cache-Control", "private, no-store")
		hctx.SetStatus(http.StatusOK)
		// fasthttp sends the file with its length and closes it after.
		humafiber.UnwrapV2(hctx).Context().SetBodyStream(a.File, int(a.Size))
	}}, nil
}
