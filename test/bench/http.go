package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	_ "github.com/glebarez/go-sqlite" // the driver the server uses for SQLite
)

// The statements that are the work of GET /tasks?limit=25: the count and
// the page, for one user.
const readScript = `SELECT count(*) FROM tasks WHERE user_id = :uid;
SELECT * FROM tasks WHERE user_id = :uid ORDER BY created_at DESC, id DESC LIMIT 25;
`

// The statements a create must do: its idempotency record, the task and
// its activity row, in one transaction.
const writeScript = `BEGIN;
INSERT INTO idempotency_keys (subject, idem_key, request_hash, method, path, state, response_status, content_type, created_at, expires_at)
  VALUES (:uid, gen_random_uuid()::text, 'pgbench', 'POST', '/api/v1/tasks', 'done', 201, 'application/json', now(), now() + interval '1 day');
INSERT INTO tasks (id, user_id, title, description, priority, focus_time_seconds, completed, hidden, archived, subtask_count, subtask_completed_count, version, created_at, updated_at)
  VALUES (gen_random_uuid(), :uid, 'bench write', '', 'medium', 0, false, false, false, 0, 0, 1, now(), now());
INSERT INTO activity_log (id, user_id, entity_type, entity_id, action, source, extra_data, created_at)
  VALUES (gen_random_uuid(), :uid, 'task', gen_random_uuid(), 'created', 'user', '{}', now());
COMMIT;
`

// serverEnv is what the bench runs the server with: development (dev
// login), budgets and limits above the load (the checks still run), the
// production log level.
func serverEnv(dbURL string, o options) []string {
	return append([]string{
		"DATABASE_URL=" + dbURL,
		"DATA_DIR=" + filepath.Join(o.work, "data"),
		"ENVIRONMENT=development",
		"DEV_LOGIN_ENABLED=true",
		"LOG_LEVEL=info",
		"RATE_LIMIT_GENERAL=100000000",
		"RATE_LIMIT_AUTH=100000000",
		"PERPETUA_LIMITS_FREE_MAX_TASKS=1000000",
		"PERPETUA_SERVER_PPROF_ENABLED=true",
	}, o.env...)
}

type httpFigures struct {
	read, write           result
	pgRead, pgWrite       float64 // pgbench's default (simple) protocol
	pgReadAt, pgWriteAt   int
	pgReadPrep            float64       // pgbench -M prepared
	pgReadCPU, pgWriteCPU time.Duration // the machine's CPU per pgbench transaction
	pgWritePrep           float64
	rss                   float64
	sqliteRead            result
	sqliteLoop            float64
	sqliteRSS             float64
	readyNew, readyOld    time.Duration
	pgGrowth              *growthFigures
	processes             *processFigures
	streams               *streamFigures
	sqliteGrowth          *growthFigures
}

func benchHTTP(o options) error {
	if _, err := run("pgbench", "--version"); err != nil {
		return fmt.Errorf("pgbench is needed (apt-get install postgresql-client): %w", err)
	}
	f := httpFigures{}
	if o.streams {
		streams, err := benchStreams(o)
		if err != nil {
			return err
		}
		f.streams = &streams
	}
	if err := benchPostgres(o, &f); err != nil {
		return err
	}
	if o.sqlite {
		if err := benchSQLite(o, &f); err != nil {
			return err
		}
	}
	printHTTP(o, f)
	return nil
}

// postgresAPI makes a scratch database, migrates it as a deployer does and
// starts --role=api on it; stop stops the server and drops the database.
func postgresAPI(o options) (api *server, dbURL string, env []string, stop func(), err error) {
	dbURL, drop, err := scratchDB(o.adminURL)
	if err != nil {
		return nil, "", nil, nil, err
	}
	env, err = migrate(o, dbURL)
	if err == nil {
		api, err = start(o, "api", env, "serve", "--role=api")
	}
	if err != nil {
		drop()
		return nil, "", nil, nil, err
	}
	return api, dbURL, env, func() { api.stop(); drop() }, nil
}

func benchPostgres(o options, f *httpFigures) error {
	api, dbURL, env, stop, err := postgresAPI(o)
	if err != nil {
		return err
	}
	defer stop()
	c := newClient(api.base, o.concurrency)
	logf("seeding %d users × %d tasks through the API", o.users, o.tasks)
	users, err := seed(c, o.users, o.tasks, 32, "pg")
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec("VACUUM ANALYZE"); err != nil {
		return err
	}
	reads, err := writeScripts(o.work, "read", readScript, users)
	if err != nil {
		return err
	}
	writes, err := writeScripts(o.work, "write", writeScript, users)
	if err != nil {
		return err
	}
	// Rounds leave the data set as seeded: what the writes added goes, and
	// so do the dead rows it leaves.
	reset := func() error {
		if _, err := db.Exec("DELETE FROM tasks WHERE title = 'bench write'"); err != nil {
			return err
		}
		_, err := db.Exec("VACUUM ANALYZE tasks, idempotency_keys, activity_log")
		return err
	}
	load, err := newWire(api.base, o.concurrency)
	if err != nil {
		return err
	}
	defer load.close()
	var rr, wr []result
	var pr, pw, prp, pwp []float64
	var prc, pwc []time.Duration
	for round := 1; round <= o.rounds; round++ {
		logf("round %d: GET /tasks", round)
		if round == 1 {
			profile(o, api, "pg-get")
		}
		rr = append(rr, closedLoop(o.concurrency, time.Second, o.duration, func(w, i int) bool {
			u := users[(w*7+i)%len(users)]
			status, err := load.get(w, "/api/v1/tasks?limit=25", u.Token)
			return err == nil && status == http.StatusOK
		}, api))
		logf("round %d: pgbench count + page", round)
		tps, cpu, at, err := pgbenchCPU(o, dbURL, reads, "simple")
		if err != nil {
			return err
		}
		pr, prc, f.pgReadAt = append(pr, tps), append(prc, cpu), at
		if tps, _, err = pgbench(o, dbURL, reads, "prepared"); err != nil {
			return err
		}
		prp = append(prp, tps)
		logf("round %d: POST /tasks", round)
		if round == 1 {
			profile(o, api, "pg-post")
		}
		wr = append(wr, closedLoop(o.concurrency, time.Second, o.duration, func(w, i int) bool {
			u := users[(w*7+i)%len(users)]
			status, err := load.post(w, "/api/v1/tasks", u.Token, []byte(`{"title":"bench write"}`))
			return err == nil && status == http.StatusCreated
		}, api))
		if err := reset(); err != nil {
			return err
		}
		logf("round %d: pgbench idempotency record + task + activity", round)
		if tps, cpu, at, err = pgbenchCPU(o, dbURL, writes, "simple"); err != nil {
			return err
		}
		pw, pwc, f.pgWriteAt = append(pw, tps), append(pwc, cpu), at
		if tps, _, err = pgbench(o, dbURL, writes, "prepared"); err != nil {
			return err
		}
		pwp = append(pwp, tps)
		if err := reset(); err != nil {
			return err
		}
	}
	f.read, f.write = median(rr), median(wr)
	f.pgRead, f.pgWrite = medianFloat(pr), medianFloat(pw)
	f.pgReadPrep, f.pgWritePrep = medianFloat(prp), medianFloat(pwp)
	f.pgReadCPU, f.pgWriteCPU = medianDuration(prc), medianDuration(pwc)
	f.rss = api.peakRSS()
	if o.processes {
		procs, err := benchProcesses(o, api, env, users, reset)
		if err != nil {
			return err
		}
		f.processes = &procs
	}
	if o.growth {
		g, err := benchGrowth(o, api.base, db, true, users[0], users[1])
		if err != nil {
			return err
		}
		f.pgGrowth = &g
	}
	return nil
}

func benchSQLite(o options, f *httpFigures) error {
	dir := filepath.Join(o.work, "sqlite")
	var ready []float64
	for i := range 3 {
		file := filepath.Join(dir, fmt.Sprintf("ready-%d.db", i))
		s, err := start(o, "sqlite-ready", serverEnv("sqlite:"+file, o), "serve", "--role=all")
		if err != nil {
			return err
		}
		ready = append(ready, s.ready.Seconds())
		s.stop()
	}
	f.readyNew = time.Duration(medianFloat(ready) * float64(time.Second))
	file := filepath.Join(dir, "perpetua.db")
	env := serverEnv("sqlite:"+file, o)
	s, err := start(o, "sqlite", env, "serve", "--role=all")
	if err != nil {
		return err
	}
	c := newClient(s.base, o.concurrency)
	logf("SQLite: seeding %d users × %d tasks through the API", o.users, o.tasks)
	users, err := seed(c, o.users, o.tasks, 32, "lite")
	if err != nil {
		s.stop()
		return err
	}
	load, err := newWire(s.base, o.concurrency)
	if err != nil {
		s.stop()
		return err
	}
	var rr []result
	for round := 1; round <= o.rounds; round++ {
		logf("SQLite round %d: GET /tasks", round)
		if round == 1 {
			profile(o, s, "sqlite-get")
		}
		rr = append(rr, closedLoop(o.concurrency, time.Second, o.duration, func(w, i int) bool {
			u := users[(w*7+i)%len(users)]
			status, err := load.get(w, "/api/v1/tasks?limit=25", u.Token)
			return err == nil && status == http.StatusOK
		}))
	}
	f.sqliteRead, f.sqliteRSS = median(rr), s.peakRSS()
	if o.growth {
		db, err := sql.Open("sqlite", file+"?_pragma=busy_timeout(10000)")
		if err != nil {
			s.stop()
			return err
		}
		g, err := benchGrowth(o, s.base, db, false, users[0], users[1])
		db.Close()
		if err != nil {
			s.stop()
			return err
		}
		f.sqliteGrowth = &g
	}
	// The mixed load last: its writes change the users' lists.
	var mixes []result
	for round := 1; round <= o.rounds; round++ {
		logf("SQLite round %d: the mixed load", round)
		mixes = append(mixes, closedLoop(o.concurrency, time.Second, o.duration, mixed([]*wire{load}, users)))
	}
	load.close()
	if f.processes != nil {
		m := median(mixes)
		f.processes.lite = &m
	}
	s.stop()
	var ready2 []float64
	for range 3 {
		s, err := start(o, "sqlite-again", env, "serve", "--role=all")
		if err != nil {
			return err
		}
		ready2 = append(ready2, s.ready.Seconds())
		s.stop()
	}
	f.readyOld = time.Duration(medianFloat(ready2) * float64(time.Second))

	// The same two queries on the same file through the same driver, from as
	// many goroutines as the load has connections, over a pool of that size.
	db, err := sql.Open("sqlite", file+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(o.concurrency)
	db.SetMaxIdleConns(o.concurrency)
	var loops []float64
	for round := 1; round <= o.rounds; round++ {
		logf("SQLite round %d: Go loop over the same queries", round)
		var failures atomic.Int64
		r := closedLoop(o.concurrency, time.Second, o.duration, func(w, i int) bool {
			u := users[rand.IntN(len(users))]
			ctx := context.Background()
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM tasks WHERE user_id = ?", u.ID).Scan(&n); err != nil {
				failures.Add(1)
				return false
			}
			rows, err := db.QueryContext(ctx, "SELECT * FROM tasks WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT 25", u.ID)
			if err != nil {
				failures.Add(1)
				return false
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				_ = rows.Scan(ptrs...)
			}
			rows.Close()
			return rows.Err() == nil
		})
		if r.Errors > 0 {
			return fmt.Errorf("the SQLite loop failed %d times", r.Errors)
		}
		loops = append(loops, r.Rate)
	}
	f.sqliteLoop = medianFloat(loops)
	return nil
}

func printHTTP(o options, f httpFigures) {
	host, _ := os.Hostname()
	fmt.Printf("\nPerpetua Flow API bench, %s, %s, %d CPUs (GOMAXPROCS %d), %d users × %d tasks, %d connections, %s × %d rounds (medians)\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), runtime.GOMAXPROCS(0), o.users, o.tasks, o.concurrency,
		o.duration, o.rounds)
	w := newTable()
	fmt.Fprintln(w, "path\treq/s\tp50\tp99\terrors\tceiling/s\tratio\tgoal\tpeak RSS\t")
	row := func(name string, r result, ceiling float64, ceilingName string, goal float64, rss float64) {
		ratio := r.Rate / ceiling
		ok := "met"
		if ratio < goal || r.Errors > 0 || r.P99 > 5*r.P50 {
			ok = "NOT MET"
		}
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%d\t%.0f (%s)\t%.2f\t≥ %.2f %s\t%.0f MB\t\n", name, r.Rate, ms(r.P50), ms(r.P99), r.Errors,
			ceiling, ceilingName, ratio, goal, ok, rss)
	}
	// Goals: the ratio, no error, and p99 within 5 × p50.
	row("PostgreSQL GET /tasks?limit=25", f.read, f.pgRead, fmt.Sprintf("pgbench c=%d", f.pgReadAt), 0.75, f.rss)
	row("PostgreSQL POST /tasks", f.write, f.pgWrite, fmt.Sprintf("pgbench c=%d", f.pgWriteAt), 0.6, f.rss)
	if o.sqlite {
		row("SQLite GET /tasks?limit=25", f.sqliteRead, f.sqliteLoop, "Go loop", 0.5, f.sqliteRSS)
	}
	_ = w.Flush()
	if o.sqlite {
		fmt.Printf("\nstart to ready on SQLite: %s on a new database, %s on an existing one (goal ≤ 300 ms)\n",
			ms(f.readyNew), ms(f.readyOld))
	}
	fmt.Printf("peak RSS of the api process (--role=api, PostgreSQL, no soft memory limit): %.0f MB", f.rss)
	if o.sqlite {
		fmt.Printf("; the SQLite row's is one process running api and worker (--role=all)")
	}
	fmt.Println()
	fmt.Printf("ceiling: pgbench at its best client count (of %v), its default protocol; with -M prepared: %.0f (read), %.0f (write) tps\n",
		o.clients, f.pgReadPrep, f.pgWritePrep)
	// Where the CPUs are the bound, a ratio is the inverse of what a request
	// costs the machine against what pgbench's transaction costs it.
	cpuLine := func(name string, r result, pgbench time.Duration) {
		api := time.Duration(0)
		if len(r.WatchCPU) > 0 {
			api = r.WatchCPU[0]
		}
		fmt.Printf("  %s: %s per request (the api process %s, the rest PostgreSQL and the load), pgbench %s per transaction\n",
			name, us(r.CPU), us(api), us(pgbench))
	}
	fmt.Println("the machine's CPU time (all processes, /proc/stat) over the measured time of the median round:")
	cpuLine("GET /tasks?limit=25", f.read, f.pgReadCPU)
	cpuLine("POST /tasks", f.write, f.pgWriteCPU)
	if f.processes != nil {
		printProcesses(*f.processes)
	}
	if f.streams != nil {
		printStreams(*f.streams)
	}
	if f.pgGrowth != nil {
		printGrowth("PostgreSQL, --role=api", *f.pgGrowth)
	}
	if f.sqliteGrowth != nil {
		printGrowth("SQLite, --role=all", *f.sqliteGrowth)
	}
}

// newTable is a table printed with aligned columns.
func newTable() *tabwriter.Writer {
	return tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func run(name string, args ...string) (string, error) { return runEnv(nil, name, args...) }

// migrate migrates the scratch database at dbURL as a deployer does
// (`perpetua migrate`, then processes that do not migrate) and returns the
// environment of those processes, with extra added.
func migrate(o options, dbURL string, extra ...string) ([]string, error) {
	env := append(append(serverEnv(dbURL, o), "PERPETUA_DATABASE_AUTO_MIGRATE=false"), extra...)
	if out, err := runEnv(env, o.binary, "migrate"); err != nil {
		return nil, fmt.Errorf("migrate: %w\n%s", err, out)
	}
	return env, nil
}

func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// profile takes a CPU profile of the server during the next seconds of load
// (with -profile).
func profile(o options, s *server, name string) {
	if o.profile == "" {
		return
	}
	secs := max(int(o.duration.Seconds())-1, 1)
	_ = os.MkdirAll(o.profile, 0o755)
	for kind, file := range map[string]string{"profile": name + ".pprof", "allocs": name + "-allocs.pprof"} {
		go func() {
			res, err := http.Get(fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", s.ops, kind, secs))
			if err != nil {
				logf("profile %s: %v", name, err)
				return
			}
			defer res.Body.Close()
			f, err := os.Create(filepath.Join(o.profile, file))
			if err != nil {
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, res.Body)
		}()
	}
}
