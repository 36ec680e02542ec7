package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The plans bench reviews every query the server makes, with the plans
// PostgreSQL really chose: a population of 100,000 users (each with a few
// rows in every list) and one long-time user with 20,000 rows in each list
// is written straight into a scratch database; the server then runs
// (--role=all) on connections that load auto_explain, which writes the
// plan of every statement, with its timing and buffers, to the server's
// log; every GET route of the OpenAPI document and a few writes are driven
// as the long-time user, and a reminder is made due so that the worker's
// queries run too. The plans are read back from the log and summed up per
// statement: its calls, its slowest run, the shape of its plan and the
// buffers it touched. go run ./test/bench plans (make bench-plans).

// population is how many users there are and what each of them has.
const (
	populationUsers = 100_000
	heavyRows       = 20_000
)

// explainOptions make every connection of the server log its statements'
// plans (auto_explain ships with PostgreSQL; loading it this way needs a
// superuser, as the bench's own database user is).
var explainOptions = "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 " +
	"-c auto_explain.log_analyze=on -c auto_explain.log_buffers=on -c auto_explain.log_timing=off " +
	"-c auto_explain.log_format=json -c auto_explain.log_nested_statements=on"

func benchPlans(o options) error {
	logPath, err := postgresLog()
	if err != nil {
		return err
	}
	dbURL, drop, err := scratchDB(o.adminURL)
	if err != nil {
		return err
	}
	defer drop()
	env, err := migrate(o, dbURL)
	if err != nil {
		return err
	}
	s, err := start(o, "plans-seed", env, "serve", "--role=api")
	if err != nil {
		return err
	}
	users, err := seed(newClient(s.base, 4), 1, 200, 4, "plans")
	s.stop()
	if err != nil {
		return err
	}
	heavy := users[0]
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	began := time.Now()
	if err := seedPopulation(db, heavy.ID); err != nil {
		return err
	}
	logf("population seeded in %s", time.Since(began).Round(time.Second))

	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	explained := dbURL + sep + "options=" + strings.ReplaceAll(url.QueryEscape(explainOptions), "+", "%20") // pgx reads + as itself
	env = append(serverEnv(explained, o), "PERPETUA_DATABASE_AUTO_MIGRATE=false")
	from, err := fileSize(logPath)
	if err != nil {
		return err
	}
	s, err = start(o, "plans", env, "serve", "--role=all")
	if err != nil {
		return err
	}
	err = drivePlans(newClient(s.base, 4), heavy)
	if err == nil {
		// Let the worker find the reminder made due and run its periodic
		// jobs once.
		time.Sleep(5 * time.Second)
	}
	s.stop()
	if err != nil {
		return err
	}
	plans, err := readPlans(logPath, from, dbURL)
	if err != nil {
		return err
	}
	printPlans(plans)
	return nil
}

// postgresLog is the log file of the local PostgreSQL (Debian's layout).
func postgresLog() (string, error) {
	files, _ := filepath.Glob("/var/log/postgresql/postgresql-*-main.log")
	if len(files) == 0 {
		return "", fmt.Errorf("plans: no PostgreSQL log in /var/log/postgresql (the plans are read from it)")
	}
	sort.Strings(files)
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		return "", fmt.Errorf("plans: %w (the plans are read from the PostgreSQL log)", err)
	}
	f.Close()
	return files[len(files)-1], nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// seedPopulation writes the population in a few statements.
func seedPopulation(db *sql.DB, heavy string) error {
	ago := "now() - random() * interval '730 days'"
	stmts := []string{
		`INSERT INTO users (id, google_id, email, name, timezone, tier, version, created_at, updated_at)
			SELECT gen_random_uuid(), 'plans-' || i, 'plans-' || i || '@bench.example.com', 'User ' || i, 'UTC', 'free', 1, now(), now()
			FROM generate_series(1, ` + fmt.Sprint(populationUsers) + `) i`,
		// Ten tasks each, mostly done; the long-time user's history.
		`INSERT INTO tasks (id, user_id, title, description, priority, completed, completed_at, hidden, archived, version, created_at, updated_at)
			SELECT gen_random_uuid(), u.id, 'task ' || j, '', 'medium', j > 2, CASE WHEN j > 2 THEN now() END, false, false, 1, ` + ago + `, now()
			FROM users u CROSS JOIN generate_series(1, 10) j WHERE u.google_id LIKE 'plans-%'`,
		`INSERT INTO tasks (id, user_id, title, description, priority, completed, completed_at, hidden, archived, version, created_at, updated_at)
			SELECT gen_random_uuid(), '` + heavy + `', 'old task ' || j, '', 'low', j % 10 <> 0, now(), false, j % 10 = 0, 1, ` + ago + `, now()
			FROM generate_series(1, ` + fmt.Sprint(heavyRows-200) + `) j`,
		`INSERT INTO notes (id, user_id, content, archived, version, created_at, updated_at)
			SELECT gen_random_uuid(), u.id, 'note', false, 1, ` + ago + `, now() FROM users u CROSS JOIN generate_series(1, 2) j`,
		`INSERT INTO notes (id, user_id, content, archived, version, created_at, updated_at)
			SELECT gen_random_uuid(), '` + heavy + `', 'old note', j % 2 = 0, 1, ` + ago + `, now() FROM generate_series(1, ` + fmt.Sprint(heavyRows) + `) j`,
		`INSERT INTO activity_log (id, user_id, entity_type, entity_id, action, source, extra_data, created_at)
			SELECT gen_random_uuid(), u.id, 'task', gen_random_uuid(), 'completed', 'user', '{}', ` + ago + ` FROM users u CROSS JOIN generate_series(1, 10) j`,
		`INSERT INTO activity_log (id, user_id, entity_type, entity_id, action, source, extra_data, created_at)
			SELECT gen_random_uuid(), '` + heavy + `', 'task', gen_random_uuid(), 'completed', 'user', '{}', ` + ago + ` FROM generate_series(1, ` + fmt.Sprint(heavyRows) + `) j`,
		`INSERT INTO notifications (id, user_id, type, title, message, read, created_at, updated_at)
			SELECT gen_random_uuid(), u.id, 'reminder', 'Reminder', 'r', j > 1, ` + ago + `, now() FROM users u CROSS JOIN generate_series(1, 5) j`,
		`INSERT INTO notifications (id, user_id, type, title, message, read, created_at, updated_at)
			SELECT gen_random_uuid(), '` + heavy + `', 'reminder', 'Reminder', 'r', j > 100, ` + ago + `, now() FROM generate_series(1, ` + fmt.Sprint(heavyRows) + `) j`,
		// Credits: spent grants (nothing left in them), as years of daily grants leave.
		`INSERT INTO credit_ledger (id, user_id, kind, entry, amount, remaining, balance_after, description, created_at)
			SELECT gen_random_uuid(), u.id, 'daily', 'grant', 10, 0, 0, 'daily', ` + ago + ` FROM users u CROSS JOIN generate_series(1, 3) j`,
		`INSERT INTO credit_ledger (id, user_id, kind, entry, amount, remaining, balance_after, description, created_at)
			SELECT gen_random_uuid(), '` + heavy + `', 'daily', CASE WHEN j % 2 = 0 THEN 'grant' ELSE 'spend' END,
				CASE WHEN j % 2 = 0 THEN 10 ELSE -10 END, 0, 0, 'daily', ` + ago + ` FROM generate_series(1, ` + fmt.Sprint(heavyRows) + `) j`,
		// One reminder to come and one focus session per user, on a task of theirs.
		`INSERT INTO reminders (id, task_id, user_id, type, method, scheduled_at, fired, created_at, updated_at)
			SELECT gen_random_uuid(), t.id, t.user_id, 'absolute', 'in_app', now() + random() * interval '30 days', false, now(), now()
			FROM tasks t WHERE t.title = 'task 1'`,
		`INSERT INTO reminders (id, task_id, user_id, type, method, scheduled_at, fired, fired_at, created_at, updated_at)
			SELECT gen_random_uuid(), t.id, t.user_id, 'absolute', 'in_app', now() - random() * interval '730 days', true, now(), now(), now()
			FROM tasks t CROSS JOIN generate_series(1, 100) j WHERE t.user_id = '` + heavy + `' AND NOT t.completed AND NOT t.archived`,
		`INSERT INTO focus_sessions (id, user_id, task_id, started_at, ended_at, duration_seconds, created_at, updated_at)
			SELECT gen_random_uuid(), t.user_id, t.id, now() - interval '1 day', now() - interval '23 hours', 3600, now(), now()
			FROM tasks t WHERE t.title = 'task 1'`,
		`INSERT INTO focus_sessions (id, user_id, task_id, started_at, ended_at, duration_seconds, created_at, updated_at)
			SELECT gen_random_uuid(), t.user_id, t.id, s, s + interval '25 minutes', 1500, s, s
			FROM (SELECT id, user_id, ` + ago + ` AS s FROM tasks WHERE user_id = '` + heavy + `' AND completed LIMIT ` + fmt.Sprint(heavyRows) + `) t`,
		`VACUUM ANALYZE`,
	}
	for _, s := range stmts {
		began := time.Now()
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("seed population: %w\n%s", err, s)
		}
		logf("%s (%s)", strings.Join(strings.Fields(s), " ")[:min(60, len(strings.Join(strings.Fields(s), " ")))], time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// drivePlans sends, as u, every GET of the OpenAPI document (paths with an
// id get one of u's), a few writes, and a reminder due now.
func drivePlans(c *client, u seeded) error {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if status, err := c.do(http.MethodGet, "/openapi.json", "", nil, &doc); err != nil || status != http.StatusOK {
		return fmt.Errorf("openapi: %d %v", status, err)
	}
	var task struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if status, err := c.do(http.MethodPost, "/api/v1/tasks", u.Token, map[string]any{"title": "Planned"}, &task); err != nil || status != http.StatusCreated {
		return fmt.Errorf("create: %d %v", status, err)
	}
	id := task.Data.ID
	var paths []string
	for p, ops := range doc.Paths {
		if _, ok := ops["get"]; ok && strings.HasPrefix(p, "/api/") && !strings.Contains(p, "/auth/") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	extra := []string{"/api/v1/tasks?limit=25", "/api/v1/tasks?completed=false", "/api/v1/tasks?completed=true&limit=25",
		"/api/v1/tasks?completed=true&limit=25&offset=10000", "/api/v1/tasks?sort=due_date", "/api/v1/tasks?q=task",
		"/api/v1/notes?archived=false", "/api/v1/notifications?unread_only=true", "/api/v1/activity?limit=25&offset=5000"}
	for _, p := range append(paths, extra...) {
		p = strings.ReplaceAll(p, "{id}", id)
		for range 2 { // the second run is the one a warm server sees
			if _, err := c.do(http.MethodGet, p, u.Token, nil, nil); err != nil {
				return fmt.Errorf("GET %s: %w", p, err)
			}
		}
	}
	writes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, "/api/v1/tasks/" + id, map[string]any{"title": "Planned again"}},
		{http.MethodPost, "/api/v1/tasks/" + id + "/subtasks", map[string]any{"title": "A step"}},
		{http.MethodPost, "/api/v1/notes", map[string]any{"content": "A note"}},
		{http.MethodPost, "/api/v1/focus-sessions", map[string]any{"task_id": id}},
		{http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": id, "type": "absolute",
			"scheduled_at": time.Now().Add(-time.Second).UTC().Format(time.RFC3339)}},
		{http.MethodPost, "/api/v1/notifications/read-all", map[string]any{}},
		{http.MethodPost, "/api/v1/tasks/" + id + "/complete", map[string]any{}},
	}
	for _, w := range writes {
		if status, err := c.do(w.method, w.path, u.Token, w.body, nil); err != nil || status >= 500 {
			return fmt.Errorf("%s %s: %d %v", w.method, w.path, status, err)
		}
	}
	return nil
}

// plan is what auto_explain wrote for one run of a statement.
type plan struct {
	Query string          `json:"Query Text"`
	Plan  json.RawMessage `json:"Plan"`
}

// node is a plan node, as much as the summary reads.
type node struct {
	Type      string  `json:"Node Type"`
	Index     string  `json:"Index Name"`
	Relation  string  `json:"Relation Name"`
	Rows      float64 `json:"Actual Rows"`
	Loops     float64 `json:"Actual Loops"`
	Hit       int64   `json:"Shared Hit Blocks"`
	Read      int64   `json:"Shared Read Blocks"`
	HeapFetch float64 `json:"Heap Fetches"`
	Removed   float64 `json:"Rows Removed by Filter"`
	Plans     []node  `json:"Plans"`
}

// statement sums up the runs of one statement.
type statement struct {
	query   string
	calls   int
	maxMS   float64
	shape   string
	buffers int64
	scanned float64 // rows read by the plan's scans, the most of any run
}

var durationLine = regexp.MustCompile(`duration: ([0-9.]+) ms\s+plan:\s*$`)

// readPlans reads the plans logged for dbURL's database after offset.
func readPlans(path string, offset int64, dbURL string) ([]*statement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	byQuery := map[string]*statement{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var body strings.Builder
	var ms float64
	depth, in := 0, false
	flush := func() {
		var p plan
		if json.Unmarshal([]byte(body.String()), &p) != nil || p.Query == "" {
			return
		}
		var root node
		_ = json.Unmarshal(p.Plan, &root)
		q := strings.Join(strings.Fields(p.Query), " ")
		st := byQuery[q]
		if st == nil {
			st = &statement{query: q}
			byQuery[q] = st
		}
		st.calls++
		if ms >= st.maxMS {
			st.maxMS, st.shape, st.buffers = ms, shape(root), root.Hit+root.Read
		}
		st.scanned = max(st.scanned, scanned(root))
	}
	for sc.Scan() {
		line := sc.Text()
		if !in {
			if m := durationLine.FindStringSubmatch(line); m != nil {
				fmt.Sscan(m[1], &ms)
				in, depth = true, 0
				body.Reset()
			}
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if depth <= 0 && strings.Contains(body.String(), "}") {
			flush()
			in = false
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []*statement
	for _, st := range byQuery {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].maxMS > out[j].maxMS })
	return out, nil
}

// shape is a plan's nodes, outermost first, with the indexes they use.
func shape(n node) string {
	s := n.Type
	switch {
	case n.Index != "":
		s += " " + n.Index
	case n.Relation != "":
		s += " " + n.Relation
	}
	var kids []string
	for _, k := range n.Plans {
		kids = append(kids, shape(k))
	}
	if len(kids) > 0 {
		s += " → " + strings.Join(kids, " + ")
		if len(kids) > 1 {
			s = n.Type + " (" + strings.Join(kids, "; ") + ")"
		}
	}
	return s
}

// scanned is the rows the plan's scans returned or filtered out, over all
// their loops: the work that grows with a table.
func scanned(n node) float64 {
	var total float64
	if strings.Contains(n.Type, "Scan") {
		total += (n.Rows + n.Removed) * max(n.Loops, 1)
	}
	for _, k := range n.Plans {
		total += scanned(k)
	}
	return total
}

func printPlans(plans []*statement) {
	fmt.Printf("\nEvery statement of the server (--role=all) on PostgreSQL with %d users and one user with %d rows in each list, as that user: "+
		"its runs, its slowest (ms, auto_explain with timing off), the rows its scans read (the most of any run), its plan's shape and the shared buffers it touched\n\n",
		populationUsers, heavyRows)
	fmt.Println("| statement | runs | slowest ms | rows scanned | buffers | plan |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	for _, st := range plans {
		q := st.query
		if len(q) > 160 {
			q = q[:157] + "…"
		}
		fmt.Printf("| `%s` | %d | %.2f | %.0f | %d | %s |\n", strings.ReplaceAll(q, "|", "\\|"), st.calls, st.maxMS, st.scanned, st.buffers,
			strings.ReplaceAll(st.shape, "|", "\\|"))
	}
}
