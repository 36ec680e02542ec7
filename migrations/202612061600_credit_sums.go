package migrations

import (
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// creditSums keeps, beside the credit history's count, each user's sum of
// the ledger's amounts per kind of credit (credits:daily, …) in row_counts,
// so that a balance is four rows instead of a sum over years of grants and
// spends; the grants with credits left, which every spend walks oldest
// first, get a partial index of their own. Unread notifications get one
// too: the unread list and "read all" of a user who has read everything
// no longer walk the whole history to find nothing.
var creditSums = &gormigrate.Migration{
	ID: "202612061600_credit_sums",
	Migrate: func(tx *gorm.DB) error {
		t := keptTable{table: "credit_ledger", lists: []keptList{{"credit_history", "", ""}}}
		var stmts []string
		for _, kind := range []string{"daily", "subscription", "purchased", "kickstart"} {
			l := keptList{name: "credits:" + kind, when: "{r}kind = '" + kind + "'", sum: "amount"}
			t.lists = append(t.lists, l)
			stmts = append(stmts, fmt.Sprintf(`INSERT INTO row_counts (user_id, list, n)
				SELECT user_id, '%s', SUM(amount) FROM credit_ledger WHERE %s GROUP BY user_id`, l.name, l.cond("")))
		}
		if tx.Dialector.Name() == "postgres" {
			stmts = append([]string{"DROP TRIGGER credit_ledger_count_insert ON credit_ledger",
				"DROP TRIGGER credit_ledger_count_delete ON credit_ledger", "DROP TRIGGER credit_ledger_count_update ON credit_ledger",
				"DROP FUNCTION credit_ledger_row_counts()"}, stmts...)
			stmts = append(stmts, t.postgresTriggers()...)
		} else {
			stmts = append([]string{"DROP TRIGGER credit_ledger_count_insert", "DROP TRIGGER credit_ledger_count_delete",
				"DROP TRIGGER credit_ledger_count_update"}, stmts...)
			stmts = append(stmts, t.sqliteTriggers()...)
		}
		stmts = append(stmts,
			`CREATE INDEX idx_credit_ledger_live_lots ON credit_ledger (user_id, kind, created_at, id) WHERE remaining > 0`,
			`CREATE INDEX idx_notifications_user_unread ON notifications (user_id, created_at DESC, id DESC) WHERE NOT read`,
		)
		return execAll(tx, stmts)
	},
	Rollback: func(*gorm.DB) error {
		return fmt.Errorf("202612061600_credit_sums cannot be rolled back: restore a backup")
	},
}
