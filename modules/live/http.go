package live

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
	"github.com/perpetuaflow/api/platform/observability"
)

// TicketDTO opens one live stream.
type TicketDTO struct {
	Ticket    string `json:"ticket" doc:"Pass it as ?ticket= to GET /api/v1/events: once, within expires_in seconds"`
	ExpiresIn int    `json:"expires_in"`
}

// SyncDTO is a full or incremental sync.
type SyncDTO struct {
	SyncToken string           `json:"sync_token" doc:"Pass it as ?since= next time: only what changed after this answer comes back"`
	Full      bool             `json:"full" doc:"True for a sync from scratch: changed holds every live entity"`
	Changed   map[string][]any `json:"changed" doc:"By entity (task, subtask, reminder, template, note, notification, stats): each entity's current REST shape"`
	Deleted   []Tombstone      `json:"deleted" doc:"Entities gone since the token"`
	HasMore   bool             `json:"has_more" doc:"More changes follow: sync again with the new token at once"`
}

func toSyncDTO(r *SyncResult) SyncDTO {
	return SyncDTO{SyncToken: r.Token, Full: r.Full, Changed: r.Changed, Deleted: r.Deleted, HasMore: r.HasMore}
}

type eventsInput struct {
	Ticket      string `query:"ticket" required:"true" maxLength:"100" doc:"A ticket from POST /api/v1/events/ticket"`
	Since       string `query:"since" maxLength:"20" doc:"Resume after this event id (as Last-Event-ID)"`
	LastEventID string `header:"Last-Event-ID" maxLength:"20"`
}

type syncInput struct {
	Since string `query:"since" maxLength:"100" doc:"The sync_token of the previous sync; none for a sync from scratch"`
}

type handlers struct {
	svc      *Service
	hub      *hub
	cfg      Config
	metrics  *metrics
	sessions auth.Sessions
}

func newHandlers(svc *Service, h *hub, cfg Config, m *metrics, sessions auth.Sessions) *handlers {
	return &handlers{svc: svc, hub: h, cfg: cfg, metrics: m, sessions: sessions}
}

// Register implements platform.Routes.
func (h *handlers) Register(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/events/ticket", "events-ticket",
		"A single-use ticket that opens the live stream (EventSource cannot send a bearer token)", "Live"),
		httpx.Handle(auth.Caller, h.ticket, func(t string) TicketDTO {
			return TicketDTO{Ticket: t, ExpiresIn: int(h.cfg.TicketTTL / time.Second)}
		}))

	ev := httpx.Public(httpx.Route(http.MethodGet, "/api/v1/events", "events",
		"The user's changes as they commit, as server-sent events (from any instance)", "Live"))
	ev.Description = "Each change: `id: <n>` (resume with Last-Event-ID or ?since=), `event: <entity>.<action>` " +
		"(entity task, subtask, reminder, template, note, notification, achievement, credits, subscription, stats, " +
		"focus_session; action created, updated or deleted), `data:` the entity in the shape its REST route answers " +
		"(`{\"id\"}` for a deletion). A comment every heartbeat. Resuming after changes no longer kept sends " +
		"`event: reset`: sync again (GET /api/v1/sync) and go on. A bad, used or expired ticket: 401."
	ev.Responses = httpx.EventStreamResponses()
	huma.Register(api, ev, h.events)

	sync := httpx.Route(http.MethodGet, "/api/v1/sync", "sync",
		"Everything of the user and a sync token; with ?since=<token>, only what changed since", "Live")
	sync.Description = "A token older than the changes kept: 410 " + CodeSyncTokenExpired + " (sync from scratch)."
	huma.Register(api, sync, httpx.Handle(auth.Caller, h.sync, toSyncDTO))
}

func (h *handlers) ticket(ctx context.Context, p auth.Principal, _ *struct{}) (string, error) {
	return h.svc.IssueTicket(ctx, p)
}

func (h *handlers) sync(ctx context.Context, p auth.Principal, in *syncInput) (*SyncResult, error) {
	return h.svc.Sync(ctx, p, in.Since)
}

func (h *handlers) events(ctx context.Context, in *eventsInput) (*huma.StreamResponse, error) {
	ticket, err := h.svc.Redeem(ctx, in.Ticket)
	if err != nil {
		return nil, err
	}
	userID := ticket.UserID
	from := in.LastEventID
	if from == "" {
		from = in.Since
	}
	var since *int64
	if from != "" {
		n, err := strconv.ParseInt(from, 10, 64)
		if err != nil || n < 0 {
			return nil, apperr.Validation("since", "must be an event id")
		}
		since = &n
	}
	log := observability.Logger(ctx, zap.L())
	lifetime := httpx.Lifetime(ctx)
	// Listening first, then reading the position: no change falls between.
	l, done, err := h.hub.subscribe(ctx, userID)
	if err != nil {
		return nil, err
	}
	after, reset, err := h.svc.position(ctx, userID, since)
	if err != nil {
		done()
		return nil, err
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "text/event-stream")
		hctx.SetHeader("Cache-Control", "no-cache")
		hctx.SetHeader("X-Accel-Buffering", "no")
		hctx.SetStatus(http.StatusOK)
		rc := humafiber.UnwrapV2(hctx).Context()
		r := &eventReader{h: h, ctx: lifetime, conn: rc.Conn(), userID: userID, session: ticket.SessionID, after: after, reset: reset, l: l,
			done: done, beat: time.NewTimer(h.cfg.Heartbeat), log: log}
		httpx.StreamFrom(hctx, h.cfg.WriteTimeout, r)
	}}, nil
}
