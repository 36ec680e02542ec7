package tasks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/httpx"
)

// A list's sort order is a series of terms, most significant first, and
// the id, descending, last; a cursor is the values of those terms for the
// last task of a page, so that the next page starts after it with a
// condition an index can seek to (keyset pagination), whatever its depth.

// sortTerm is one term of a sort order: an SQL expression over a task's
// columns, its direction, and its value for a task.
type sortTerm struct {
	expr  string
	desc  bool
	value func(*Task) any
	// parse reads the value back from a cursor.
	parse func(json.RawMessage) (any, error)
}

var (
	byCreated = func(desc bool) sortTerm {
		return sortTerm{expr: "created_at", desc: desc, value: func(t *Task) any { return t.CreatedAt.UTC() }, parse: parseTime}
	}
	dueLast = sortTerm{expr: "CASE WHEN due_date IS NULL THEN 1 ELSE 0 END", value: func(t *Task) any {
		if t.DueDate == nil {
			return 1
		}
		return 0
	}, parse: parseInt}
	byDue = func(desc bool) sortTerm {
		return sortTerm{expr: "due_date", desc: desc, value: func(t *Task) any {
			if t.DueDate == nil {
				return nil
			}
			return t.DueDate.UTC()
		}, parse: parseTime}
	}
	byPriority = func(rank map[string]int) sortTerm {
		expr := fmt.Sprintf("CASE priority WHEN 'high' THEN %d WHEN 'medium' THEN %d ELSE %d END", rank[PriorityHigh],
			rank[PriorityMedium], rank[PriorityLow])
		return sortTerm{expr: expr, value: func(t *Task) any { return rank[t.Priority] }, parse: parseInt}
	}
)

// sortOrders are the list's sort orders by their query value.
var sortOrders = map[string][]sortTerm{
	"-created_at": {byCreated(true)},
	"created_at":  {byCreated(false)},
	"due_date":    {dueLast, byDue(false)},
	"-due_date":   {dueLast, byDue(true)},
	"priority":    {byPriority(map[string]int{PriorityHigh: 0, PriorityMedium: 1, PriorityLow: 2}), byCreated(true)},
	"-priority":   {byPriority(map[string]int{PriorityHigh: 2, PriorityMedium: 1, PriorityLow: 0}), byCreated(true)},
}

// orderBy is the ORDER BY of terms, the id last.
func orderBy(terms []sortTerm) string {
	var parts []string
	for _, t := range terms {
		dir := " ASC"
		if t.desc {
			dir = " DESC"
		}
		parts = append(parts, t.expr+dir)
	}
	return strings.Join(append(parts, "id DESC"), ", ")
}

// cursor is what a cursor carries: the sort order and the last task's
// values of its terms, then its id.
type cursor struct {
	Sort   string            `json:"s"`
	Values []json.RawMessage `json:"v"`
}

var errBadCursor = apperr.Validation("cursor", "is not a cursor of this list (take next_cursor from the previous page, with the same sort)")

// nextCursor is the cursor of the page after t, in sort order sort: the
// JSON of a cursor, {"s":sort,"v":[values…, id]}, base64url without padding.
// It is written on every page, so it is appended by hand; the bytes are
// those encoding/json writes (TestCursorBytes).
func nextCursor(sort string, t *Task) string {
	var arr [160]byte
	b := append(arr[:0], `{"s":`...)
	b = httpx.AppendJSONString(b, sort)
	b = append(b, `,"v":[`...)
	for _, term := range sortOrders[sort] {
		switch v := term.value(t).(type) {
		case time.Time:
			b = httpx.AppendJSONTime(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		default: // nil: no due date
			b = append(b, "null"...)
		}
		b = append(b, ',')
	}
	b = httpx.AppendJSONUUID(b, t.ID)
	b = append(b, "]}"...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// after is the condition, with its arguments, that a task comes after the
// cursor's in sort order sort: t1 not before v1 AND ((t1 beyond v1) OR
// (t1 = v1 AND t2 beyond v2) OR … OR (all equal AND id < the cursor's)).
// A null value (no due date) is equal only to null and has nothing beyond
// it within its group.
func after(sort, raw string) (string, []any, error) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", nil, errBadCursor
	}
	var c cursor
	terms := sortOrders[sort]
	if json.Unmarshal(b, &c) != nil || c.Sort != sort || len(c.Values) != len(terms)+1 {
		return "", nil, errBadCursor
	}
	var id uuid.UUID
	if json.Unmarshal(c.Values[len(terms)], &id) != nil {
		return "", nil, errBadCursor
	}
	var ors []string
	var args []any
	var equal []string
	var equalArgs []any
	// The first term bounded on its own, where an index can seek to (the
	// alternatives below are not a range it can use).
	var bound string
	var boundArgs []any
	if v, err := terms[0].parse(c.Values[0]); err == nil && v != nil {
		op := " >= ?"
		if terms[0].desc {
			op = " <= ?"
		}
		bound, boundArgs = terms[0].expr+op+" AND ", []any{v}
	}
	for i, term := range terms {
		v, err := term.parse(c.Values[i])
		if err != nil {
			return "", nil, errBadCursor
		}
		if v != nil {
			op := " > ?"
			if term.desc {
				op = " < ?"
			}
			ors = append(ors, "("+strings.Join(append(append([]string{}, equal...), term.expr+op), " AND ")+")")
			args = append(append(args, equalArgs...), v)
			equal, equalArgs = append(equal, term.expr+" = ?"), append(equalArgs, v)
		} else {
			equal = append(equal, term.expr+" IS NULL")
		}
	}
	ors = append(ors, "("+strings.Join(append(equal, "id < ?"), " AND ")+")")
	args = append(append(args, equalArgs...), id)
	return "(" + bound + "(" + strings.Join(ors, " OR ") + "))", append(boundArgs, args...), nil
}

func parseTime(m json.RawMessage) (any, error) {
	if string(m) == "null" {
		return nil, nil
	}
	var t time.Time
	if err := json.Unmarshal(m, &t); err != nil {
		return nil, err
	}
	return t.UTC(), nil
}

func parseInt(m json.RawMessage) (any, error) {
	var n int
	if err := json.Unmarshal(m, &n); err != nil {
		return nil, err
	}
	return n, nil
}
