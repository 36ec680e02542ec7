package adversarial

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/perpetuaflow/api/test/testkit"
)

// badUTF8 stands in a body for bytes that are not UTF-8 (JSON encoding
// cannot carry them, so they are put in after marshalling).
const badUTF8 = "\x01BAD-UTF8\x01"

// mutation is one invalid value for a field, and whether the API must
// refuse it with 400 (a value outside the schema) or merely survive it.
type mutation struct {
	name   string
	value  any
	refuse bool
}

// mutationsFor returns the invalid values of a property with schema s. A
// null in a property that is not required means "not given" (Huma's rule),
// so only a required one must refuse it.
func mutationsFor(s schema, required bool) []mutation {
	var out []mutation
	t := typeOf(s)
	wrong := map[string]any{"string": 12345, "integer": "12", "number": "12", "boolean": "yes", "array": "x", "object": "x"}
	if w, ok := wrong[t]; ok {
		out = append(out, mutation{"wrong type", w, true})
	}
	if !nullable(s) {
		out = append(out, mutation{"null", nil, required})
	}
	out = append(out, mutation{"object", map[string]any{"$gt": ""}, t != "object"})
	switch t {
	case "string":
		_, limited := number(s, "maxLength")
		out = append(out,
			mutation{"NUL", "a\x00b", true},
			mutation{"invalid UTF-8", badUTF8, true},
			mutation{"huge", strings.Repeat("x", 100_000), limited || s["enum"] != nil || s["format"] != nil},
			mutation{"unknown enum or format", "URGENT", s["enum"] != nil || s["format"] != nil},
			mutation{"unicode", "zalgo ̷̢̛ 𝕏 \u202e 🙂", s["enum"] != nil || s["format"] != nil},
		)
	case "integer":
		out = append(out,
			mutation{"min int64", json.Number("-9223372036854775808"), true},
			mutation{"max int64", json.Number("9223372036854775807"), true},
			mutation{"past int64", json.Number("99999999999999999999999"), true},
			mutation{"huge float", json.Number("1e300"), true},
			mutation{"fraction", 1.5, true},
			mutation{"negative", -1, minimumAbove(s, -1)},
		)
	case "array":
		out = append(out, mutation{"wrong items", []any{12345, nil}, true},
			mutation{"many items", make([]any, 10_000), true})
	}
	return out
}

func minimumAbove(s schema, v float64) bool {
	lo, ok := number(s, "minimum")
	return ok && lo > v
}

// encode marshals v as JSON with badUTF8 turned into invalid bytes.
func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	placeholder, _ := json.Marshal(badUTF8)
	return bytes.ReplaceAll(b, placeholder[1:len(placeholder)-1], []byte{0xff, 0xfe, 'x'})
}

// TestBadInputNeverBreaksTheServer sends, to every operation of the OpenAPI
// document that takes input, invalid values in each body field and query
// parameter, malformed bodies and bad path ids. Nothing may answer 5xx; a
// value outside the schema must be refused with 400; and a run of valid
// bodies with stray keys afterwards must still be handled.
func TestBadInputNeverBreaksTheServer(t *testing.T) {
	t.Parallel()
	app := startWithProviders(t)
	alice := app.SignIn(t, "alice@example.com")
	f := own(t, app, alice)
	ops, resolve := document(t, app)
	ids := ownerIDs(f)
	own := idsOf{task: f.task, subtask: f.subtask}
	sent, refused, broken := 0, 0, 0
	// Public operations (sign-in, logout) are called without a token: a
	// logout with Alice's would end her session halfway through.
	as := func(op operation) *testkit.User {
		if op.Secure {
			return alice
		}
		return nil
	}
	send := func(op operation, what, path string, body any, refuse bool) {
		t.Helper()
		res := app.Send(t, as(op), keyed(testkit.Request{Method: op.Method, Path: path, Body: body}))
		sent++
		switch {
		case res.Status >= 500 && !unavailable(t, res):
			broken++
			t.Errorf("%s, %s: %d %s", op, what, res.Status, res.Body)
		case refuse && res.Status != http.StatusBadRequest:
			t.Errorf("%s, %s: %d, want 400: %s", op, what, res.Status, clip(res.Body))
		case refuse:
			refused++
		}
		if leak := internals(res.Body); leak != "" {
			t.Errorf("%s, %s: the answer shows %q: %s", op, what, leak, clip(res.Body))
		}
	}

	for _, op := range ops {
		path, known := fillPath(op.Path, ids)
		if !known {
			t.Errorf("%s: no id known for this path", op)
			continue
		}
		// Path ids.
		for _, bad := range []string{"not-a-uuid", "%00", "%FF%FE", strings.Repeat("a", 5000), "..%2F..%2Fetc"} {
			if len(op.pathParams()) == 0 {
				break
			}
			p := strings.Replace(op.Path, "{id}", bad, 1)
			res := app.Send(t, as(op), keyed(testkit.Request{Method: op.Method, Path: p,
				Body: example(orEmpty(op.Body), "body", own, resolve)}))
			sent++
			if res.Status >= 500 || res.Status < 400 {
				t.Errorf("%s with id %q: %d %s", op, clip([]byte(bad)), res.Status, clip(res.Body))
			}
			if leak := internals(res.Body); leak != "" {
				t.Errorf("%s with id %q: the answer shows %q: %s", op, clip([]byte(bad)), leak, clip(res.Body))
			}
		}
		// Query parameters.
		for _, p := range op.queryParams() {
			for _, m := range queryMutations(p.Schema) {
				send(op, "query "+p.Name+" "+m.name, path+"?"+p.Name+"="+m.value.(string), bodyFor(op, own, resolve), m.refuse)
			}
		}
		if op.Body == nil {
			continue
		}
		valid := example(op.Body, "body", own, resolve).(map[string]any)
		props, _ := op.Body["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		required := map[string]bool{}
		if req, ok := op.Body["required"].([]any); ok {
			for _, r := range req {
				required[r.(string)] = true
			}
		}
		for _, name := range names {
			for _, m := range mutationsFor(resolve(props[name].(map[string]any)), required[name]) {
				body := clone(valid)
				body[name] = m.value
				send(op, "body "+name+" "+m.name, path, encode(t, body), m.refuse)
			}
		}
		for _, name := range names {
			// A key in another case is not the field; were it taken for it,
			// the decoder's Go-typed complaint would reach the client.
			body := clone(valid)
			body[strings.ToUpper(name)] = map[string]any{"not": "a " + name}
			send(op, "body "+strings.ToUpper(name)+" as another key", path, encode(t, body), false)
		}
		for what, raw := range map[string]string{
			"malformed":      `{"a": `,
			"array":          `[1, 2]`,
			"string":         `"x"`,
			"duplicate keys": duplicateKeys(valid),
			"deep nesting":   strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000),
			"NUL key":        `{"a\u0000": 1}`,
		} {
			send(op, what, path, raw, true)
		}
	}

	// Last, valid bodies with stray keys (they may succeed and change things).
	for _, op := range ops {
		path, _ := fillPath(op.Path, ids)
		if op.Body == nil {
			continue
		}
		valid := example(op.Body, "body", own, resolve).(map[string]any)
		valid["zz_unknown"] = map[string]any{"nested": []any{1, "two"}}
		for k, v := range clone(valid) {
			if s, ok := v.(string); ok && k != "zz_unknown" {
				valid[strings.ToUpper(k)] = s + "-shouted" // case variants are unknown keys, not the field
			}
		}
		res := app.Send(t, as(op), keyed(testkit.Request{Method: op.Method, Path: path, Body: valid}))
		sent++
		if res.Status >= 500 && !unavailable(t, res) {
			t.Errorf("%s with stray keys: %d %s", op, res.Status, res.Body)
		}
		if bytes.Contains(res.Body, []byte("-shouted")) {
			t.Errorf("%s took an upper-case key for its field: %s", op, res.Body)
		}
	}
	t.Logf("bad input: %d operations, %d requests, %d refused with 400 as they must be, %d answered 5xx",
		len(ops), sent, refused, broken)
}

// internals finds words of Go, its libraries or the database in an answer:
// messages are for the client, in the client's words.
func internals(body []byte) string {
	for _, w := range []string{"Go struct", "json:", "jsontext", "invalid UUID", "strconv", "reflect", "pgconn",
		"SQLSTATE", "goroutine", "runtime.", "%!", "gorm", "sqlite"} {
		if bytes.Contains(body, []byte(w)) {
			return w
		}
	}
	return ""
}

// unavailable reports a documented 503: a feature this server does not
// offer (yet, or without its provider configured) says so, and that is an
// answer, not a failure.
func unavailable(t *testing.T, res *testkit.Response) bool {
	if res.Status != http.StatusServiceUnavailable {
		return false
	}
	switch res.ErrorCode(t) {
	case "AI_SERVICE_UNAVAILABLE", "TRANSCRIPTION_SERVICE_UNAVAILABLE", "SERVICE_UNAVAILABLE", "PAYMENT_SERVICE_UNAVAILABLE":
		return true
	}
	return false
}

func queryMutations(s schema) []mutation {
	esc := url.QueryEscape
	out := []mutation{
		{"NUL", "a%00b", true},
		{"invalid UTF-8", "%FF%FE", true},
	}
	strict := s["enum"] != nil || s["format"] != nil || typeOf(s) != "string"
	out = append(out, mutation{"word", "URGENT", strict})
	if max, ok := number(s, "maxLength"); ok {
		out = append(out, mutation{"too long", strings.Repeat("x", int(max)+1), true})
	}
	if t := typeOf(s); t == "integer" {
		out = append(out,
			mutation{"past int64", "99999999999999999999", true},
			mutation{"min int64", esc("-9223372036854775808"), true},
			mutation{"fraction", "1.5", true},
		)
	}
	return out
}

func bodyFor(op operation, ids idsOf, resolve func(schema) schema) any {
	if op.Body == nil {
		return nil
	}
	return example(op.Body, "body", ids, resolve)
}

func orEmpty(s schema) schema {
	if s == nil {
		return schema{"type": "object"}
	}
	return s
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// duplicateKeys writes body with its first key twice.
func duplicateKeys(body map[string]any) string {
	b, _ := json.Marshal(body)
	for k := range body {
		v, _ := json.Marshal(body[k])
		return fmt.Sprintf(`{%q: %s, %s`, k, v, b[1:])
	}
	return `{"a": 1, "a": 2}`
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
