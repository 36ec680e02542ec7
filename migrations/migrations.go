// Package migrations is the ordered list of schema migrations. Each lives in
// its own file named YYYYMMDDHHMM_what.go and is never edited once released:
// a change to the schema is a new migration. Migrations declare the tables
// they create with their own struct snapshots (not the modules' models), so
// that later model changes cannot rewrite history. Every migration runs on
// PostgreSQL and SQLite.
package migrations

import (
	"context"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"

	"github.com/perpetuaflow/api/platform/database"
)

// All returns the application's migrations in the order they apply. The job
// queue's tables are installed by River (see River).
func All() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		platformTables,
		authTables,
		taskTables,
		taskDomain,
		notificationTables,
		noteTables,
		reminderDeliveries,
		pushSubscriptionsPerUser,
		gamificationTables,
		billingTables,
		aiTables,
		taskListIndex,
		activeTaskCounts,
		holdsAndPaymentSessions,
		activityEntityTypes,
		taskStateCounts,
		rowCounts,
		listOrderIndexes,
		taskListGeneration,
		creditSums,
		grantedCredits,
		calendarFeeds,
		accounts,
		changes,
		creditBook,
	}
}

// State is one migration and whether the database has it.
type State struct {
	ID      string `json:"id"`
	Applied bool   `json:"applied"`
}

// Status lists every migration of this binary — ours, then the job
// queue's (river_N) — and whether db has it.
func Status(ctx context.Context, db *database.DB) ([]State, error) {
	applied := map[string]bool{}
	if db.Gorm.Migrator().HasTable("schema_migrations") {
		var ids []string
		if err := db.Gorm.WithContext(ctx).Table("schema_migrations").Pluck("id", &ids).Error; err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		for _, id := range ids {
			applied[id] = true
		}
	}
	var out []State
	for _, m := range All() {
		out = append(out, State{ID: m.ID, Applied: applied[m.ID]})
	}
	river := map[int]bool{}
	if db.Gorm.Migrator().HasTable("river_migration") {
		var versions []int
		if err := db.Gorm.WithContext(ctx).Table("river_migration").Pluck("version", &versions).Error; err != nil {
			return nil, fmt.Errorf("read river_migration: %w", err)
		}
		for _, v := range versions {
			river[v] = true
		}
	}
	for v := 1; v <= RiverVersion; v++ {
		out = append(out, State{ID: fmt.Sprintf("river_%d", v), Applied: river[v]})
	}
	return out, nil
}
