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

// List hands each task of one page of the user's tasks, in order, to each
// (the Task is reused for the next row: each must copy what it keeps) and
// returns the total that match.
//
// It is the busiest read of the API, so it is written by hand: one round
// trip (the total is a scalar subquery, which both engines run once),
// explicit columns scanned without reflection into one Task, on the read
// pool.
func (s *Service) List(ctx context.Context, p auth.Principal, f ListFilter, each func(*Task)) (int64, error) {
	where, args := listWhere(p, f)
	order, ok := sortOrders[f.Sort]
	if !ok {
		order = sortOrders["-created_at"]
	}
	query := "SELECT " + taskColumns + ", (SELECT count(*) FROM tasks WHERE " + where + ")" +
		" FROM tasks WHERE " + where + " ORDER BY " + order + ", id DESC" +
		" LIMIT " + strconv.Itoa(f.Limit) + " OFFSET " + strconv.Itoa(f.Offset)
	rows, err := s.db.Query(ctx, query, append(args, args...)...)
	if err != nil {
		return 0, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var t Task
	var total int64
	var id, userID, templateID pgtype.UUID // binary on PostgreSQL, text on SQLite
	dest := []any{&id, &userID, &templateID, &t.Title, &t.Description, &t.Priority, &t.DueDate,
		&t.EstimatedDuration, &t.FocusTimeSeconds, &t.Completed, &t.CompletedAt, &t.CompletedBy, &t.Hidden,
		&t.Archived, &t.SubtaskCount, &t.SubtaskCompletedCount, &t.Version, &t.CreatedAt, &t.UpdatedAt, &total}
	rowsSeen := 0
	for rows.Next() {
		t = Task{}
		if err := rows.Scan(dest...); err != nil {
			return 0, fmt.Errorf("list tasks: %w", err)
		}
		t.ID, t.UserID = id.Bytes, userID.Bytes
		if templateID.Valid {
			tid := uuid.UUID(templateID.Bytes)
			t.TemplateID = &tid
		}
		each(&t)
		rowsSeen++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list tasks: %w", err)
	}
	if rowsSeen == 0 && f.Offset > 0 {
		// A page past the end has no row to carry the total.
		rows, err := s.db.Query(ctx, "SELECT count(*) FROM tasks WHERE "+where, args...)
		if err != nil {
			return 0, fmt.Errorf("count tasks: %w", err)
		}
		defer rows.Close()
		if rows.Next() {
			err = rows.Scan(&total)
		}
		if err = errors.Join(err, rows.Err()); err != nil {
			return 0, fmt.Errorf("count tasks: %w", err)
		}
	}
	return total, nil
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
