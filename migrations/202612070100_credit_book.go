package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// creditBook is how a change to a user's credits begins on PostgreSQL, in
// one statement: it takes the user's ledger lock (the advisory lock of
// database.LockKey for lock_key) and then reads the rows the change needs —
// the lots with credits left, today's daily grant (daily_key) and the rows
// of one hold. The read is a statement of its own inside the function
// (VOLATILE), so in READ COMMITTED it sees every change committed before
// the lock was granted, as a SELECT sent after the lock would; the caller
// saves the round trip between the two. SQLite (one writer) needs no lock
// and reads with a plain query.
var creditBook = &gormigrate.Migration{
	ID: "202612070100_credit_book",
	Migrate: func(tx *gorm.DB) error {
		if tx.Dialector.Name() != "postgres" {
			return nil
		}
		return tx.Exec(`CREATE FUNCTION credit_book(owner uuid, lock_key text, daily_key text, hold uuid)
RETURNS SETOF credit_ledger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended(lock_key, 0));
	RETURN QUERY SELECT * FROM credit_ledger WHERE user_id = owner AND remaining > 0
		UNION SELECT * FROM credit_ledger WHERE user_id = owner AND once_key = daily_key
		UNION SELECT * FROM credit_ledger WHERE user_id = owner AND hold_id = hold
		ORDER BY created_at, id;
END
$$`).Error
	},
	Rollback: func(tx *gorm.DB) error {
		if tx.Dialector.Name() != "postgres" {
			return nil
		}
		return tx.Exec(`DROP FUNCTION credit_book(uuid, text, text, uuid)`).Error
	},
}
