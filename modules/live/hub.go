package live

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/id"
	"github.com/perpetuaflow/api/platform/observability"
)

// The hub knows this process's open streams by user and wakes a user's
// streams when the user's change log grew. On PostgreSQL a commit that
// changed a user with a stream open anywhere sends a NOTIFY naming the user
// (each stream leases a live_listeners row, so commits of users nobody
// watches send none: a NOTIFY serialises the commits that send one); the
// hub LISTENs on one pooled connection. Beside that, and as
// the only way on SQLite, it reads the heads of the users it serves every
// poll_interval (on PostgreSQL ten times slower, a safety net for a
// notification lost with a connection). A wake-up carries nothing: the
// stream reads the log itself, so one lost or merged costs nothing but the
// next one.

type metrics struct {
	open   prometheus.Gauge
	sent   prometheus.Counter
	closed *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: observability.Namespace, Name: "live_streams",
			Help: "Live event streams open on this instance."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: observability.Namespace, Name: "live_events_sent_total",
			Help: "Change events sent to live streams."}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: observability.Namespace, Name: "live_streams_closed_total",
			Help: "Live streams ended, by reason (client, replaced, signed_out, shutdown, error)."}, []string{"reason"}),
	}
	reg.MustRegister(m.open, m.sent, m.closed)
	// Every reason is exported from the start, at 0: a rate over it is
	// defined before the first stream ends.
	for _, r := range []string{"client", "replaced", "signed_out", "shutdown", "error"} {
		m.closed.WithLabelValues(r)
	}
	return m
}

// listener is one open stream.
type listener struct {
	id   uuid.UUID
	wake chan struct{}
	// replaced is closed when the user opened more streams than allowed and
	// this one, among the oldest, must end.
	replaced chan struct{}
	once     sync.Once
}

func (l *listener) replace() { l.once.Do(func() { close(l.replaced) }) }

// leaseTTL is how long a live_listeners row says a stream is open; the
// hub renews its rows at a third of it.
const leaseTTL = time.Minute

// closePrefix starts a notification that asks the instance holding a
// stream to close it (the user opened too many elsewhere).
const closePrefix = "close:"

type hub struct {
	db       *database.DB
	cfg      Config
	clock    clock.Clock
	metrics  *metrics
	log      *zap.Logger
	instance uuid.UUID

	mu      sync.Mutex
	streams map[uuid.UUID][]*listener // by user, oldest first
	byID    map[uuid.UUID]*listener
	known   map[uuid.UUID]int64 // the head last seen by the poll
	count   int

	fanout *fanout // the Redis mode, or nil

	stop func()
	done chan struct{}
}

func newHub(db *database.DB, cfg Config, clk clock.Clock, m *metrics, f *fanout, log *zap.Logger) *hub {
	return &hub{db: db, cfg: cfg, clock: clk, metrics: m, fanout: f, log: log.Named("live"), instance: uuid.New(),
		streams: map[uuid.UUID][]*listener{}, byID: map[uuid.UUID]*listener{}, known: map[uuid.UUID]int64{}}
}

// subscribe registers a stream of the user. At most max_streams_per_user
// of a user's streams stay open: the oldest beyond it are closed — on
// PostgreSQL across instances (each stream leases a live_listeners row
// before this returns, so every commit after it notifies, and the rows
// say which streams are the oldest; another instance's is closed through
// a notification), on SQLite in the one process.
func (h *hub) subscribe(ctx context.Context, userID uuid.UUID) (*listener, func(), error) {
	// Stream ids are time-ordered (UUIDv7, monotonic in a process): the
	// largest are the newest.
	l := &listener{id: id.New(), wake: make(chan struct{}, 1), replaced: make(chan struct{})}
	var trim []uuid.UUID
	if h.db.Pool != nil {
		var err error
		if trim, err = h.lease(ctx, userID, l.id); err != nil {
			return nil, nil, err
		}
	}
	h.mu.Lock()
	list := append(h.streams[userID], l)
	if h.db.Pool == nil {
		for len(list) > h.cfg.MaxStreams {
			list[0].replace()
			trim = append(trim, list[0].id)
			list = list[1:]
		}
	}
	h.streams[userID] = list
	h.byID[l.id] = l
	h.count++
	h.mu.Unlock()
	h.metrics.open.Inc()
	for _, id := range trim {
		h.close(ctx, id)
	}
	return l, func() { h.unsubscribe(userID, l) }, nil
}

// lease records the stream and returns the user's streams beyond the
// limit, oldest first, whose rows it removed.
func (h *hub) lease(ctx context.Context, userID, stream uuid.UUID) ([]uuid.UUID, error) {
	now := h.clock.Now()
	var trim []uuid.UUID
	err := h.db.Tx(ctx, func(tx *gorm.DB) error {
		trim = nil
		if err := tx.Exec(`INSERT INTO live_listeners (stream, user_id, instance, opened_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			stream, userID, h.instance, now, now.Add(leaseTTL)).Error; err != nil {
			return err
		}
		if err := tx.Raw(`SELECT stream FROM live_listeners WHERE user_id = ? AND expires_at > ?
			ORDER BY stream DESC OFFSET ?`, userID, now, h.cfg.MaxStreams).Scan(&trim).Error; err != nil {
			return err
		}
		if len(trim) == 0 {
			return nil
		}
		return tx.Exec(`DELETE FROM live_listeners WHERE stream IN ?`, trim).Error
	})
	return trim, err
}

// close ends a stream: here at once, elsewhere through a notification to
// the instance that holds it.
func (h *hub) close(ctx context.Context, stream uuid.UUID) {
	h.mu.Lock()
	l := h.byID[stream]
	h.mu.Unlock()
	if l != nil {
		l.replace()
		return
	}
	if h.fanout != nil {
		h.fanout.publish(closePrefix + stream.String())
		return
	}
	if h.db.Pool != nil {
		if err := h.db.WithContext(ctx).Exec(`SELECT pg_notify('perpetua_changes', ?)`, closePrefix+stream.String()).Error; err != nil {
			h.log.Warn("a stream beyond the limit could not be closed", zap.Error(err))
		}
	}
}

func (h *hub) unsubscribe(userID uuid.UUID, l *listener) {
	h.mu.Lock()
	list := h.streams[userID]
	if i := slices.Index(list, l); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if _, ok := h.byID[l.id]; ok {
		delete(h.byID, l.id)
		h.count--
	}
	if len(list) == 0 {
		delete(h.streams, userID)
		delete(h.known, userID)
	} else {
		h.streams[userID] = list
	}
	h.mu.Unlock()
	h.metrics.open.Dec()
	if h.db.Pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := h.db.WithContext(ctx).Exec(`DELETE FROM live_listeners WHERE stream = ?`, l.id).Error; err != nil {
			h.log.Debug("stream lease not released (it expires)", zap.Error(err))
		}
	}
}

// wake tells the user's streams to read the log (never blocks: a stream
// already woken reads everything anyway).
func (h *hub) wake(userID uuid.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.streams[userID] {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (h *hub) users() []uuid.UUID {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]uuid.UUID, 0, len(h.streams))
	for u := range h.streams {
		out = append(out, u)
	}
	return out
}

// startHub runs the hub in the roles that serve streams.
func startHub(lc fx.Lifecycle, role platform.Role, h *hub) {
	if !role.ServesAPI() {
		return
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ctx, cancel := context.WithCancel(context.Background())
			h.stop, h.done = cancel, make(chan struct{})
			var wg sync.WaitGroup
			if h.db.Pool != nil {
				switch {
				case h.fanout != nil:
					wg.Go(func() { h.subscribeRedis(ctx) })
				case h.db.Sessions != nil:
					wg.Go(func() { h.listen(ctx) })
				}
				wg.Go(func() { h.renew(ctx) })
			}
			wg.Go(func() { h.poll(ctx) })
			go func() { wg.Wait(); close(h.done) }()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			h.stop()
			select {
			case <-h.done:
			case <-ctx.Done():
			}
			if h.db.Pool != nil {
				_ = h.db.WithContext(ctx).Exec(`DELETE FROM live_listeners WHERE instance = ?`, h.instance).Error
			}
			return nil
		},
	})
}

// notified says whether changes are announced to this process (LISTEN, or
// Redis): without (SQLite; PgBouncer without database.direct_url nor
// Redis) the head poll finds them.
func (h *hub) notified() bool {
	return h.db.Pool != nil && (h.fanout != nil || h.db.Sessions != nil)
}

// listen holds one connection LISTENing on perpetua_changes, again after
// any failure.
func (h *hub) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("change notifications lost; listening again", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		for _, u := range h.users() {
			h.wake(u)
		}
	}
}

func (h *hub) listenOnce(ctx context.Context) error {
	conn, err := h.db.Sessions.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN perpetua_changes"); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it.
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = conn.Exec(c, "UNLISTEN *")
	}()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		h.handle(n.Payload)
	}
}

// handle acts on a notification: a user's changes, or a stream to close.
func (h *hub) handle(payload string) {
	if id, ok := strings.CutPrefix(payload, closePrefix); ok {
		if stream, err := uuid.Parse(id); err == nil {
			h.mu.Lock()
			l := h.byID[stream]
			h.mu.Unlock()
			if l != nil {
				l.replace()
			}
		}
	} else if u, err := uuid.Parse(strings.SplitN(payload, ":", 2)[0]); err == nil {
		// <user>[:<the change's number>]: the stream reads from its own
		// position, whatever the number.
		h.wake(u)
	}
}

// subscribeRedis receives the Redis mode's announcements (the client
// subscribes again by itself after a lost connection; the streams are woken
// then, as after a lost LISTEN).
func (h *hub) subscribeRedis(ctx context.Context) {
	ps := h.fanout.client.Subscribe(ctx, redisChannel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil && ctx.Err() == nil {
		h.log.Warn("Redis subscription failed; the head poll carries changes", zap.Error(err))
	}
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			h.handle(m.Payload)
		case *redis.Subscription:
			for _, u := range h.users() { // subscribed again: anything may have been missed
				h.wake(u)
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// renew renews this instance's leases.
func (h *hub) renew(ctx context.Context) {
	tick := time.NewTicker(leaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := h.db.WithContext(ctx).Exec(`UPDATE live_listeners SET expires_at = ? WHERE instance = ?`,
			h.clock.Now().Add(leaseTTL), h.instance).Error
		if err != nil && ctx.Err() == nil {
			h.log.Warn("stream leases not renewed", zap.Error(err))
		}
	}
}

// poll reads the heads of the users with streams here and wakes those
// whose head moved.
func (h *hub) poll(ctx context.Context) {
	every := h.cfg.PollInterval
	if h.notified() {
		every *= 10 // a safety net for a lost notification
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		users := h.users()
		for chunk := range slices.Chunk(users, 500) {
			var heads []Head
			if err := h.db.WithContext(ctx).Where("user_id IN ?", chunk).Find(&heads).Error; err != nil {
				if ctx.Err() == nil {
					h.log.Warn("change heads unreadable", zap.Error(err))
				}
				break
			}
			for _, hd := range heads {
				h.mu.Lock()
				moved := hd.Seq > h.known[hd.UserID]
				if _, watched := h.streams[hd.UserID]; watched && moved {
					h.known[hd.UserID] = hd.Seq
				}
				h.mu.Unlock()
				if moved {
					h.wake(hd.UserID)
				}
			}
		}
	}
}
