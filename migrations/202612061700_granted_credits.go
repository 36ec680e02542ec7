package migrations

import (
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// grantedCredits adds the kind of credit an operator grants (perpetua
// users grant-credits): its sum per user is kept in row_counts like the
// other kinds', so the triggers on credit_ledger are made again with five
// kinds. No row of the new kind exists yet: nothing to backfill.
var grantedCredits = &gormigrate.Migration{
	ID: "202612061700_granted_credits",
	Migrate: func(tx *gorm.DB) error {
		t := keptTable{table: "credit_ledger", lists: []keptList{{"credit_history", "", ""}}}
		for _, kind := range []string{"daily", "subscription", "purchased", "kickstart", "granted"} {
			t.lists = append(t.lists, keptList{name: "credits:" + kind, when: "{r}kind = '" + kind + "'", sum: "amount"})
		}
		var stmts []string
		if tx.Dialector.Name() == "postgres" {
			stmts = append([]string{"DROP TRIGGER credit_ledger_count_insert ON credit_ledger",
				"DROP TRIGGER credit_ledger_count_delete ON credit_ledger", "DROP TRIGGER credit_ledger_count_update ON credit_ledger",
				"DROP FUNCTION credit_ledger_row_counts()"}, t.postgresTriggers()...)
		} else {
			stmts = append([]string{"DROP TRIGGER credit_ledger_count_insert", "DROP TRIGGER credit_ledger_count_delete",
				"DROP TRIGGER credit_ledger_count_update"}, t.sqliteTriggers()...)
		}
		return execAll(tx, stmts)
	},
	Rollback: func(*gorm.DB) error {
		return fmt.Errorf("202612061700_granted_credits cannot be rolled back: restore a backup")
	},
}
