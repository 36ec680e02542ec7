// Package migrations is the ordered list of schema migrations. Each lives in
// its own file named YYYYMMDDHHMM_what.go and is never edited once released:
// a change to the schema is a new migration. Migrations declare the tables
// they create with their own struct snapshots (not the modules' models), so
// that later model changes cannot rewrite history. Every migration runs on
// PostgreSQL and SQLite.
package migrations

import "github.com/go-gormigrate/gormigrate/v2"

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
	}
}
