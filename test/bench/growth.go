package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The growth of one user's data: a long-time user, with years of history
// beside the same 200 open tasks as a new user, should cost about what the
// new user costs on the pages everyone opens. seedHistory writes that
// history straight into the database, as the API would have written it
// over the years; benchGrowth drives each path for both users, rounds
// alternated, and the table shows the long-time user's req/s as a share of
// the new user's.

// history is how much a long-time user has.
type history struct {
	tasks             int // completed (nine in ten) or archived, beside the 200 open
	notes             int
	notesArchived     int // the oldest notes are archived
	activity          int
	notifications     int
	notificationsRead int // the oldest are read
}

var longTime = history{tasks: 19_800, notes: 2_000, notesArchived: 2_000, activity: 20_000, notifications: 5_000,
	notificationsRead: 5_000}

// current is what both users have of this week, besides their 200 open
// tasks: a page of done tasks, more than a page of notes and of
// notifications, so that both users' pages are full and the comparison is
// of history alone.
var current = history{tasks: 50, notes: 120, notesArchived: 20, notifications: 120, notificationsRead: 60}

// growthPaths are the pages measured: the web client's own requests (no
// limit: pages of 100) and the bench's usual page of 25.
var growthPaths = []string{
	"/api/v1/tasks?limit=25",
	"/api/v1/tasks",
	"/api/v1/tasks?completed=false",
	"/api/v1/tasks?completed=true&limit=25",
	"/api/v1/notes",
	"/api/v1/activity",
	"/api/v1/notifications",
	"/api/v1/recovery",
}

// deepPage is a deep page of the long-time user's completed tasks, against
// its first page.
const (
	firstCompleted = "/api/v1/tasks?completed=true&limit=25"
	deepCompleted  = "/api/v1/tasks?completed=true&limit=25&offset=10000"
)

type growthRow struct {
	path         string
	light, heavy result
}

type growthFigures struct {
	rows       []growthRow
	first      result // the long-time user's first page of completed tasks
	deep       result // the same at offset 10,000
	cursor     result // the same page, by its cursor
	historyDur time.Duration
}

// seedHistory adds h to the user's rows, dated evenly over span before
// now (the archived notes and read notifications among the older ones),
// through db (a PostgreSQL or SQLite handle on the server's database).
func seedHistory(db *sql.DB, postgres bool, userID string, h history, span time.Duration) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	at := func(i, n int) time.Time { // i of n, evenly over span, oldest first
		return now.Add(-span).Add(time.Duration(i) * span / time.Duration(n+1))
	}
	tasks := make([][]any, h.tasks)
	for i := range tasks {
		t := at(i, h.tasks)
		completed := i%10 != 0
		var completedAt, completedBy any
		if completed {
			completedAt, completedBy = t.Add(time.Hour), "manual"
		}
		tasks[i] = []any{uuid.NewString(), userID, fmt.Sprintf("Task %d", i), "", []string{"low", "medium", "high"}[i%3],
			0, completed, completedAt, completedBy, false, !completed, 0, 0, 1, t, t}
	}
	notes := make([][]any, h.notes)
	for i := range notes {
		t := at(i, h.notes)
		notes[i] = []any{uuid.NewString(), userID, fmt.Sprintf("Note %d", i), i < h.notesArchived, 1, t, t}
	}
	activity := make([][]any, h.activity)
	for i := range activity {
		activity[i] = []any{uuid.NewString(), userID, "task", uuid.NewString(), "completed", "user", "{}", at(i, h.activity)}
	}
	notifications := make([][]any, h.notifications)
	for i := range notifications {
		t := at(i, h.notifications)
		notifications[i] = []any{uuid.NewString(), userID, "reminder", "Reminder", fmt.Sprintf("Reminder %d", i), i < h.notificationsRead, t, t}
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	for _, batch := range []struct {
		table string
		cols  string
		rows  [][]any
	}{
		{"tasks", "id, user_id, title, description, priority, focus_time_seconds, completed, completed_at, completed_by, hidden, archived, " +
			"subtask_count, subtask_completed_count, version, created_at, updated_at", tasks},
		{"notes", "id, user_id, content, archived, version, created_at, updated_at", notes},
		{"activity_log", "id, user_id, entity_type, entity_id, action, source, extra_data, created_at", activity},
		{"notifications", "id, user_id, type, title, message, read, created_at, updated_at", notifications},
	} {
		if err := insertRows(tx, postgres, batch.table, batch.cols, batch.rows); err != nil {
			return fmt.Errorf("seed %s: %w", batch.table, err)
		}
	}
	return tx.Commit()
}

// insertRows inserts rows in statements of a few hundred rows each.
func insertRows(tx *sql.Tx, postgres bool, table, cols string, rows [][]any) error {
	const per = 400
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		args := make([]any, 0, len(chunk)*len(chunk[0]))
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, cols)
		for i, r := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j, v := range r {
				if j > 0 {
					b.WriteByte(',')
				}
				args = append(args, v)
				if postgres {
					fmt.Fprintf(&b, "$%d", len(args))
				} else {
					b.WriteByte('?')
				}
			}
			b.WriteByte(')')
		}
		if _, err := tx.Exec(b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// benchGrowth gives heavy its history and drives every growth path for
// light and heavy, alternated, o.rounds times.
func benchGrowth(o options, base string, db *sql.DB, postgres bool, light, heavy seeded) (growthFigures, error) {
	var f growthFigures
	began := time.Now()
	for _, u := range []seeded{light, heavy} {
		if err := seedHistory(db, postgres, u.ID, current, 7*24*time.Hour); err != nil {
			return f, err
		}
	}
	if err := seedHistory(db, postgres, heavy.ID, longTime, 2*365*24*time.Hour); err != nil {
		return f, err
	}
	if postgres {
		if _, err := db.Exec("VACUUM ANALYZE"); err != nil {
			return f, err
		}
	} else if _, err := db.Exec("ANALYZE"); err != nil {
		return f, err
	}
	f.historyDur = time.Since(began)
	const conns = 32 // as wrk ran it
	load, err := newWire(base, conns)
	if err != nil {
		return f, err
	}
	defer load.close()
	drive := func(path string, u seeded) result {
		return closedLoop(conns, 500*time.Millisecond, o.growthDuration, func(w, _ int) bool {
			status, err := load.get(w, path, u.Token)
			return err == nil && status == http.StatusOK
		})
	}
	lights := make([][]result, len(growthPaths))
	heavies := make([][]result, len(growthPaths))
	var firsts, deeps, cursors []result
	deepCursor, err := cursorAt(newClient(base, 1), heavy, 10_000)
	if err != nil {
		return f, err
	}
	for round := 1; round <= o.rounds; round++ {
		logf("growth round %d: %d paths, a user with 200 tasks and one with %d", round, len(growthPaths), 200+longTime.tasks)
		for i, p := range growthPaths {
			// Alternate which user goes first, so that neither always meets
			// the other's leftovers.
			if round%2 == 1 {
				lights[i] = append(lights[i], drive(p, light))
				heavies[i] = append(heavies[i], drive(p, heavy))
			} else {
				heavies[i] = append(heavies[i], drive(p, heavy))
				lights[i] = append(lights[i], drive(p, light))
			}
		}
		firsts = append(firsts, drive(firstCompleted, heavy))
		deeps = append(deeps, drive(deepCompleted, heavy))
		cursors = append(cursors, drive(firstCompleted+"&cursor="+deepCursor, heavy))
	}
	for i, p := range growthPaths {
		f.rows = append(f.rows, growthRow{path: p, light: median(lights[i]), heavy: median(heavies[i])})
	}
	f.first, f.deep, f.cursor = median(firsts), median(deeps), median(cursors)
	return f, nil
}

// cursorAt is the cursor of the page of completed tasks at offset.
func cursorAt(c *client, u seeded, offset int) (string, error) {
	var page struct {
		Pagination struct {
			NextCursor *string `json:"next_cursor"`
		} `json:"pagination"`
	}
	status, err := c.do(http.MethodGet, fmt.Sprintf("%s&offset=%d", firstCompleted, offset-25), u.Token, nil, &page)
	if err != nil || status != http.StatusOK || page.Pagination.NextCursor == nil {
		return "", fmt.Errorf("no cursor after offset %d: %d %v", offset, status, err)
	}
	return *page.Pagination.NextCursor, nil
}

// growthGoal is the least share of the new user's req/s the long-time user
// must get (1 / 1.5).
const growthGoal = 1 / 1.5

func printGrowth(name string, f growthFigures) {
	fmt.Printf("\n%s: a user with 200 open tasks, %d notes and %d notifications of this week against one with the same and %d tasks, %d notes, %d activity rows and %d notifications of two years' history (seeded in %s), 32 connections\n\n",
		name, current.notes, current.notifications, longTime.tasks, longTime.notes, longTime.activity, longTime.notifications,
		f.historyDur.Round(time.Millisecond))
	w := newTable()
	fmt.Fprintln(w, "path\t200 tasks req/s\tp99\t20,000 tasks req/s\tp99\terrors\tratio\tgoal\t")
	for _, r := range f.rows {
		ratio := r.heavy.Rate / r.light.Rate
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%.0f\t%s\t%d\t%.2f\t≥ %.2f %s\t\n", r.path, r.light.Rate, ms(r.light.P99), r.heavy.Rate, ms(r.heavy.P99),
			r.light.Errors+r.heavy.Errors, ratio, growthGoal, verdict(ratio >= growthGoal && r.light.Errors+r.heavy.Errors == 0))
	}
	ratio := f.deep.Rate / f.cursor.Rate
	fmt.Fprintf(w, "%s\t%.0f (cursor)\t%s\t%.0f\t%s\t%d\t%.2f\t≥ 0.50 %s\t\n", "completed at 10000: offset vs cursor", f.cursor.Rate,
		ms(f.cursor.P99), f.deep.Rate, ms(f.deep.P99), f.cursor.Errors+f.deep.Errors, ratio, verdict(ratio >= 0.5))
	ratio = f.cursor.Rate / f.first.Rate
	fmt.Fprintf(w, "%s\t%.0f (offset 0)\t%s\t%.0f\t%s\t%d\t%.2f\t\t\n", "completed at 10000 by cursor vs the first page",
		f.first.Rate, ms(f.first.P99), f.cursor.Rate, ms(f.cursor.P99), f.first.Errors+f.cursor.Errors, ratio)
	_ = w.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// benchGrowthOnly runs the growth bench alone (go run ./test/bench growth):
// two users of 200 tasks on each database, one given its history.
func benchGrowthOnly(o options) error {
	api, dbURL, _, stop, err := postgresAPI(o)
	if err != nil {
		return err
	}
	users, err := seed(newClient(api.base, o.concurrency), 2, 200, 16, "pg")
	if err != nil {
		stop()
		return err
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		stop()
		return err
	}
	pg, err := benchGrowth(o, api.base, db, true, users[0], users[1])
	db.Close()
	stop()
	if err != nil {
		return err
	}
	printGrowth("PostgreSQL, --role=api", pg)
	if !o.sqlite {
		return nil
	}
	file := filepath.Join(o.work, "growth.db")
	s, err := start(o, "sqlite", serverEnv("sqlite:"+file, o), "serve", "--role=all")
	if err != nil {
		return err
	}
	defer s.stop()
	if users, err = seed(newClient(s.base, o.concurrency), 2, 200, 16, "lite"); err != nil {
		return err
	}
	if db, err = sql.Open("sqlite", file+"?_pragma=busy_timeout(10000)"); err != nil {
		return err
	}
	defer db.Close()
	lite, err := benchGrowth(o, s.base, db, false, users[0], users[1])
	if err != nil {
		return err
	}
	printGrowth("SQLite, --role=all", lite)
	return nil
}
