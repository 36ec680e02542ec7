package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/database"
)

// taskColumns are the columns of Task in scanTask's order.
const taskColumns = `id, user_id, template_id, title, description, priority, due_date, estimated_duration,
	focus_time_seconds, completed, completed_at, completed_by, hidden, archived, subtask_count,
	subtask_completed_count, version, created_at, updated_at`

// countCap bounds the total of a list filtered by more than completion,
// visibility and archiving: it counts at most this many rows past the
// page, so that its cost does not grow with the user's history (has_more
// stays exact).
const countCap = 1000

// List hands each task of one page of the user's tasks, in order, to each
// (the Task is reused for the next row: each must copy what it keeps) and
// returns the total that match (at least what the page shows, and one
// more when a row follows it).
//
// It is the busiest read of the API, so it is written by hand: one round
// trip, explicit columns scanned without reflection into one Task, on the
// read pool. The total costs the same whatever the user's history: with no
// filter, or filters of completion, visibility and archiving only, it is a
// sum of the counts triggers keep in task_counts; with other filters it is
// counted up to countCap rows past the page (a lower bound beyond).
func (s *Service) List(ctx context.Context, p auth.Principal, f ListFilter, each func(*Task)) (total int64, next string, err error) {
	sort := f.Sort
	if _, ok := sortOrders[sort]; !ok {
		sort = "-created_at"
	}
	if anchorable(f, sort) {
		key := s.anchors.key(p.UserID, f, sort, f.Offset)
		if a, ok := s.anchors.cache.Get(key); ok {
			pg, err := s.listPage(ctx, p, f, sort, &a, each)
			if err != nil || !pg.stale {
				s.anchors.uses.WithLabelValues("hit").Inc()
				return pg.total, pg.next, err
			}
			s.anchors.uses.WithLabelValues("stale").Inc()
			s.anchors.cache.Remove(key)
		} else {
			s.anchors.uses.WithLabelValues("miss").Inc()
		}
	}
	pg, err := s.listPage(ctx, p, f, sort, nil, each)
	return pg.total, pg.next, err
}

// listed is what listPage found.
type listed struct {
	total int64
	next  string
	// stale: the anchor's generation has passed, and no row was handed on.
	stale bool
}

// listPage reads one page of List, from the anchor at f.Offset when it is
// given (and then reports a stale one before handing any row on), and
// keeps anchors at the page's first row and at the row after it.
func (s *Service) listPage(ctx context.Context, p auth.Principal, f ListFilter, sort string, from *anchor,
	each func(*Task)) (listed, error) {
	var out listed
	where, args := listWhere(p, f)
	count, countArgs := listTotal(p, f, where, args)
	anchored := anchorable(f, sort)
	if anchored {
		count += ", COALESCE((SELECT generation FROM task_counts WHERE user_id = ?), 0)"
		countArgs = append(countArgs, p.UserID)
	}
	page, pageArgs := where, args
	offset := f.Offset
	switch {
	case from != nil:
		// The anchor's row is at f.Offset: the page starts with it (the id
		// descends in both orders).
		cond, condArgs := " AND (created_at, id) <= (?, ?)", []any{from.createdAt, from.id}
		if sort == "created_at" {
			cond = " AND created_at >= ? AND (created_at > ? OR (created_at = ? AND id <= ?))"
			condArgs = []any{from.createdAt, from.createdAt, from.createdAt, from.id}
		}
		page, pageArgs = where+cond, append(append([]any{}, args...), condArgs...)
		offset = 0
	case f.Cursor != "":
		cond, condArgs, err := after(sort, f.Cursor)
		if err != nil {
			return out, err
		}
		page, pageArgs = where+" AND "+cond, append(append([]any{}, args...), condArgs...)
	}
	order := orderBy(sortOrders[sort])
	limits := " ORDER BY " + order + " LIMIT " + strconv.Itoa(f.Limit+1) + " OFFSET " + strconv.Itoa(offset)
	query := "SELECT " + taskColumns + ", " + count + " FROM tasks WHERE " + page + limits
	if offset > 0 {
		// A deep page: the rows skipped are found in an index, without
		// reading them (the index of the list's order holds the id), and
		// only the page's rows are read.
		query = "SELECT " + taskColumns + ", " + count + " FROM tasks WHERE id IN (SELECT id FROM tasks WHERE " + page + limits +
			") ORDER BY " + order
	}
	rows, err := s.db.Query(ctx, query, append(countArgs, pageArgs...)...)
	if err != nil {
		return out, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var t, first, last Task
	var more bool
	var generation int64
	var id, userID, templateID pgtype.UUID // binary on PostgreSQL, text on SQLite
	dest := []any{&id, &userID, &templateID, &t.Title, &t.Description, &t.Priority, &t.DueDate,
		&t.EstimatedDuration, &t.FocusTimeSeconds, &t.Completed, &t.CompletedAt, &t.CompletedBy, &t.Hidden,
		&t.Archived, &t.SubtaskCount, &t.SubtaskCompletedCount, &t.Version, &t.CreatedAt, &t.UpdatedAt, &out.total}
	if anchored {
		dest = append(dest, &generation)
	}
	rowsSeen := 0
	for rows.Next() {
		t = Task{}
		if err := rows.Scan(dest...); err != nil {
			return out, fmt.Errorf("list tasks: %w", err)
		}
		t.ID, t.UserID = id.Bytes, userID.Bytes
		if rowsSeen++; rowsSeen == 1 {
			if from != nil && (generation != from.generation || t.ID != from.id) {
				out.stale = true
				return out, nil
			}
			first = t
		}
		if rowsSeen > f.Limit {
			more = true // the row after the page: it only says that there is one
			if anchored {
				s.anchors.cache.Add(s.anchors.key(p.UserID, f, sort, f.Offset+f.Limit), anchor{generation, t.CreatedAt, t.ID})
			}
			break
		}
		if templateID.Valid {
			tid := uuid.UUID(templateID.Bytes)
			t.TemplateID = &tid
		}
		each(&t)
		last = t
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("list tasks: %w", err)
	}
	if from != nil && rowsSeen == 0 {
		out.stale = true // the anchor's row is gone
		return out, nil
	}
	if anchored && rowsSeen > 0 && from == nil {
		s.anchors.cache.Add(s.anchors.key(p.UserID, f, sort, f.Offset), anchor{generation, first.CreatedAt, first.ID})
	}
	if rowsSeen == 0 {
		// No row carried the total (an empty list, or a page past the end).
		rows, err := s.db.Query(ctx, "SELECT "+count, countArgs...)
		if err != nil {
			return out, fmt.Errorf("count tasks: %w", err)
		}
		defer rows.Close()
		if rows.Next() {
			if anchored {
				err = rows.Scan(&out.total, &generation)
			} else {
				err = rows.Scan(&out.total)
			}
		}
		if err = errors.Join(err, rows.Err()); err != nil {
			return out, fmt.Errorf("count tasks: %w", err)
		}
	}
	if more {
		out.next = nextCursor(sort, &last)
	}
	if rowsSeen > 0 && f.Cursor == "" {
		// A bounded count is at least what the page saw.
		out.total = max(out.total, int64(f.Offset+min(rowsSeen, f.Limit))+boolInt(more))
	}
	return out, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// listTotal is the SQL expression of a list's total and its arguments.
func listTotal(p auth.Principal, f ListFilter, where string, args []any) (string, []any) {
	if f.Priority != nil || f.DueBefore != nil || f.DueAfter != nil || strings.TrimSpace(f.Query) != "" {
		return "(SELECT count(*) FROM (SELECT 1 FROM tasks WHERE " + where + " LIMIT " +
			strconv.Itoa(f.Offset+f.Limit+countCap) + ") AS bounded)", args
	}
	var cols []string
	for k := range 8 {
		completed, hidden, archived := k&4 != 0, k&2 != 0, k&1 != 0
		if (f.Completed != nil && *f.Completed != completed) || (f.Hidden != nil && *f.Hidden != hidden) ||
			(f.Archived != nil && *f.Archived != archived) {
			continue
		}
		cols = append(cols, fmt.Sprintf("s%d%d%d", k>>2&1, k>>1&1, k&1))
	}
	return "COALESCE((SELECT " + strings.Join(cols, " + ") + " FROM task_counts WHERE user_id = ?), 0)", []any{p.UserID}
}

// listWhere is the filter of List with ? marks and its arguments.
func listWhere(p auth.Principal, f ListFilter) (string, []any) {
	clauses := []string{"user_id = ?"}
	args := []any{p.UserID}
	add := func(clause string, a ...any) {
		clauses = append(clauses, clause)
		args = append(args, a...)
	}
	if f.Completed != nil {
		add("completed = ?", *f.Completed)
	}
	if f.Hidden != nil {
		add("hidden = ?", *f.Hidden)
	}
	if f.Archived != nil {
		add("archived = ?", *f.Archived)
	}
	if f.Priority != nil {
		add("priority = ?", *f.Priority)
	}
	if f.DueBefore != nil {
		add("due_date IS NOT NULL AND due_date < ?", f.DueBefore.UTC())
	}
	if f.DueAfter != nil {
		add("due_date IS NOT NULL AND due_date > ?", f.DueAfter.UTC())
	}
	if term := strings.TrimSpace(f.Query); term != "" {
		pattern := "%" + database.EscapeLike(strings.ToLower(term)) + "%"
		add(`(LOWER(title) LIKE ? ESCAPE '\' OR LOWER(description) LIKE ? ESCAPE '\')`, pattern, pattern)
	}
	return strings.Join(clauses, " AND "), args
}
