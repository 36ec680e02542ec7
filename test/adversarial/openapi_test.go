package adversarial

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// schema is a JSON Schema object of the OpenAPI document, as decoded.
type schema = map[string]any

// operation is one method on one path of the OpenAPI document.
type operation struct {
	Method string
	Path   string
	Params []param
	Body   schema // nil when the operation takes none
	Secure bool
}

type param struct {
	Name   string
	In     string
	Schema schema
}

func (o operation) String() string { return o.Method + " " + o.Path }

func (o operation) pathParams() []param {
	var out []param
	for _, p := range o.Params {
		if p.In == "path" {
			out = append(out, p)
		}
	}
	return out
}

func (o operation) queryParams() []param {
	var out []param
	for _, p := range o.Params {
		if p.In == "query" {
			out = append(out, p)
		}
	}
	return out
}

// document reads the app's OpenAPI document: the operations (sorted, so runs
// are repeatable) and a resolver of schema references.
func document(t *testing.T, app *testkit.App) ([]operation, func(schema) schema) {
	t.Helper()
	doc := app.Do(t, nil, http.MethodGet, "/openapi.json", nil).Expect(t, http.StatusOK).JSON(t)
	components := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var resolve func(schema) schema
	resolve = func(s schema) schema {
		if ref, ok := s["$ref"].(string); ok {
			return resolve(components[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any))
		}
		return s
	}
	var ops []operation
	for path, item := range doc["paths"].(map[string]any) {
		for method, raw := range item.(map[string]any) {
			o := raw.(map[string]any)
			op := operation{Method: strings.ToUpper(method), Path: path}
			if sec, ok := o["security"].([]any); ok && len(sec) > 0 {
				op.Secure = true
			}
			params, _ := o["parameters"].([]any)
			for _, p := range params {
				pm := p.(map[string]any)
				op.Params = append(op.Params, param{Name: pm["name"].(string), In: pm["in"].(string),
					Schema: resolve(pm["schema"].(map[string]any))})
			}
			if rb, ok := o["requestBody"].(map[string]any); ok {
				// A raw body (a signed webhook) has no JSON schema to follow.
				if content, ok := rb["content"].(map[string]any)["application/json"].(map[string]any); ok {
					op.Body = resolve(content["schema"].(map[string]any))
				}
			}
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	return ops, resolve
}

// typeOf is a schema's type without null ("string" for ["string", "null"]).
func typeOf(s schema) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if x != "null" {
				return x.(string)
			}
		}
	}
	return ""
}

func nullable(s schema) bool {
	if t, ok := s["type"].([]any); ok {
		return slices.Contains(t, any("null"))
	}
	return false
}

func number(s schema, key string) (float64, bool) {
	v, ok := s[key].(float64)
	return v, ok
}

// idsOf is what the value generator fills id fields with.
type idsOf struct {
	task, subtask string
}

// example makes a valid value for s (named name): every property of an
// object, enums' first value, numbers inside their bounds, ids from ids.
func example(s schema, name string, ids idsOf, resolve func(schema) schema) any {
	s = resolve(s)
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	switch typeOf(s) {
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			out[k] = example(v.(map[string]any), k, ids, resolve)
		}
		return out
	case "array":
		items, _ := s["items"].(map[string]any)
		if items == nil {
			return []any{}
		}
		return []any{example(items, strings.TrimSuffix(name, "s"), ids, resolve)}
	case "integer", "number":
		switch name {
		case "offset_minutes":
			return -15
		case "version":
			return 1
		}
		lo, hasLo := number(s, "minimum")
		hi, hasHi := number(s, "maximum")
		v := 1.0
		if hasLo && v < lo {
			v = lo
		}
		if hasHi && v > hi {
			v = hi
		}
		return v
	case "boolean":
		return false
	case "string":
		return exampleString(s, name, ids)
	}
	return nil
}

var fixedStrings = map[string]string{
	"rrule":         "FREQ=DAILY",
	"endpoint":      "https://push.example.com/send/abc",
	"email":         "mallory@example.com",
	"timezone":      "UTC",
	"content":       "hello",
	"title":         "hello",
	"refresh_token": "not-a-token",
	"id_token":      "not-a-token",
}

func exampleString(s schema, name string, ids idsOf) string {
	switch s["format"] {
	case "uuid":
		if strings.HasPrefix(name, "subtask") {
			return ids.subtask
		}
		return ids.task
	case "date-time":
		return time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	case "email":
		return "mallory@example.com"
	}
	switch name {
	case "p256dh_key":
		k, _ := ecdh.P256().GenerateKey(rand.Reader)
		return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())
	case "auth_key":
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	if v, ok := fixedStrings[name]; ok {
		return v
	}
	n := 1
	if lo, ok := number(s, "minLength"); ok && int(lo) > n {
		n = int(lo)
	}
	return strings.Repeat("x", n)
}

var pathSegment = regexp.MustCompile(`/([a-z-]+)/\{id\}`)

// ownerIDs maps the resource named before {id} in a path to the owner's id
// of that kind. A route whose resource is not here fails the sweep, so a new
// route cannot slip by untested.
func ownerIDs(f *fixture) map[string]string {
	return map[string]string{
		"tasks":          f.task,
		"subtasks":       f.subtask,
		"reminders":      f.reminder,
		"templates":      f.template,
		"notes":          f.note,
		"notifications":  f.notification,
		"recovery":       f.tombstone,
		"tombstones":     f.tombstone,
		"recover":        f.tombstone,
		"users":          f.user.ID.String(),
		"focus-sessions": f.focusSession,
		"export":         f.export,
		"exports":        f.export,
	}
}

// fillPath puts ids into a path template; ok is false when the resource of
// {id} is unknown.
func fillPath(path string, ids map[string]string) (string, bool) {
	m := pathSegment.FindStringSubmatch(path)
	if m == nil {
		return path, true
	}
	id, ok := ids[m[1]]
	return strings.Replace(path, "{id}", id, 1), ok
}

// names of everything the owner has, to find in an intruder's answers.
func (f *fixture) secrets() []string {
	return []string{f.task, f.subtask, f.reminder, f.template, f.note, f.taskNote, f.tombstone, f.notification,
		f.focusSession, f.user.ID.String(), "Secret", "alice@example.com"}
}

func revealed(body []byte, secrets []string) string {
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			return s
		}
	}
	return ""
}

func TestSchemaNamesAreUniqueAndMeaningful(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	doc := app.Do(t, nil, http.MethodGet, "/openapi.json", nil).Expect(t, http.StatusOK).JSON(t)
	names := doc["components"].(map[string]any)["schemas"].(map[string]any)
	word := regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	suffixed := regexp.MustCompile(`^(.*[A-Za-z])\d+$`)
	for name := range names {
		if !word.MatchString(name) {
			t.Errorf("schema name %q is not a plain word", name)
		}
		if m := suffixed.FindStringSubmatch(name); m != nil {
			if _, twin := names[m[1]]; twin {
				t.Errorf("schema %q looks like a numbered twin of %q", name, m[1])
			}
		}
	}
	// Each write operation is validated against its own module's schema.
	ops, _ := document(t, app)
	for _, op := range ops {
		if op.Body == nil || !strings.HasPrefix(op.Path, "/api/v1/tasks/{id}") || op.Path != "/api/v1/tasks/{id}" {
			continue
		}
		props := op.Body["properties"].(map[string]any)
		for _, want := range []string{"title", "priority", "due_date", "version"} {
			if _, ok := props[want]; !ok {
				t.Errorf("%s: body schema lacks %q: %v", op, want, props)
			}
		}
		if _, ok := props["content"]; ok {
			t.Errorf("%s: body schema is a note's", op)
		}
	}
}

// TestEveryInputIsBounded: integers have a minimum and a maximum (bounds are
// the schema's job, not arithmetic's), free strings a maxLength, arrays a
// maxItems, so no value reaches a column or a loop unbounded.
func TestEveryInputIsBounded(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	ops, resolve := document(t, app)
	var walk func(op operation, where string, s schema)
	walk = func(op operation, where string, s schema) {
		s = resolve(s)
		switch typeOf(s) {
		case "integer", "number":
			_, lo := number(s, "minimum")
			_, hi := number(s, "maximum")
			if !lo || !hi {
				t.Errorf("%s: %s has no minimum and maximum", op, where)
			}
		case "string":
			_, max := number(s, "maxLength")
			if !max && s["enum"] == nil && s["format"] == nil {
				t.Errorf("%s: %s has no maxLength", op, where)
			}
		case "object":
			props, _ := s["properties"].(map[string]any)
			for k, v := range props {
				walk(op, where+"."+k, v.(map[string]any))
			}
		case "array":
			if _, max := number(s, "maxItems"); !max {
				t.Errorf("%s: %s has no maxItems", op, where)
			}
			if items, ok := s["items"].(map[string]any); ok {
				walk(op, where+"[]", items)
			}
		}
	}
	for _, op := range ops {
		for _, p := range op.Params {
			if p.In != "header" { // headers are checked where they are read
				walk(op, p.In+" "+p.Name, p.Schema)
			}
		}
		if op.Body != nil {
			walk(op, "body", op.Body)
		}
	}
}

// TestNoUserReachesAnotherUsersData is the ownership sweep: Alice owns one
// of everything; Mallory calls every operation of the OpenAPI document with
// Alice's ids (in the path, and in every id field of the body and query).
// No answer may be a success that touches or reveals Alice's data, and
// Alice's rows must be exactly as before.
func TestNoUserReachesAnotherUsersData(t *testing.T) {
	t.Parallel()
	app := startWithProviders(t)
	alice := app.SignIn(t, "alice@example.com")
	mallory := app.SignIn(t, "mallory@example.com")
	f := own(t, app, alice)
	before := snapshot(t, app, alice)
	// Mallory's live stream is open through the sweep: nothing of Alice's
	// may arrive on it.
	ticket := app.Do(t, mallory, http.MethodPost, "/api/v1/events/ticket", nil).Expect(t, http.StatusOK).Data(t)["ticket"].(string)
	stream := testkit.OpenSSE(t, app.URL+"/api/v1/events?ticket="+ticket, nil)
	ops, resolve := document(t, app)
	ids := ownerIDs(f)
	secrets := f.secrets()
	ownIDs := idsOf{task: f.task, subtask: f.subtask}

	sent, covered := 0, 0
	for _, op := range ops {
		path, known := fillPath(op.Path, ids)
		if !known {
			t.Errorf("%s: the sweep does not know whose id goes in this path; add its resource to ownerIDs", op)
			continue
		}
		if !op.Secure {
			continue // public routes (sign-in, health, keys) have no owner
		}
		hasID := len(op.pathParams()) > 0
		var query []string
		for _, p := range op.queryParams() {
			if p.Schema["format"] == "uuid" {
				query = append(query, p.Name+"="+f.task)
				hasID = true
			}
		}
		var body any
		if op.Body != nil {
			body = example(op.Body, "body", ownIDs, resolve)
			hasID = hasID || strings.Contains(fmt.Sprint(body), f.task)
		}
		if len(query) > 0 {
			path += "?" + strings.Join(query, "&")
		}
		res := app.Send(t, mallory, keyed(testkit.Request{Method: op.Method, Path: path, Body: body}))
		sent++
		if hasID {
			covered++
		}
		switch {
		case res.Status >= 500 && !unavailable(t, res):
			t.Errorf("%s as another user: %d %s", op, res.Status, res.Body)
		case res.Status >= 500:
		case res.Status < 300 && hasID && len(op.pathParams()) > 0:
			t.Errorf("%s with another user's id in the path answered %d: %s", op, res.Status, res.Body)
		case res.Status < 300:
			if s := revealed(res.Body, secrets); s != "" {
				t.Errorf("%s revealed %q to another user: %s", op, s, res.Body)
			}
		}
	}
	// The sweep ran as Mallory to the end (no call of hers ended her session).
	app.Do(t, mallory, http.MethodGet, "/api/v1/users/me", nil).Expect(t, http.StatusOK)
	// Her stream carried only her own changes, up to a marker of hers.
	marker := app.Do(t, mallory, http.MethodPost, "/api/v1/notes", map[string]any{"content": "end of sweep"}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	for received := 0; ; received++ {
		e := stream.Next(t, 10*time.Second)
		if s := revealed([]byte(e.Data), secrets); s != "" {
			t.Errorf("Mallory's live stream carried %q: %+v", s, e)
		}
		if strings.Contains(e.Data, marker) {
			t.Logf("Mallory's live stream: %d events of hers, none of Alice's", received)
			break
		}
	}
	after := snapshot(t, app, alice)
	for table, rows := range before {
		if after[table] != rows {
			t.Errorf("another user's requests changed %s:\nbefore %s\nafter  %s", table, rows, after[table])
		}
	}
	t.Logf("ownership sweep: %d operations called with another user's ids (%d carry an id), 0 of them allowed through",
		sent, covered)
}

// ownedTables are the tables with a user_id column, read from the database:
// a table added later is swept without anyone listing it.
func ownedTables(t *testing.T, app *testkit.App) []string {
	t.Helper()
	tables, err := app.DB.Gorm.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, table := range tables {
		if app.DB.Gorm.Migrator().HasColumn(table, "user_id") {
			out = append(out, table)
		}
	}
	if len(out) < 16 {
		t.Fatalf("only %d tables with a user_id: %v", len(out), out)
	}
	return out
}

// snapshot dumps every row the user owns, table by table (counts kept for
// the user included).
func snapshot(t *testing.T, app *testkit.App, u *testkit.User) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range ownedTables(t, app) {
		var rows []map[string]any
		if err := app.DB.Gorm.Table(table).Where("user_id = ?", u.ID).Order("1, 2").Find(&rows).Error; err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		out[table] = fmt.Sprint(rows)
	}
	var user []map[string]any
	app.DB.Gorm.Table("users").Where("id = ?", u.ID).Find(&user)
	out["users"] = fmt.Sprint(user)
	return out
}

// TestEveryListPagesByCursor: every list that takes an offset takes a
// cursor too, and walking any list one row at a time by next_cursor gives
// the rows the offsets give, in the same order, the last page without a
// cursor; a cursor taken from another list is a 400.
func TestEveryListPagesByCursor(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t)
	u := app.SignIn(t, "owner@example.com")
	f := own(t, app, u)
	create(t, app, u, "/api/v1/notes", map[string]any{"content": "A second note"})
	ops, _ := document(t, app)
	type page struct {
		Data       []map[string]any `json:"data"`
		Pagination struct {
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		} `json:"pagination"`
	}
	walked, cursors := 0, map[string]string{}
	for _, op := range ops {
		if op.Method != http.MethodGet || !slices.ContainsFunc(op.queryParams(), func(p param) bool { return p.Name == "offset" }) {
			continue
		}
		if !slices.ContainsFunc(op.queryParams(), func(p param) bool { return p.Name == "cursor" }) {
			t.Errorf("%s takes an offset but no cursor", op)
			continue
		}
		path, ok := fillPath(op.Path, ownerIDs(f))
		if !ok {
			t.Fatalf("%s: no id for its path", op)
		}
		var all page
		app.Do(t, u, http.MethodGet, path, nil).Expect(t, http.StatusOK).Decode(t, &all)
		var byCursor, byOffset []any
		cursor := ""
		for n := 0; n <= len(all.Data); n++ {
			var p, o page
			q := "?limit=1"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			app.Do(t, u, http.MethodGet, path+q, nil).Expect(t, http.StatusOK).Decode(t, &p)
			app.Do(t, u, http.MethodGet, fmt.Sprintf("%s?limit=1&offset=%d", path, n), nil).Expect(t, http.StatusOK).Decode(t, &o)
			for _, d := range p.Data {
				byCursor = append(byCursor, d["id"])
			}
			for _, d := range o.Data {
				byOffset = append(byOffset, d["id"])
			}
			if p.Pagination.HasMore != (p.Pagination.NextCursor != nil) {
				t.Fatalf("%s page %d: has_more %v, next_cursor %v", op, n, p.Pagination.HasMore, p.Pagination.NextCursor)
			}
			if p.Pagination.NextCursor == nil {
				break
			}
			cursor = *p.Pagination.NextCursor
			cursors[op.Path] = cursor
		}
		var want []any
		for _, d := range all.Data {
			want = append(want, d["id"])
		}
		if fmt.Sprint(byCursor) != fmt.Sprint(want) || fmt.Sprint(byOffset) != fmt.Sprint(want) {
			t.Errorf("%s:\nby cursor %v\nby offset %v\nwant      %v", op, byCursor, byOffset, want)
		}
		if len(want) > 1 {
			walked++
		}
	}
	if walked < 6 {
		t.Fatalf("only %d lists had more than one row to walk", walked)
	}
	notes, activity := cursors["/api/v1/notes"], cursors["/api/v1/activity"]
	if notes == "" || activity == "" {
		t.Fatalf("no cursor of notes (%q) or of the activity log (%q)", notes, activity)
	}
	app.Do(t, u, http.MethodGet, "/api/v1/notes?cursor="+activity, nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	app.Do(t, u, http.MethodGet, "/api/v1/activity?cursor="+notes, nil).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
}
