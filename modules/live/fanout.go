package live

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
)

// With REDIS_URL set (on PostgreSQL), commits are announced through Redis
// pub/sub instead of LISTEN/NOTIFY, which needs a session of its own that
// a transaction pooler (PgBouncer) does not give: every process — api or
// worker — publishes, after each commit, the users whose entities the
// transaction changed (database.WatchChanges), and each api instance's hub
// subscribes. Writes outside a transaction are found by the hub's head
// poll, as any lost message is.

// redisChannel carries user ids, and "close:<stream>" for the stream limit.
const redisChannel = "perpetua:changes"

// fanout is the Redis connection of the Redis mode (nil otherwise).
type fanout struct {
	client *redis.Client
	queue  chan string
	log    *zap.Logger
}

func newFanout(cfg *config.Config, db *database.DB, log *zap.Logger) (*fanout, error) {
	if cfg.Redis.URL == "" || db.Pool == nil {
		return nil, nil
	}
	opts, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	return &fanout{client: redis.NewClient(opts), queue: make(chan string, 4096), log: log.Named("live")}, nil
}

// publish queues a message; a full queue drops it (the head poll finds the
// change within a second).
func (f *fanout) publish(msg string) {
	select {
	case f.queue <- msg:
	default:
	}
}

// startFanout has every process publish its commits in the Redis mode.
func startFanout(lc fx.Lifecycle, f *fanout, db *database.DB) {
	if f == nil {
		return
	}
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			db.WatchChanges(func(users []string) {
				for _, u := range users {
					f.publish(u)
				}
			})
			go func() {
				defer close(done)
				for msg := range f.queue {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					if err := f.client.Publish(ctx, redisChannel, msg).Err(); err != nil {
						f.log.Debug("change not announced through Redis (the head poll finds it)", zap.Error(err))
					}
					cancel()
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			db.WatchChanges(nil)
			close(f.queue)
			select {
			case <-done:
			case <-ctx.Done():
			}
			return f.client.Close()
		},
	})
}
