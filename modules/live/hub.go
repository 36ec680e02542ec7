package live

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/observability"
)

// The hub knows this process's open streams by user and wakes a user's
// streams when the user's change log grew: on PostgreSQL on a NOTIFY from
// the commit (any instance's), on SQLite by looking at the log's newest
// row every poll_interval while streams are open (any writer of the file,
// this process or another). A woken stream reads the log itself: a wake-up
// carries nothing, so one lost or merged costs nothing but the next one.

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
			Help: "Live streams ended, by reason (client, replaced, slow, shutdown, error)."}, []string{"reason"}),
	}
	reg.MustRegister(m.open, m.sent, m.closed)
	return m
}

// listener is one open stream.
type listener struct {
	wake chan struct{}
	// replaced is closed when the user opened more streams than allowed and
	// this one, the oldest, must end.
	replaced chan struct{}
	once     sync.Once
}

func (l *listener) replace() { l.once.Do(func() { close(l.replaced) }) }

type hub struct {
	db      *database.DB
	cfg     Config
	metrics *metrics
	log     *zap.Logger

	mu      sync.Mutex
	streams map[uuid.UUID][]*listener // oldest first
	count   int

	stop func()
	done chan struct{}
}

func newHub(db *database.DB, cfg Config, m *metrics, log *zap.Logger) *hub {
	return &hub{db: db, cfg: cfg, metrics: m, log: log.Named("live"), streams: map[uuid.UUID][]*listener{}}
}

// subscribe registers a stream of the user; the oldest of the user's
// streams on this instance is replaced when there are more than
// max_streams_per_user.
func (h *hub) subscribe(userID uuid.UUID) (*listener, func()) {
	l := &listener{wake: make(chan struct{}, 1), replaced: make(chan struct{})}
	h.mu.Lock()
	list := append(h.streams[userID], l)
	for len(list) > h.cfg.MaxStreams {
		list[0].replace()
		list = list[1:]
		h.count--
	}
	h.streams[userID] = list
	h.count++
	h.mu.Unlock()
	h.metrics.open.Inc()
	return l, func() {
		h.mu.Lock()
		list := h.streams[userID]
		for i, x := range list {
			if x == l {
				list = append(list[:i:i], list[i+1:]...)
				h.count--
				break
			}
		}
		if len(list) == 0 {
			delete(h.streams, userID)
		} else {
			h.streams[userID] = list
		}
		h.mu.Unlock()
		h.metrics.open.Dec()
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

// wakeAll wakes every stream (after a lost connection: notifications may
// have been missed).
func (h *hub) wakeAll() {
	h.mu.Lock()
	users := make([]uuid.UUID, 0, len(h.streams))
	for u := range h.streams {
		users = append(users, u)
	}
	h.mu.Unlock()
	for _, u := range users {
		h.wake(u)
	}
}

func (h *hub) open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// startHub runs the hub's watcher in the roles that serve streams.
func startHub(lc fx.Lifecycle, role platform.Role, h *hub) {
	if !role.ServesAPI() {
		return
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ctx, cancel := context.WithCancel(context.Background())
			h.stop, h.done = cancel, make(chan struct{})
			go func() {
				defer close(h.done)
				if h.db.Pool != nil {
					h.listen(ctx)
				} else {
					h.poll(ctx)
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			h.stop()
			select {
			case <-h.done:
			case <-ctx.Done():
			}
			return nil
		},
	})
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
		h.wakeAll()
	}
}

func (h *hub) listenOnce(ctx context.Context) error {
	conn, err := h.db.Pool.Acquire(ctx)
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
		if u, err := uuid.Parse(n.Payload); err == nil {
			h.wake(u)
		}
	}
}

// poll watches the newest row of the change log while streams are open.
func (h *hub) poll(ctx context.Context) {
	var last int64
	if err := h.db.WithContext(ctx).Model(&Change{}).Select("COALESCE(MAX(id), 0)").Scan(&last).Error; err != nil {
		h.log.Warn("change log unreadable", zap.Error(err))
	}
	tick := time.NewTicker(h.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if h.open() == 0 {
			continue
		}
		var rows []struct {
			UserID uuid.UUID
			Max    int64
		}
		err := h.db.WithContext(ctx).Model(&Change{}).Select("user_id, MAX(id) AS max").Where("id > ?", last).
			Group("user_id").Scan(&rows).Error
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("change log unreadable", zap.Error(err))
			}
			continue
		}
		for _, r := range rows {
			last = max(last, r.Max)
			h.wake(r.UserID)
		}
	}
}
