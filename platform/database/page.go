package database

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/platform/apperr"
)

// CountCap bounds a list's total that is counted rather than kept: at most
// this many rows past the page are counted, so that the cost of a page does
// not grow with the user's history (the total is then a lower bound, and
// has_more stays exact).
const CountCap = 1000

// Kept is a list's total kept per user in row_counts by triggers on the
// list's table: the sum of the Plus lists less the Minus lists.
type Kept struct {
	UserID uuid.UUID
	Plus   []string
	Minus  []string
}

// Window is which page of a list to read: Limit rows, after skipping
// Offset rows that follow Cursor's row (or the list's start).
type Window struct {
	// Cursor is the Next of the previous page, or empty.
	Cursor string
	Offset int
	Limit  int
}

// Keyset is a list's order: a time column then the id, both descending
// (newest first) or both ascending. Its cursor is the last row's values of
// both, so that the page after it starts where an index in that order can
// seek to, however deep (keyset pagination).
type Keyset[T any] struct {
	// List names the list in its cursors: another list's cursor is refused.
	List   string
	Column string
	Asc    bool
	// Key is a row's values of Column and of its id.
	Key func(*T) (time.Time, uuid.UUID)
}

// Paged is one page of a list.
type Paged[T any] struct {
	Rows  []T
	Total int64
	// Next is the cursor of the page after this one; empty on the last.
	Next string
}

// keyCursor is what a Keyset's cursor carries.
type keyCursor struct {
	List string    `json:"l"`
	At   time.Time `json:"t"`
	ID   uuid.UUID `json:"id"`
}

// ErrBadCursor answers a cursor that is not the list's own.
var ErrBadCursor = apperr.Validation("cursor", "is not a cursor of this list (take next_cursor from the previous page)")

func (k Keyset[T]) order() string {
	if k.Asc {
		return k.Column + " ASC, id ASC"
	}
	return k.Column + " DESC, id DESC"
}

func (k Keyset[T]) cursor(row *T) string {
	at, id := k.Key(row)
	b, _ := json.Marshal(keyCursor{List: k.List, At: at.UTC(), ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

// after restricts q to the rows after the cursor's: a row comparison, which
// both databases answer with a seek in the index of the list's order.
func (k Keyset[T]) after(q *gorm.DB, raw string) (*gorm.DB, error) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	var c keyCursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.List != k.List || c.At.IsZero() {
		return nil, ErrBadCursor
	}
	op := "<"
	if k.Asc {
		op = ">"
	}
	return q.Where("("+k.Column+", id) "+op+" (?, ?)", c.At.UTC(), c.ID), nil
}

// literalLimit is a LIMIT and OFFSET written as numbers, not parameters: a
// statement PostgreSQL plans once for every user (a prepared statement's
// generic plan) then knows it reads one page, and keeps to the index of the
// list's order instead of sorting a long-time user's rows (a parameter's
// limit is planned as a tenth of the rows).
type literalLimit struct{ limit, offset int }

func (literalLimit) Name() string { return "LIMIT" }

func (l literalLimit) Build(b clause.Builder) {
	b.WriteString("LIMIT " + strconv.Itoa(l.limit))
	if l.offset > 0 {
		b.WriteString(" OFFSET " + strconv.Itoa(l.offset))
	}
}

func (l literalLimit) MergeClause(c *clause.Clause) { c.Name, c.Expression = "", l }

// Page returns the page w of q's rows in order k, and their total: kept's
// when it is given (one or two rows of row_counts), else q's rows counted
// up to CountCap past the page. One row more than the page is read, so that
// the page knows whether another follows and a bounded total is never
// below what the page shows or says follows it. A page past offset 0 is
// found by its ids in the index first (a deferred join), so that the rows
// skipped are never read.
func Page[T any](q *gorm.DB, k Keyset[T], w Window, kept *Kept) (Paged[T], error) {
	var out Paged[T]
	page := q.Session(&gorm.Session{})
	if w.Cursor != "" {
		var err error
		if page, err = k.after(page, w.Cursor); err != nil {
			return out, err
		}
	}
	page = page.Order(k.order())
	if q.Dialector.Name() == "postgres" {
		page = page.Clauses(literalLimit{limit: w.Limit + 1, offset: w.Offset})
	} else { // SQLite plans each statement anew; its LIMIT builder knows only gorm's own clause
		page = page.Offset(w.Offset).Limit(w.Limit + 1)
	}
	if w.Offset > 0 {
		page = q.Session(&gorm.Session{NewDB: true}).Model(new(T)).Where("id IN (?)", page.Select("id")).Order(k.order())
	}
	if err := page.Find(&out.Rows).Error; err != nil {
		return out, fmt.Errorf("list %T: %w", *new(T), err)
	}
	more := len(out.Rows) > w.Limit
	if more {
		out.Rows = out.Rows[:w.Limit]
		out.Next = k.cursor(&out.Rows[len(out.Rows)-1])
	}
	db := q.Session(&gorm.Session{NewDB: true})
	var err error
	if kept != nil {
		lists := append(append([]string{}, kept.Plus...), kept.Minus...)
		err = db.Raw(`SELECT COALESCE(SUM(CASE WHEN list IN ? THEN n ELSE -n END), 0) FROM row_counts WHERE user_id = ? AND list IN ?`,
			kept.Plus, kept.UserID, lists).Scan(&out.Total).Error
	} else {
		err = db.Table("(?) AS bounded", q.Session(&gorm.Session{}).Select("1").Limit(w.Offset+w.Limit+CountCap)).Count(&out.Total).Error
	}
	if err != nil {
		return out, fmt.Errorf("count %T: %w", *new(T), err)
	}
	if len(out.Rows) > 0 && w.Cursor == "" {
		seen := int64(w.Offset + len(out.Rows))
		if more {
			seen++
		}
		out.Total = max(out.Total, seen)
	}
	return out, nil
}

// PurgeBatch is how many rows one statement of DeleteInBatches deletes.
const PurgeBatch = 5000

// DeleteInBatches deletes T's rows that match where, PurgeBatch rows per
// statement (each its own transaction), until none is left, and returns
// how many it deleted: a purge after a long pause (or a first one over
// years of rows) never holds its locks, or the rows' triggers' work, in one
// long transaction. Each batch's keys are read first and the rows deleted
// by key, through the primary key's index (a DELETE … IN (subquery) was
// planned as a scan of the whole table per batch). key is T's primary
// key's columns ("id", or "a, b").
func DeleteInBatches[T any](ctx context.Context, db *gorm.DB, key, where string, args ...any) (int64, error) {
	columns := strings.Split(key, ",")
	for i := range columns {
		columns[i] = strings.TrimSpace(columns[i])
	}
	var total int64
	for {
		var found []map[string]any
		if err := db.WithContext(ctx).Model(new(T)).Select(key).Where(where, args...).Limit(PurgeBatch).Find(&found).Error; err != nil {
			return total, fmt.Errorf("purge %T: %w", *new(T), err)
		}
		if len(found) == 0 {
			return total, nil
		}
		del := db.WithContext(ctx)
		if len(columns) == 1 {
			keys := make([]any, len(found))
			for i, r := range found {
				keys[i] = r[columns[0]]
			}
			del = del.Where(columns[0]+" IN ?", keys)
		} else {
			keys := make([][]any, len(found))
			for i, r := range found {
				for _, c := range columns {
					keys[i] = append(keys[i], r[c])
				}
			}
			del = del.Where("("+key+") IN ?", keys)
		}
		res := del.Delete(new(T))
		if res.Error != nil {
			return total, fmt.Errorf("purge %T: %w", *new(T), res.Error)
		}
		total += res.RowsAffected
		if len(found) < PurgeBatch {
			return total, nil
		}
	}
}
