package httpx

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
)

// NewSchemaRegistry returns the registry of the OpenAPI document's schemas.
// Every schema gets a name of letters and digits, and one name is never given
// to two types: Huma's own namer drops the package of a type and, for two
// unnamed request bodies with the same hint, appends a number, after which a
// third operation using either type could be validated against the other's
// schema. Here a second type wanting a taken name stops the start-up instead,
// naming both types, so the clash is fixed where it is written.
//
// A uuid.UUID field is documented and validated as a string in UUID format.
func NewSchemaRegistry() huma.Registry {
	n := &schemaNamer{owner: map[string]reflect.Type{}}
	r := huma.NewMapRegistry("#/components/schemas/", n.name)
	r.RegisterTypeAlias(reflect.TypeFor[uuid.UUID](), reflect.TypeFor[uuidSchema]())
	return r
}

// uuidSchema stands for uuid.UUID in schemas.
type uuidSchema struct{}

// Schema implements huma.SchemaProvider.
func (uuidSchema) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeString, Format: "uuid"}
}

type schemaNamer struct {
	mu    sync.Mutex
	owner map[string]reflect.Type
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	schemaProviderType  = reflect.TypeFor[huma.SchemaProvider]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (n *schemaNamer) name(t reflect.Type, hint string) string {
	name := SchemaName(t, hint)
	if !namedInDocument(t) {
		return name
	}
	base := deref(t)
	n.mu.Lock()
	defer n.mu.Unlock()
	if prev, ok := n.owner[name]; ok && prev != base {
		panic(fmt.Errorf("openapi: schema name %q is wanted by %s and by %s: give one of them its own name "+
			"(a named body type, or a nameHint tag on the Body field)", name, describe(prev), describe(base)))
	}
	n.owner[name] = base
	return name
}

// namedInDocument reports whether Huma files t under a name in the
// components (structs do, except those that describe themselves).
func namedInDocument(t reflect.Type) bool {
	d := deref(t)
	if d.Kind() != reflect.Struct || d == timeType {
		return false
	}
	p := reflect.PointerTo(d)
	return !d.Implements(schemaProviderType) && !p.Implements(schemaProviderType) &&
		!d.Implements(textUnmarshalerType) && !p.Implements(textUnmarshalerType)
}

func describe(t reflect.Type) string {
	if t.Name() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	var fields []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		fields = append(fields, name)
	}
	return "an unnamed struct {" + strings.Join(fields, ", ") + "}"
}

// SchemaName is the name of a type's schema: its Go name (generic arguments
// joined on, as DataTaskDTO for Data[TaskDTO]) or, for an unnamed type, the
// hint, with everything but letters and digits dropped.
func SchemaName(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	var b strings.Builder
	for _, r := range name {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
