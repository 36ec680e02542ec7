package httpx_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/perpetuaflow/api/platform/httpx"
)

type Twin struct{ A int }

func TestTwoTypesNeverShareASchemaName(t *testing.T) {
	t.Parallel()
	cases := map[string][2]reflect.Type{
		"two unnamed bodies with one hint": {
			reflect.TypeOf(struct {
				Title string `json:"title"`
			}{}),
			reflect.TypeOf(struct {
				Content string `json:"content"`
			}{}),
		},
		"a named type and an unnamed one": {
			reflect.TypeOf(Twin{}),
			reflect.TypeOf(struct{ B int }{}),
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			reg := httpx.NewSchemaRegistry()
			reg.Schema(c[0], true, "Twin")
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(error).Error(), `schema name "Twin"`) {
					t.Fatalf("recovered %v, want a clash on the name Twin", r)
				}
				if len(reg.Map()) != 1 {
					t.Fatalf("schemas %v", reg.Map())
				}
			}()
			reg.Schema(c[1], true, "Twin")
		})
	}
}

func TestOneTypeKeepsItsNameAndNamesAreLettersAndDigits(t *testing.T) {
	t.Parallel()
	reg := httpx.NewSchemaRegistry()
	body := reflect.TypeOf(struct{ A int }{})
	first := reg.Schema(body, true, "Task-create Body")
	again := reg.Schema(body, true, "Task-create Body")
	if first.Ref != "#/components/schemas/TaskcreateBody" || again.Ref != first.Ref {
		t.Fatalf("refs %q, %q", first.Ref, again.Ref)
	}
	if got := httpx.SchemaName(reflect.TypeOf(httpx.Data[[]httpx.DeletedID]{}), ""); got != "DataListDeletedID" {
		t.Fatalf("generic name %q", got)
	}
}
