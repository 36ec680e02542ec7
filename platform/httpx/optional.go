package httpx

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
)

// Optional is a request field that tells apart "absent", "null" and a value,
// which PATCH needs: {"due_date": null} clears a due date, while a body
// without due_date leaves it alone.
type Optional[T any] struct {
	Set   bool // the key was present
	Null  bool // its value was null
	Value T
}

// UnmarshalJSON records presence and nullness.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Schema documents and validates the field as T (field tags such as
// maxLength and enum still apply).
func (o Optional[T]) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeFor[T](), true, "")
}

// Ptr returns the value as a pointer: nil when absent or null.
func (o Optional[T]) Ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}
