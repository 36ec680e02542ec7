package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/perpetuaflow/api/platform/apperr"
)

// textRule is what CheckJSONText and CheckQueryText say of bad text.
const textRule = "must be valid UTF-8 text without NUL characters"

// ValidText reports whether b can be stored as text by every database we
// run on: valid UTF-8 without NUL (PostgreSQL refuses both in text columns).
func ValidText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }

// CheckJSONText finds a string of a JSON document (key or value) that is
// not valid text and names its field. A body that is clean, or that is not
// JSON at all (the decoder reports that), passes.
func CheckJSONText(body []byte) *apperr.Error {
	validUTF8 := utf8.Valid(body)
	if validUTF8 && !bytes.Contains(body, []byte(`\u0000`)) {
		return nil
	}
	// The decoder turns invalid UTF-8 into U+FFFD; in a body that holds
	// invalid UTF-8, the first string with U+FFFD is taken as the culprit.
	bad := func(s string) bool {
		return strings.IndexByte(s, 0) >= 0 || (!validUTF8 && strings.ContainsRune(s, utf8.RuneError))
	}
	type frame struct {
		object  bool
		key     string
		index   int
		wantKey bool
	}
	var stack []frame
	// field names the string being read; a key is named by its object.
	field := func(isKey bool) string {
		var b strings.Builder
		for i, f := range stack {
			switch {
			case f.object && isKey && i == len(stack)-1:
			case f.object:
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			default:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			if !validUTF8 {
				return apperr.Validation("body", textRule)
			}
			return nil
		}
		top := len(stack) - 1
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				stack = append(stack, frame{object: v == '{', wantKey: v == '{'})
				continue
			}
			stack = stack[:top]
			valueDone()
		case string:
			if top >= 0 && stack[top].object && stack[top].wantKey {
				if bad(v) {
					return apperr.Validation(field(true), "keys "+textRule)
				}
				stack[top].key, stack[top].wantKey = v, false
				continue
			}
			if bad(v) {
				return apperr.Validation(field(false), textRule)
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// CheckQueryText finds a query parameter (name or value) that is not valid
// text. params are the parameters, already percent-decoded.
func CheckQueryText(params iter.Seq2[[]byte, []byte]) *apperr.Error {
	for key, value := range params {
		switch {
		case !ValidText(key):
			return apperr.Validation("query", "parameter names "+textRule)
		case !ValidText(value):
			return apperr.Validation(string(key), textRule)
		}
	}
	return nil
}

// UnmarshalRequest decodes a request body into v. Huma decodes each body
// twice: into an untyped value that it validates against the schema, then
// into the handler's type. The second pass matches keys exactly: the
// standard decoder would also match {"Priority": ...} to the priority field,
// past the schema that validated only "priority".
func UnmarshalRequest(data []byte, v any) error {
	if _, untyped := v.(*any); untyped {
		return json.Unmarshal(data, v)
	}
	err := jsonv2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	// The schema was checked already: what is left is said plainly, without
	// the decoder's Go types.
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syn):
		return fmt.Errorf("the key %s appears more than once", pointerField(syn.JSONPointer))
	case errors.As(err, &sem) && sem.JSONPointer != "":
		return fmt.Errorf("%s: invalid value", pointerField(sem.JSONPointer))
	}
	return errors.New("malformed JSON")
}

// pointerField writes a JSON pointer (/items/1/title) as a field name
// (items[1].title).
func pointerField(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}
