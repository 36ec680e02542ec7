// Package database opens the one database the process uses: PostgreSQL in
// production, embedded SQLite (pure Go, no cgo) for development and small
// installs. DATABASE_URL picks the dialect.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/exaring/otelpgx"
	"go.opentelemetry.io/otel/trace"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
	"go.uber.org/zap"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	gormlogger "gorm.io/gorm/logger"

	// The blank import keeps modernc.org/sqlite a direct requirement, so its
	// pinned version (a SQLite with jsonb, which River's migrations need) wins
	// version selection over the older one glebarez/go-sqlite asks for.
	_ "modernc.org/sqlite/lib"

	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/observability"
)

// Dialect names the database engine.
type Dialect string

// Dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is the process's database handle.
type DB struct {
	// Gorm is the ORM handle; use Tx for writes that must commit together.
	Gorm *gorm.DB
	// SQL is the pool under Gorm (the job queue shares it).
	SQL *sql.DB
	// Pool is the pgx pool on PostgreSQL (nil on SQLite); the job queue
	// listens for notifications through it.
	Pool *pgxpool.Pool
	// Sessions is the pool for work that needs a PostgreSQL session of its
	// own, kept across statements (LISTEN, the migration lock): Pool
	// itself, or, when Pool goes through a transaction pooler, a small pool
	// on database.direct_url — nil when none is configured (listeners then
	// poll). Nil on SQLite.
	Sessions *pgxpool.Pool
	// Pooled says Pool goes through a transaction pooler (PgBouncer).
	Pooled  bool
	Dialect Dialect
	// Read is the pool for reads outside transactions: on SQLite (a file) a
	// pool of read-only connections beside the single writer, so that reads
	// do not queue behind writes (WAL lets them run together); elsewhere SQL.
	Read *sql.DB

	retries *prometheus.CounterVec
	// watch, when set, is told after each commit which users' entities the
	// transaction changed (see WatchChanges).
	watch func(users []string)
}

// WatchChanges has fn told, after each transaction of Tx or a Unit
// commits on PostgreSQL, the ids of the users whose entities it changed
// (the change log's triggers name them in a transaction-local setting;
// the transaction runs them before it commits, SET CONSTRAINTS ALL
// IMMEDIATE). Writes outside a transaction are not seen. Set it before
// the process serves anything.
func (db *DB) WatchChanges(fn func(users []string)) { db.watch = fn }

// changedIn runs the deferred change-log triggers of tx now and returns
// the users they named.
func (db *DB) changedIn(tx *gorm.DB) ([]string, error) {
	if err := tx.Exec("SET CONSTRAINTS ALL IMMEDIATE").Error; err != nil {
		return nil, err
	}
	var list string
	if err := tx.Raw("SELECT coalesce(current_setting('perpetua.changed', true), '')").Scan(&list).Error; err != nil {
		return nil, err
	}
	return strings.FieldsFunc(list, func(r rune) bool { return r == ',' }), nil
}

func (db *DB) watching() bool { return db.watch != nil && db.Dialect == Postgres }

func newDB(gdb *gorm.DB, sqlDB *sql.DB, pool *pgxpool.Pool, dialect Dialect) *DB {
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: observability.Namespace, Name: "db_transaction_retries_total",
		Help: "Transactions run again after PostgreSQL aborted them, by reason (deadlock, serialization).",
	}, []string{"reason"})
	for _, r := range []string{"deadlock", "serialization"} {
		retries.WithLabelValues(r) // exported at 0 from the start
	}
	return &DB{Gorm: gdb, SQL: sqlDB, Pool: pool, Dialect: dialect, Read: sqlDB, retries: retries}
}

// Option tunes Open.
type Option func(*options)

type options struct{ tracer trace.TracerProvider }

// WithTracing records a span per statement on PostgreSQL, through pgx
// (otelpgx: every statement, GORM's included).
func WithTracing(tp trace.TracerProvider) Option { return func(o *options) { o.tracer = tp } }

// Open connects to the configured database.
func Open(ctx context.Context, cfg *config.Config, log *zap.Logger, clk clock.Clock, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	gcfg := &gorm.Config{
		Logger:                                   newGormLogger(log, cfg.Database.SlowQuery),
		NowFunc:                                  clk.Now,
		TranslateError:                           true,
		DisableForeignKeyConstraintWhenMigrating: true,
		// A lone write is one statement (no associations, no hooks here):
		// wrapping it in BEGIN/COMMIT only adds two round trips. Writes that
		// belong together go through DB.Tx.
		SkipDefaultTransaction: true,
	}
	if strings.HasPrefix(cfg.Database.URL, "sqlite:") {
		// No statement spans on the embedded SQLite (development): GORM's
		// OpenTelemetry plugin would bring every SQL driver it knows into
		// the binary.
		return openSQLite(cfg, gcfg)
	}
	return openPostgres(ctx, cfg, gcfg, o)
}

func openPostgres(ctx context.Context, cfg *config.Config, gcfg *gorm.Config, o options) (*DB, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.Database.URL)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	pcfg.MaxConns = int32(cfg.Database.MaxOpenConns)
	pcfg.MaxConnLifetime = cfg.Database.ConnMaxLifetime
	// Each connection prepares the statements it runs and keeps them (pgx's
	// default is 512 per connection, allocated up front); the hot paths use a
	// few dozen.
	pcfg.ConnConfig.StatementCacheCapacity = 128
	pcfg.ConnConfig.DescriptionCacheCapacity = 128
	// Every session works in UTC so that timestamps read back as written.
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if o.tracer != nil {
		pcfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(o.tracer))
	}
	pooled := cfg.Database.Pooler == "pgbouncer"
	if pooled {
		// PgBouncer (transaction pooling, before 1.21's prepared-statement
		// support) may give each transaction another server connection: no
		// named prepared statement outlives one. Statements are parsed
		// unnamed with their execution, in one round trip; their result
		// columns are described once and remembered.
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	// A google/uuid value is a driver.Valuer that gives a string, which pgx
	// cannot write in binary for a uuid parameter: it built an error, parsed
	// the string back and planned again for every uuid of every statement
	// (pgx's encoding: 10.6% of a create's CPU, 6.8% since). Writing it as the 16 bytes it is skips
	// all that; reads are unchanged.
	pcfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		m := c.TypeMap()
		m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{pgxuuid.TryWrapUUIDEncodePlan}, m.TryWrapEncodePlanFuncs...)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	sqlDB.SetMaxOpenConns(cfg.Database.MaxOpenConns)
	// Idle connections wait in the pgx pool, where the hand-written reads
	// (Query) and River's listener find them too; database/sql keeping its
	// own idle ones would starve those (pgx's OpenDBFromPool says the same).
	sqlDB.SetMaxIdleConns(0)
	// gorm logs a failed first connection itself; the caller reports it.
	real := gcfg.Logger
	gcfg.Logger = gormlogger.Discard
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), gcfg)
	if err != nil {
		pool.Close()
		return nil, unreachable(pcfg, err)
	}
	gdb.Config.Logger = real
	if err := registerSendHeld(gdb); err != nil {
		pool.Close()
		return nil, err
	}
	db := newDB(gdb, sqlDB, pool, Postgres)
	db.Sessions, db.Pooled = pool, pooled
	if pooled {
		db.Sessions = nil
		if cfg.Database.DirectURL != "" {
			if db.Sessions, err = sessionPool(ctx, cfg, pcfg.AfterConnect); err != nil {
				pool.Close()
				return nil, err
			}
		}
	}
	return db, nil
}

// sessionPool is a few connections straight to PostgreSQL
// (database.direct_url), for the sessions a transaction pooler cannot
// keep. They are opened when first needed.
func sessionPool(ctx context.Context, cfg *config.Config, after func(context.Context, *pgx.Conn) error) (*pgxpool.Pool, error) {
	dcfg, err := pgxpool.ParseConfig(cfg.Database.DirectURL)
	if err != nil {
		return nil, fmt.Errorf("database.direct_url: %w", err)
	}
	dcfg.MaxConns = 4
	dcfg.MaxConnLifetime = cfg.Database.ConnMaxLifetime
	dcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	dcfg.AfterConnect = after
	p, err := pgxpool.NewWithConfig(ctx, dcfg)
	if err != nil {
		return nil, fmt.Errorf("database.direct_url: %w", err)
	}
	return p, nil
}

// unreachable is a failed first connection in one line: where, why, and
// what to check.
func unreachable(pcfg *pgxpool.Config, err error) error {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	cause := strings.TrimSpace(lines[len(lines)-1])
	return fmt.Errorf("database: cannot use PostgreSQL at %s:%d (database %q, user %q): %s; check that it is running and that DATABASE_URL is right",
		pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database, pcfg.ConnConfig.User, cause)
}

func openSQLite(cfg *config.Config, gcfg *gorm.Config) (*DB, error) {
	path, query, _ := strings.Cut(strings.TrimPrefix(cfg.Database.URL, "sqlite:"), "?")
	if path == "" {
		return nil, errors.New("database.url: sqlite: needs a path (or :memory: for a database in memory)")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("database.url: %w", err)
		}
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.Database.BusyTimeout.Milliseconds()))
	params.Add("_pragma", "foreign_keys(1)")
	if path != ":memory:" {
		params.Add("_pragma", "journal_mode(WAL)")
		params.Add("_pragma", "synchronous(NORMAL)")
	}
	// The writer begins its transactions IMMEDIATE: it takes the write lock
	// at BEGIN, waiting busy_timeout for it. Within the process it is the
	// only writer anyway; beside another process on the same file (an
	// operator's command while the server runs) a deferred transaction that
	// read first could not take the lock after the other wrote (SQLITE_BUSY
	// at once, without waiting).
	writer := url.Values{}
	for k, v := range params {
		writer[k] = v
	}
	writer.Set("_txlock", "immediate")
	gdb, err := gorm.Open(sqlite.Open(path+"?"+writer.Encode()), gcfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	// SQLite has one writer: a single connection serialises everything in the
	// process instead of failing with SQLITE_BUSY (and :memory: is per
	// connection anyway). The connection is never recycled.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	db := newDB(gdb, sqlDB, nil, SQLite)
	if path != ":memory:" {
		params.Add("_pragma", "query_only(1)")
		readers, err := sql.Open("sqlite", path+"?"+params.Encode())
		if err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("open sqlite readers: %w", err)
		}
		readers.SetMaxOpenConns(sqliteReaders)
		readers.SetMaxIdleConns(sqliteReaders)
		readers.SetConnMaxLifetime(0)
		readers.SetConnMaxIdleTime(0)
		db.Read = readers
	}
	return db, nil
}

// sqliteReaders is the size of SQLite's read pool: reads are CPU-bound, so
// one per core (each connection has its own page cache).
var sqliteReaders = max(runtime.GOMAXPROCS(0), 2)

// Close closes the pools.
func (db *DB) Close() error {
	err := db.SQL.Close()
	if db.Read != db.SQL {
		err = errors.Join(err, db.Read.Close())
	}
	if db.Pool != nil {
		db.Pool.Close()
	}
	if db.Sessions != nil && db.Sessions != db.Pool {
		db.Sessions.Close()
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.SQL.PingContext(ctx)
}

// Rows is what Query returns: the rows of a hand-written read.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Query runs a hand-written read (with ? marks) outside any transaction: on
// PostgreSQL natively through pgx (binary results, a prepared statement per
// connection), elsewhere on the read pool. Hot read paths use it.
func (db *DB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	if db.Pool != nil {
		for i, a := range args {
			if u, ok := a.(uuid.UUID); ok { // binary, not text to parse
				args[i] = pgtype.UUID{Bytes: u, Valid: true}
			}
		}
		return db.Pool.Query(ctx, db.Rebind(query), args...)
	}
	rows, err := db.Read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// Rebind turns the ? marks of a hand-written query into the dialect's
// placeholders ($1, $2, ... on PostgreSQL). The query must have no other ?.
func (db *DB) Rebind(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// WithContext returns a session bound to ctx, for reads outside a
// transaction.
func (db *DB) WithContext(ctx context.Context) *gorm.DB { return db.Gorm.WithContext(ctx) }

// NoFlushWait begins a PostgreSQL statement whose transaction's commit
// returns without waiting for the disk (synchronous_commit off for that
// transaction only): its query reads FROM no_flush_wait, one row, so that
// the setting is made without a round trip of its own. Others see the
// writes at once; a database crash in the next moments may lose them. Only
// for a transaction whose loss costs nothing because a later one of the
// same work waits for the disk, and takes this one with it (the log is
// flushed in order): an idempotency key's claim, or the credits an AI
// request holds before it asks the model, settled later by a transaction
// that does wait.
const NoFlushWait = `WITH no_flush_wait AS (SELECT set_config('synchronous_commit', 'off', true))`

// Tx runs fn in a transaction of its own: the domain change, the events it
// publishes and the jobs it enqueues commit together or not at all.
//
// PostgreSQL may abort a transaction that deadlocked with another or lost a
// serialization race (SQLSTATE 40P01, 40001); nothing of it was committed, so
// Tx runs fn again, a bounded number of times with a short jittered pause,
// then reports a 409 CONFLICT. fn must therefore set its results only from
// what it does inside the transaction.
//
// Under a request that runs in one transaction (a Unit) Tx refuses to run:
// a second transaction beside the request's would wait on the locks the
// first holds (on SQLite, on its one connection). Code such a request
// reaches uses TxOrJoin.
func (db *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if unitOf(ctx, db) != nil {
		return errTxInUnit
	}
	return db.tx(ctx, fn)
}

// TxOrJoin runs fn in the transaction of the request, when the request runs
// in one (a Unit: a route marked httpx.OneTransaction, called with an
// Idempotency-Key), and otherwise in a transaction of its own, as Tx does.
// Joined, fn gives up Tx's re-runs: a deadlock or serialization failure
// aborts the whole request's transaction, which answers 409 at once.
func (db *DB) TxOrJoin(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if u := unitOf(ctx, db); u != nil {
		return u.join(fn)
	}
	return db.tx(ctx, fn)
}

var errTxInUnit = errors.New("database: Tx under a request's transaction (a Unit): the code a one-transaction route reaches must use TxOrJoin")

func (db *DB) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var changed []string
	run := fn
	if db.watching() {
		run = func(tx *gorm.DB) error {
			if err := fn(tx); err != nil {
				return err
			}
			var err error
			changed, err = db.changedIn(tx)
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		changed = nil
		err := db.Gorm.WithContext(ctx).Transaction(run)
		if err == nil && len(changed) > 0 {
			db.watch(changed)
		}
		reason := retryReason(err)
		if reason == "" {
			return err
		}
		db.retries.WithLabelValues(reason).Inc()
		if attempt >= maxTxAttempts {
			return errCollided
		}
		pause := time.Duration(attempt)*5*time.Millisecond + rand.N(10*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// maxTxAttempts bounds how often Tx runs a transaction that PostgreSQL
// aborted as a deadlock or serialization failure.
const maxTxAttempts = 5

// retryReason names why err is worth running the transaction again, or "".
func retryReason(err error) string {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return ""
	}
	switch pgErr.Code {
	case "40P01":
		return "deadlock"
	case "40001":
		return "serialization"
	}
	return ""
}

// ForUpdate makes a query lock the rows it reads until the transaction ends
// (SELECT ... FOR UPDATE), for a read-modify-write that must not interleave
// with another. SQLite needs nothing: its one connection already runs one
// transaction at a time.
func ForUpdate(tx *gorm.DB) *gorm.DB {
	if tx.Dialector.Name() != "postgres" {
		return tx
	}
	return tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
}

// One returns res's error, or none when res changed no row: a conditional
// write that found nothing to change (the row went, or a concurrent change
// made the condition false) is an answer, not a success.
func One(res *gorm.DB, none error) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return none
	}
	return nil
}

// Collectors are the database's metrics: transaction retries, and the
// connection pool that is really used — pgx's on PostgreSQL
// (perpetua_db_pool_*), database/sql's on SQLite (go_sql_*).
func (db *DB) Collectors() []prometheus.Collector {
	if db.Pool != nil {
		return []prometheus.Collector{db.retries, newPoolCollector(db.Pool)}
	}
	return []prometheus.Collector{db.retries, collectors.NewDBStatsCollector(db.SQL, string(db.Dialect))}
}

// SQLTx returns the database/sql transaction under a GORM transaction, so the
// job queue can insert inside it.
func SQLTx(tx *gorm.DB) (*sql.Tx, error) {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil, errors.New("database: not inside a transaction")
	}
	return sqlTx, nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsNotFound reports whether err is GORM's record-not-found.
func IsNotFound(err error) bool { return errors.Is(err, gorm.ErrRecordNotFound) }

// EscapeLike escapes the LIKE wildcards in s; use with ESCAPE '\'.
func EscapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// LockKey serialises the transactions that name the same key until tx ends
// (a PostgreSQL transaction-level advisory lock). Use it around
// check-then-insert rules such as "at most N per user". SQLite needs nothing:
// its single connection already runs one transaction at a time.
func LockKey(tx *gorm.DB, key string) error {
	if tx.Dialector.Name() != "postgres" {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", key).Error
}

// Owned reads the row of T with the given id that belongs to userID (with
// its row locked when tx is a ForUpdate session). A row that is absent or
// another user's is the same answer, notFound: nobody learns that another
// user's id exists.
func Owned[T any](tx *gorm.DB, userID, id uuid.UUID, notFound error) (*T, error) {
	var row T
	err := tx.Where("id = ? AND user_id = ?", id, userID).Take(&row).Error
	if IsNotFound(err) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("load %T %s: %w", row, id, err)
	}
	return &row, nil
}
