package httpx

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/database"
)

// BearerScheme is the name of the OpenAPI security scheme for access tokens.
const BearerScheme = "bearer"

// Operation metadata keys read by the platform middlewares.
const (
	// MetaRateLimit names the rate-limit class of an operation: "general"
	// (default, per user), "ai" (per user), "auth" (per IP) or "none".
	MetaRateLimit = "rate_limit"
	// MetaIdempotency is "required" when a mutation must carry an
	// Idempotency-Key (the AI routes); it is optional elsewhere.
	MetaIdempotency = "idempotency"
	// MetaOneTransaction is true on a mutation whose writes are one
	// database transaction and that calls nothing but the database: its
	// Idempotency-Key record commits in that transaction (see OneTransaction).
	MetaOneTransaction = "one_transaction"
)

// Rate-limit classes.
const (
	RateGeneral = "general"
	RateAI      = "ai"
	RateAuth    = "auth"
	RateNone    = "none"
)

const localRequestID = "request_id"

// LocalRequestID is the Fiber local holding the request id.
const LocalRequestID = localRequestID

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// SaneRequestID reports whether a client-sent X-Request-ID can be echoed.
func SaneRequestID(s string) bool { return requestIDPattern.MatchString(s) }

// NewRequestID makes a request id.
func NewRequestID() string { return uuid.NewString() }

// Route returns an operation that requires a bearer access token. Modules
// adjust the rest (status, tags, metadata) on the returned value.
func Route(method, path, id, summary string, tags ...string) huma.Operation {
	return huma.Operation{
		Method:      method,
		Path:        path,
		OperationID: id,
		Summary:     summary,
		Tags:        tags,
		Security:    []map[string][]string{{BearerScheme: {}}},
		Metadata:    map[string]any{},
	}
}

// Public drops the token requirement of op.
func Public(op huma.Operation) huma.Operation {
	op.Security = nil
	return op
}

// Created sets the success status of op to 201.
func Created(op huma.Operation) huma.Operation {
	op.DefaultStatus = http.StatusCreated
	return op
}

// OneTransaction marks op as doing all its writes in one database.DB.Tx
// and nothing but database work while it runs: with an Idempotency-Key,
// the stored answer then commits with the change, in the same transaction
// (one commit instead of three, and no window where one exists without the
// other).
func OneTransaction(op huma.Operation) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[MetaOneTransaction] = true
	return op
}

// WithRateLimit sets the rate-limit class of op.
func WithRateLimit(op huma.Operation, class string) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[MetaRateLimit] = class
	return op
}

// MetaBool reads a boolean metadata value of op.
func MetaBool(op *huma.Operation, key string) bool {
	if op == nil || op.Metadata == nil {
		return false
	}
	b, _ := op.Metadata[key].(bool)
	return b
}

// RequiresAuth reports whether op needs a bearer token.
func RequiresAuth(op *huma.Operation) bool { return len(op.Security) > 0 }

// MetaString reads a string metadata value of op.
func MetaString(op *huma.Operation, key string) string {
	if op == nil || op.Metadata == nil {
		return ""
	}
	s, _ := op.Metadata[key].(string)
	return s
}

type subjectKey struct{}

// WithSubject records the authenticated caller's id (a user id) in ctx; rate
// limits and idempotency keys are scoped by it.
func WithSubject(ctx context.Context, subject string) context.Context {
	return context.WithValue(ctx, subjectKey{}, subject)
}

// Subject returns the authenticated caller's id, or "".
func Subject(ctx context.Context) string {
	s, _ := ctx.Value(subjectKey{}).(string)
	return s
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (the scheme in any case).
func BearerToken(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	return header[len(prefix):], true
}

// Authenticator turns a bearer token into a context that carries the caller.
// The auth module provides it.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (context.Context, error)
}

// DeletedID is the answer of deletes that leave nothing to recover.
type DeletedID struct {
	ID      uuid.UUID `json:"id" format:"uuid"`
	Deleted bool      `json:"deleted"`
}

// Buried is the answer of deletes that can be undone: where the item went
// and until when it can be recovered.
type Buried struct {
	TombstoneID      uuid.UUID `json:"tombstone_id" format:"uuid"`
	RecoverableUntil time.Time `json:"recoverable_until"`
}

// EmptyBody is the body of mutations that need none: the client sends
// nothing or {} there (and any keys are ignored).
type EmptyBody struct{}

// Data is the single-object envelope {"data": ...}.
type Data[T any] struct {
	Data T `json:"data"`
}

// DataOutput is a handler output with the single-object envelope.
type DataOutput[T any] struct {
	Body Data[T]
}

// Reply wraps v in the single-object envelope.
func Reply[T any](v T) *DataOutput[T] { return &DataOutput[T]{Body: Data[T]{Data: v}} }

// Pagination describes one page of a list.
type Pagination struct {
	Offset  int   `json:"offset"`
	Limit   int   `json:"limit"`
	Total   int64 `json:"total"`
	HasMore bool  `json:"has_more"`
	// NextCursor, on lists that take a cursor, starts the next page (null
	// on the last page, and on lists that take none).
	NextCursor *string `json:"next_cursor" nullable:"true"`
}

// List is the list envelope {"data": [...], "pagination": {...}}.
type List[T any] struct {
	Data       []T        `json:"data"`
	Pagination Pagination `json:"pagination"`

	// release, when set, is called once the list has been written: its
	// items may then go back to a pool.
	release func()
}

// Release has fn called once the list has been written (by the JSON
// format; a list written otherwise is left to the collector).
func (o *ListOutput[T]) Release(fn func()) *ListOutput[T] {
	o.Body.release = fn
	return o
}

// ListOutput is a handler output with the list envelope.
type ListOutput[T any] struct {
	Body List[T]
}

// Page is the offset/limit query of list endpoints. The live client never
// sends a limit and shows the first page only, hence the default of 100.
type Page struct {
	Offset int    `query:"offset" minimum:"0" maximum:"1000000" default:"0" doc:"Items to skip"`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"100" doc:"Items per page (1-100)"`
	Cursor string `query:"cursor" maxLength:"300" doc:"pagination.next_cursor of the previous page (same filters and sort): the page after it, at the same cost however deep; offset then counts from it"`
}

// ReplyList wraps one page of items in the list envelope. items is never
// encoded as null.
func ReplyList[T any](items []T, page Page, total int64) *ListOutput[T] {
	if items == nil {
		items = []T{}
	}
	return &ListOutput[T]{Body: List[T]{Data: items, Pagination: Pagination{
		Offset: page.Offset, Limit: page.Limit, Total: total,
		HasMore: int64(page.Offset+len(items)) < total,
	}}}
}

// Window is the page the query asks for.
func (p Page) Window() database.Window {
	return database.Window{Cursor: p.Cursor, Offset: p.Offset, Limit: p.Limit}
}

// ReplyPage wraps one page of a list that takes a cursor in the list
// envelope: the page read one row more, so next (empty on the last page)
// says whether more follow, after a cursor too.
func ReplyPage[T any](items []T, page Page, total int64, next string) *ListOutput[T] {
	out := ReplyList(items, page, total)
	out.Body.Pagination.HasMore = next != ""
	if next != "" {
		out.Body.Pagination.NextCursor = &next
	}
	return out
}

// UTCPtr returns t in UTC, keeping nil.
func UTCPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Map converts each item of a page of rows to its API form.
func Map[T, U any](items []T, fn func(*T) U) []U {
	out := make([]U, len(items))
	for i := range items {
		out[i] = fn(&items[i])
	}
	return out
}
