package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
)

// CalendarFeedDTO is the address of the user's calendar feed.
type CalendarFeedDTO struct {
	URL string `json:"url" doc:"Subscribe to it in a calendar app; it holds a secret: whoever has it sees the due tasks"`
}

// CalendarFeedOffDTO says the feed was turned off.
type CalendarFeedOffDTO struct {
	Deleted bool `json:"deleted" doc:"False when there was no feed"`
}

type calendarFeedInput struct {
	Secret      string `path:"secret" minLength:"1" maxLength:"64" doc:"The secret of the feed's URL"`
	IfNoneMatch string `header:"If-None-Match" maxLength:"200"`
}

type calendarFeedOutput struct {
	Status       int
	ContentType  string `header:"Content-Type"`
	ETag         string `header:"ETag"`
	CacheControl string `header:"Cache-Control"`
	Body         []byte
}

func (h *handlers) registerCalendar(api huma.API) {
	huma.Register(api, httpx.Route(http.MethodPost, "/api/v1/calendar/feed", "calendar-feed-enable",
		"Make the calendar feed of the user's due tasks (again: a new URL, the old one stops working)", "Calendar"),
		httpx.Handle(auth.Caller, h.enableFeed, func(url string) CalendarFeedDTO { return CalendarFeedDTO{URL: url} }))
	huma.Register(api, httpx.Route(http.MethodDelete, "/api/v1/calendar/feed", "calendar-feed-disable",
		"Turn the calendar feed off (its URL stops working)", "Calendar"),
		httpx.Handle(auth.Caller, h.disableFeed, func(ok bool) CalendarFeedOffDTO { return CalendarFeedOffDTO{Deleted: ok} }))
	feed := httpx.WithRateLimit(httpx.Public(httpx.Route(http.MethodGet, "/calendar/{secret}.ics", "calendar-feed",
		"The user's open tasks with a due date, as iCalendar events (for calendar apps; the URL is the credential)", "Calendar")),
		httpx.RateNone)
	feed.Description = "One VEVENT per open, visible task with a due date (nearest first, at most 1,000): from the due time " +
		"for the estimated duration (else 30 minutes), UTC, with a VALARM per reminder to come. ETag and If-None-Match (304). " +
		"Rate-limited per feed (the general budget). An unknown, rotated or deleted secret: 404."
	feed.Responses = map[string]*huma.Response{
		"200": {Description: "An iCalendar document", Content: map[string]*huma.MediaType{
			"text/calendar": {Schema: &huma.Schema{Type: huma.TypeString}}}},
		"304": {Description: "Not modified since the ETag given"},
	}
	huma.Register(api, feed, h.calendarFeed)
}

func (h *handlers) enableFeed(ctx context.Context, p auth.Principal, _ *struct{}) (string, error) {
	return h.svc.EnableFeed(ctx, p)
}

func (h *handlers) disableFeed(ctx context.Context, p auth.Principal, _ *struct{}) (bool, error) {
	return h.svc.DisableFeed(ctx, p)
}

func (h *handlers) calendarFeed(ctx context.Context, in *calendarFeedInput) (*calendarFeedOutput, error) {
	key, userID, err := h.svc.FeedOwner(ctx, in.Secret)
	if err != nil {
		return nil, err
	}
	res, err := h.limiter.Allow(ctx, httpx.RateGeneral, "feed:"+key[:32])
	if err == nil && !res.Allowed {
		e := apperr.New(apperr.KindTooManyRequests, apperr.CodeRateLimited,
			"this calendar feed was fetched more than %d times this minute", res.Limit)
		e.RetryAfter = res.Reset.Sub(h.svc.clock.Now())
		return nil, e
	}
	body, err := h.svc.Feed(ctx, userID)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	out := &calendarFeedOutput{ETag: etag, CacheControl: "private, max-age=300"}
	if matches(in.IfNoneMatch, etag) {
		out.Status = http.StatusNotModified
		return out, nil
	}
	out.Status, out.ContentType, out.Body = http.StatusOK, "text/calendar; charset=utf-8", body
	return out, nil
}

// matches reports whether an If-None-Match header names etag (or is *).
func matches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}
