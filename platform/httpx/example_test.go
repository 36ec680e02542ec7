package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/httpx"
)

type note struct {
	ID      uuid.UUID
	Content string
}

type noteDTO struct {
	Content string `json:"content"`
}

type getNote struct {
	ID string `path:"id" format:"uuid"`
}

func (in *getNote) PathID() string { return in.ID }

// A handler is the call to its service and the mapping of the answer: the
// caller (auth.Caller in a module), the id of the path and the data
// envelope are HandleID's.
func ExampleHandleID() {
	caller := func(context.Context) (string, error) { return "alice", nil }
	get := func(_ context.Context, user string, id uuid.UUID, _ *getNote) (*note, error) {
		if user != "alice" {
			return nil, errors.New("not found")
		}
		return &note{ID: id, Content: "Buy milk"}, nil
	}
	handler := httpx.HandleID(caller, get, func(n *note) noteDTO { return noteDTO{Content: n.Content} })

	out, err := handler(context.Background(), &getNote{ID: "018f0000-0000-7000-8000-000000000000"})
	fmt.Println(out.Body.Data.Content, err)
	// Output: Buy milk <nil>
}

type item struct {
	N int `json:"n"`
}

// A hot list writes its items itself: the module provides the writer
// (httpx.AsJSONItem in its fx options) and the response format uses it for
// a List of exactly that type.
func ExampleJSONFormat_Marshal() {
	format := httpx.NewJSONFormat([]httpx.ItemWriter{httpx.JSONItem(func(b []byte, it *item) []byte {
		return fmt.Appendf(b, `{"n":%d}`, it.N)
	})})
	list := httpx.List[item]{Data: []item{{1}, {2}}, Pagination: httpx.Pagination{Limit: 25, Total: 2}}
	_ = format.Marshal(os.Stdout, list)
	// Output: {"data":[{"n":1},{"n":2}],"pagination":{"offset":0,"limit":25,"total":2,"has_more":false,"next_cursor":null}}
}
