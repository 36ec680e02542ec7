package httpx

import (
	"reflect"

	"github.com/danielgtaylor/huma/v2"
)

// Param is an optional query parameter that knows whether it was sent, so
// that "not given" never filters (GET /tasks lists hidden tasks too unless
// ?hidden= is sent).
type Param[T any] struct {
	Value T
	Set   bool
}

// Receiver implements huma.ParamWrapper.
func (p *Param[T]) Receiver() reflect.Value { return reflect.ValueOf(p).Elem().Field(0) }

// OnParamSet implements huma.ParamReactor.
func (p *Param[T]) OnParamSet(isSet bool, _ any) { p.Set = isSet }

// Ptr returns the value, or nil when the parameter was not sent.
func (p Param[T]) Ptr() *T {
	if !p.Set {
		return nil
	}
	v := p.Value
	return &v
}

// Schema documents and validates the parameter as T.
func (p Param[T]) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeFor[T](), true, "")
}
