package httpx

import (
	"context"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
)

// Most handlers have one shape: who calls, what the service answers for
// them, what the client gets. Handle, HandleID, HandleList and
// HandleListID write that shape once;
// a module's handler is then only the call to its service, and its
// mapping to the HTTP type. caller reads the request's caller (the auth
// module's auth.Caller); a failed call or caller answers with its error.

// Handle adapts call to a Huma handler whose answer is reply(call's value)
// in the data envelope.
func Handle[P, I, V, T any](caller func(context.Context) (P, error), call func(ctx context.Context, p P, in *I) (V, error),
	reply func(V) T) func(context.Context, *I) (*DataOutput[T], error) {
	return func(ctx context.Context, in *I) (*DataOutput[T], error) {
		p, err := caller(ctx)
		if err != nil {
			return nil, err
		}
		v, err := call(ctx, p, in)
		if err != nil {
			return nil, err
		}
		return Reply(reply(v)), nil
	}
}

// IDParam is an input with an {id} path parameter (declared with format
// uuid, so Huma validated it).
type IDParam interface{ PathID() string }

// HandleID is Handle for a route with an {id} path parameter: call gets it
// parsed.
func HandleID[P, I any, PI interface {
	*I
	IDParam
}, V, T any](caller func(context.Context) (P, error), call func(ctx context.Context, p P, id uuid.UUID, in PI) (V, error),
	reply func(V) T) func(context.Context, *I) (*DataOutput[T], error) {
	return Handle(caller, func(ctx context.Context, p P, in *I) (V, error) {
		id, err := uuid.Parse(PI(in).PathID())
		if err != nil {
			var zero V
			return zero, apperr.Validation("id", "must be a UUID")
		}
		return call(ctx, p, id, in)
	}, reply)
}

// Same is the reply of a call whose value is the HTTP type already.
func Same[T any](v T) T { return v }

// Paging is an input with a list's paging parameters (an embedded Page
// gives it).
type Paging interface{ Paging() Page }

// Paging implements Paging.
func (p *Page) Paging() Page { return *p }

// HandleList is Handle for a paged list: call answers one page of rows,
// item maps each, and the list envelope says where the next page starts.
func HandleList[P, I any, PI interface {
	*I
	Paging
}, E, T any](caller func(context.Context) (P, error), call func(ctx context.Context, p P, in PI) (database.Paged[E], error),
	item func(*E) T) func(context.Context, PI) (*ListOutput[T], error) {
	return func(ctx context.Context, in PI) (*ListOutput[T], error) {
		p, err := caller(ctx)
		if err != nil {
			return nil, err
		}
		page, err := call(ctx, p, in)
		if err != nil {
			return nil, err
		}
		return ReplyPage(Map(page.Rows, item), in.Paging(), page.Total, page.Next), nil
	}
}

// HandleListID is HandleList for a route with an {id} path parameter.
func HandleListID[P, I any, PI interface {
	*I
	Paging
	IDParam
}, E, T any](caller func(context.Context) (P, error), call func(ctx context.Context, p P, id uuid.UUID, in PI) (database.Paged[E], error),
	item func(*E) T) func(context.Context, PI) (*ListOutput[T], error) {
	return HandleList(caller, func(ctx context.Context, p P, in PI) (database.Paged[E], error) {
		id, err := uuid.Parse(in.PathID())
		if err != nil {
			return database.Paged[E]{}, apperr.Validation("id", "must be a UUID")
		}
		return call(ctx, p, id, in)
	}, item)
}
