package live

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"gorm.io/gorm/clause"

	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/observability"
)

// The hub knows this process's open streams by user and wakes a user's
// streams when the user's change log grew. On PostgreSQL a commit that
// changed a user with a stream open anywhere sends a NOTIFY naming the user
// (the hub leases a live_listeners row for each user it serves, so commits
// of users nobody watches send none: a NOTIFY serialises the commits that
// send one); the hub LISTENs on one pooled connection. Beside that, and as
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
			Help: "Live streams ended, by reason (client, replaced, shutdown, error)."}, []string{"reason"}),
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

// leaseTTL is how long a live_listeners row says a user is watched; the
// hub renews its rows at a third of it.
const leaseTTL = time.Minute

type hub struct {
	db       *database.DB
	cfg      Config
	clock    clock.Clock
	metrics  *metrics
	log      *zap.Logger
	instance uuid.UUID

	mu      sync.Mutex
	streams map[uuid.UUID][]*listener // oldest first
	known   map[uuid.UUID]int64       // the head last seen by the poll
	count   int

	stop func()
	done chan struct{}
}

func newHub(db *database.DB, cfg Config, clk clock.Clock, m *metrics, log *zap.Logger) *hub {
	return &hub{db: db, cfg: cfg, clock: clk, metrics: m, log: log.Named("live"), instance: uuid.New(),
		streams: map[uuid.UUID][]*listener{}, known: map[uuid.UUID]int64{}}
}

// subscribe registers a stream of the user; the oldest of the user's
// streams on this instance is replaced when there are more than
// max_streams_per_user. The user's first stream here leases their
// live_listeners row before it returns, so every commit after it notifies.
func (h *hub) subscribe(ctx context.Context, userID uuid.UUID) (*listener, func(), error) {
	l := &listener{wake: make(chan struct{}, 1), replaced: make(chan struct{})}
	h.mu.Lock()
	first := len(h.streams[userID]) == 0
	h.mu.Unlock()
	if first && h.db.Pool != nil {
		if err := h.lease(ctx, []uuid.UUID{userID}); err != nil {
			return nil, nil, err
		}
	}
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
	return l, func() { h.unsubscribe(userID, l) }, nil
}

func (h *hub) unsubscribe(userID uuid.UUID, l *listener) {
	h.mu.Lock()
	list := h.streams[userID]
	i := slices.Index(list, l)
	if i >= 0 {
		list = slices.Delete(list, i, i+1)
		h.count--
	}
	last := len(list) == 0
	if last {
		delete(h.streams, userID)
		delete(h.known, userID)
	} else {
		h.streams[userID] = list
	}
	h.mu.Unlock()
	h.metrics.open.Dec()
	if last && h.db.Pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := h.db.WithContext(ctx).Exec(`DELETE FROM live_listeners WHERE user_id = ? AND instance = ?`,
			userID, h.instance).Error; err != nil {
			h.log.Debug("listener lease not released (it expires)", zap.Error(err))
		}
	}
}

// lease marks the users watched by this instance for leaseTTL.
func (h *hub) lease(ctx context.Context, users []uuid.UUID) error {
	until := h.clock.Now().Add(leaseTTL)
	rows := make([]map[string]any, len(users))
	for i, u := range users {
		rows[i] = map[string]any{"user_id": u, "instance": h.instance, "expires_at": until}
	}
	return h.db.WithContext(ctx).Table("live_listeners").Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "instance"}},
		DoUpdates: clause.AssignmentColumns([]string{"expires_at"}),
	}).Create(rows).Error
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
				wg.Go(func() { h.listen(ctx) })
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
		if users := h.users(); len(users) > 0 {
			if err := h.lease(ctx, users); err != nil && ctx.Err() == nil {
				h.log.Warn("listener leases not renewed", zap.Error(err))
			}
		}
	}
}

// poll reads the heads of the users with streams here and wakes those
// whose head moved.
func (h *hub) poll(ctx context.Context) {
	every := h.cfg.PollInterval
	if h.db.Pool != nil {
		every *= 10
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
