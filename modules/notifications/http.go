package notifications

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/httpx"
)

// NotificationDTO is the Notification of the API.
type NotificationDTO struct {
	ID        uuid.UUID  `json:"id" format:"uuid"`
	UserID    uuid.UUID  `json:"user_id" format:"uuid"`
	Type      string     `json:"type" enum:"reminder,achievement,subscription,system"`
	Title     string     `json:"title"`
	Message   string     `json:"message"`
	Read      bool       `json:"read"`
	TaskID    *uuid.UUID `json:"task_id" format:"uuid" nullable:"true"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func toDTO(n *Notification) NotificationDTO {
	return NotificationDTO{ID: n.ID, UserID: n.UserID, Type: n.Type, Title: n.Title, Message: n.Message, Read: n.Read,
		TaskID: n.TaskID, CreatedAt: n.CreatedAt.UTC(), UpdatedAt: n.UpdatedAt.UTC()}
}

// PushSubscriptionDTO is a stored WebPush subscription.
type PushSubscriptionDTO struct {
	ID        uuid.UUID `json:"id" format:"uuid"`
	UserID    uuid.UUID `json:"user_id" format:"uuid"`
	Endpoint  string    `json:"endpoint"`
	P256dhKey string    `json:"p256dh_key"`
	AuthKey   string    `json:"auth_key"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type handlers struct{ svc *Service }

func newHandlers(svc *Service) *handlers { return &handlers{svc: svc} }

type listInput struct {
	httpx.Page
	UnreadOnly bool `query:"unread_only" doc:"Only unread notifications"`
}

type idInput struct {
	ID   string `path:"id" format:"uuid"`
	Body *httpx.EmptyBody
}

func (in *idInput) PathID() string { return in.ID }

type readAll struct {
	Updated int64 `json:"updated"`
}

type publicKey struct {
	PublicKey string `json:"public_key" doc:"VAPID application server key, base64url"`
}

type subscribeInput struct {
	Body struct {
		Endpoint  string `json:"endpoint" minLength:"1" maxLength:"1000"`
		P256dhKey string `json:"p256dh_key" minLength:"1" maxLength:"200"`
		AuthKey   string `json:"auth_key" minLength:"1" maxLength:"100"`
	} `nameHint:"PushSubscriptionCreate"`
}

type unsubscribeInput struct {
	Body struct {
		Endpoint string `json:"endpoint" minLength:"1" maxLength:"1000"`
	} `nameHint:"PushSubscriptionDelete"`
}

type unsubscribed struct {
	Endpoint string `json:"endpoint"`
	Deleted  bool   `json:"deleted" doc:"Whether the caller had a subscription of this endpoint (false: nothing was deleted)"`
}

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/notifications", "notifications-list",
		"The user's notifications, newest first", "Notifications"), httpx.HandleList(auth.Caller, h.list, toDTO))
	huma.Register(api, httpx.Route(http.MethodPatch, "/api/v1/notifications/{id}/read", "notifications-read",
		"Mark a notification read", "Notifications"), httpx.HandleID(auth.Caller, h.read, toDTO))
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/notifications/read-all", "notifications-read-all",
		"Mark every notification read", "Notifications"), httpx.Handle(auth.Caller, h.readAll, httpx.Same))
	huma.Register(api, httpx.Route(http.MethodGet, "/api/v1/notifications/vapid-public-key", "notifications-vapid-key",
		"The key browsers subscribe to push with", "Notifications"), h.vapidKey)
	huma.Register(api, httpx.Created(httpx.Route(http.MethodPost, "/api/v1/notifications/push-subscription",
		"notifications-push-subscribe", "Store this browser's push subscription", "Notifications")), httpx.Handle(auth.Caller, h.subscribe, toSubscriptionDTO))
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/notifications/push-subscription",
		"notifications-push-unsubscribe", "Forget this browser's push subscription", "Notifications"), httpx.Handle(auth.Caller, h.unsubscribe, httpx.Same))
	// After the static paths: Fiber matches routes in the order they are added.
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/notifications/{id}", "notifications-delete",
		"Delete a notification", "Notifications"), httpx.HandleID(auth.Caller, h.delete, httpx.Same))
}

func (h *handlers) vapidKey(ctx context.Context, _ *struct{}) (*httpx.DataOutput[publicKey], error) {
	key, err := h.svc.PublicKey()
	if err != nil {
		return nil, err
	}
	return httpx.Reply(publicKey{PublicKey: key}), nil
}

func (h *handlers) read(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idInput) (*Notification, error) {
	return h.svc.MarkRead(ctx, p, id)
}

func (h *handlers) readAll(ctx context.Context, p auth.Principal, _ *struct{ Body *httpx.EmptyBody }) (readAll, error) {
	n, err := h.svc.MarkAllRead(ctx, p)
	return readAll{Updated: n}, err
}

func (h *handlers) delete(ctx context.Context, p auth.Principal, id uuid.UUID, _ *idInput) (httpx.DeletedID, error) {
	return httpx.DeletedID{ID: id, Deleted: true}, h.svc.Delete(ctx, p, id)
}

func (h *handlers) subscribe(ctx context.Context, p auth.Principal, in *subscribeInput) (*PushSubscription, error) {
	return h.svc.Subscribe(ctx, p, Subscription{Endpoint: in.Body.Endpoint, P256dhKey: in.Body.P256dhKey, AuthKey: in.Body.AuthKey})
}

func toSubscriptionDTO(s *PushSubscription) PushSubscriptionDTO {
	return PushSubscriptionDTO{ID: s.ID, UserID: s.UserID, Endpoint: s.Endpoint, P256dhKey: s.P256dhKey,
		AuthKey: s.AuthKey, Active: s.Active, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}
}

func (h *handlers) unsubscribe(ctx context.Context, p auth.Principal, in *unsubscribeInput) (unsubscribed, error) {
	deleted, err := h.svc.Unsubscribe(ctx, p, in.Body.Endpoint)
	return unsubscribed{Endpoint: in.Body.Endpoint, Deleted: deleted}, err
}

func (h *handlers) list(ctx context.Context, p auth.Principal, in *listInput) (database.Paged[Notification], error) {
	return h.svc.List(ctx, p, in.UnreadOnly, in.Page.Window())
}
