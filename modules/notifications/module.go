// Package notifications owns in-app notifications, WebPush subscriptions
// (and, later, their delivery) and the firing of reminders at their time.
package notifications

import (
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
)

// Module is the notifications module; it delivers the tasks module's
// reminders.
var Module = platform.Module{
	Name:  "notifications",
	Needs: []string{"tasks"},
	Option: fx.Module("notifications",
		fx.Provide(
			newConfig,
			newVAPID,
			newService,
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			newDeliveries,
			events.AsSubscriber(scheduleReminders),
			events.AsSubscriber(cancelRemovedReminders),
			events.AsSubscriber(cancelDeletedTaskReminders),
			events.AsSubscriber(notifySkippedOccurrences),
			events.AsSubscriber(notifyAchievements),
			events.AsSubscriber(notifySubscriptions),
			events.AsSubscriber(notifyTranscriptions),
			jobs.AsWorker(newReminderFireWorker),
		),
	),
}

// Config is the push section of the configuration.
type Config struct {
	VAPIDPublicKey    string `mapstructure:"vapid_public_key"`
	VAPIDPrivateKey   string `mapstructure:"vapid_private_key"`
	VAPIDContactEmail string `mapstructure:"vapid_contact_email"`
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	return c, cfg.Section("push", &c)
}

func models() platform.Models {
	return platform.Models{Module: "notifications", List: []any{&Notification{}, &PushSubscription{}, &ReminderDelivery{}}}
}
