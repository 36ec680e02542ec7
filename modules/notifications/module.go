// Package notifications owns in-app notifications, WebPush subscriptions
// and their delivery, and the firing of reminders at their time.
package notifications

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the notifications module; it delivers the tasks module's
// reminders.
var Module = platform.Module{
	Name:  "notifications",
	Needs: []string{"tasks"},
	Option: fx.Module("notifications",
		userdata.Contribute(
			userdata.Table("notifications", "notifications", "user_id"),
			userdata.Table("push_subscriptions", "push_subscriptions", "user_id", "p256dh_key", "auth_key"),
		),
		fx.Provide(
			newConfig,
			newVAPID,
			newService,
			platform.AsRoutes(newHandlers),
			changes.AsEntity(notificationEntity),
			platform.AsModels(models),
			newDeliveries,
			events.AsSubscriber(scheduleReminders),
			events.AsSubscriber(cancelRemovedReminders),
			events.AsSubscriber(cancelDeletedTaskReminders),
			events.AsSubscriber(notifySkippedOccurrences),
			events.AsSubscriber(notifyAchievements),
			events.AsSubscriber(notifySubscriptions),
			events.AsSubscriber(notifyTranscriptions),
			events.AsSubscriber(notifyExports),
			events.AsSubscriber(notifyFailedExports),
			events.AsSubscriber(stopClosedAccounts),
			jobs.AsWorker(newReminderFireWorker),
			newPushClient,
			jobs.AsWorker(newPushWorker),
			events.AsSubscriber(queuePushes),
		),
	),
}

// Config is the push section of the configuration.
type Config struct {
	VAPIDPublicKey    string        `mapstructure:"vapid_public_key"`
	VAPIDPrivateKey   string        `mapstructure:"vapid_private_key"`
	VAPIDContactEmail string        `mapstructure:"vapid_contact_email"`
	TTL               time.Duration `mapstructure:"ttl"`
	Timeout           time.Duration `mapstructure:"timeout"`
	MaxAttempts       int           `mapstructure:"max_attempts"`
	RetryBackoff      time.Duration `mapstructure:"retry_backoff"`
	// AllowPrivateEndpoints accepts push endpoints on loopback and private
	// hosts (development with a local push service only).
	AllowPrivateEndpoints bool `mapstructure:"allow_private_endpoints"`
}

// Validate checks the section.
func (c Config) Validate() error {
	switch {
	case c.TTL < time.Second || c.TTL > 28*24*time.Hour:
		return config.Invalid("ttl", "must be 1s-672h")
	case c.Timeout <= 0:
		return config.Invalid("timeout", "must be positive")
	case c.MaxAttempts < 1:
		return config.Invalid("max_attempts", "must be at least 1")
	case c.RetryBackoff <= 0:
		return config.Invalid("retry_backoff", "must be positive")
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	return c, cfg.Section("push", &c)
}

func models() platform.Models {
	return platform.Models{Module: "notifications", List: []any{&Notification{}, &PushSubscription{}, &ReminderDelivery{}}}
}
