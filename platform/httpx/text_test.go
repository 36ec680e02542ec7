package httpx_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/perpetuaflow/api/platform/httpx"
)

func TestCheckJSONTextNamesTheField(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`{"title": "a\u0000b"}`:                         "title",
		`{"a": {"b": [1, "ok", "x\u0000"]}}`:            "a.b[2]",
		`[{"t": "ok"}, {"t": "\u0000"}]`:                "[1].t",
		`{"ok": "fine", "k\u0000": 1}`:                  "body",
		"{\"title\": \"caf\xe9\"}":                      "title",
		`{"title": "just a \\u0000 written out"}`:       "",
		`{"title": "ok", "n": 1, "b": true, "z": null}`: "",
		`not json \u0000`:                               "",
	}
	for body, want := range cases {
		err := httpx.CheckJSONText([]byte(body))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: refused (%v)", body, err)
		case want != "" && (err == nil || err.Details[0].Field != want):
			t.Errorf("%q: %v, want the field %s", body, err, want)
		}
	}
}

type fuzzBody struct {
	Title    httpx.Optional[string]    `json:"title"`
	Due      httpx.Optional[time.Time] `json:"due_date"`
	Estimate *int                      `json:"estimated_duration"`
	Tags     []string                  `json:"tags"`
	Nested   *struct {
		Version int `json:"version"`
	} `json:"nested"`
}

// FuzzRequestDecoding runs both edge decoders on arbitrary bytes: the text
// check never passes a string that holds NUL or a body that is not UTF-8,
// the typed decoder never panics, and what it accepts is JSON.
func FuzzRequestDecoding(f *testing.F) {
	for _, seed := range []string{`{"title": "x"}`, `{"title": null, "due_date": "2026-02-11T10:00:00Z"}`,
		`{"Title": 5}`, `{"title": "a", "title": "b"}`, `{"nested": {"version": 1e400}}`, `{"tags": ["\u0000"]}`,
		"{\"title\": \"\xff\"}", `[[[[[[`, `{"estimated_duration": -9223372036854775808}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		bad := httpx.CheckJSONText(body) != nil
		var parsed any
		if !bad && json.Unmarshal(body, &parsed) == nil {
			if !utf8.Valid(body) {
				t.Fatalf("%q: invalid UTF-8 passed the text check", body)
			}
			if hasNUL(parsed) {
				t.Fatalf("%q: a NUL passed the text check", body)
			}
		}
		var v fuzzBody
		if httpx.UnmarshalRequest(body, &v) == nil && !json.Valid(bytes.TrimSpace(body)) {
			t.Fatalf("%q: accepted but not JSON", body)
		}
	})
}

func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	}
	return false
}
