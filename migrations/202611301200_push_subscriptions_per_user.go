package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// pushSubscriptionsPerUser makes a push endpoint unique per user instead of
// globally: another user subscribing the same endpoint with other keys gets
// a row of their own instead of taking the first user's over.
var pushSubscriptionsPerUser = &gormigrate.Migration{
	ID: "202611301200_push_subscriptions_per_user",
	Migrate: func(tx *gorm.DB) error {
		for _, stmt := range []string{
			"DROP INDEX idx_push_subscriptions_endpoint",
			"CREATE UNIQUE INDEX idx_push_subscriptions_user_endpoint ON push_subscriptions (user_id, endpoint)",
			"CREATE INDEX idx_push_subscriptions_endpoint ON push_subscriptions (endpoint)",
		} {
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	},
	Rollback: func(tx *gorm.DB) error {
		for _, stmt := range []string{
			"DROP INDEX idx_push_subscriptions_endpoint",
			"DROP INDEX idx_push_subscriptions_user_endpoint",
			"CREATE UNIQUE INDEX idx_push_subscriptions_endpoint ON push_subscriptions (endpoint)",
		} {
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	},
}
