package database

import (
	"time"

	"gorm.io/gorm"
)

// Versioned is the fields of a row under optimistic locking: its version
// and when it last changed. A model gives them with its Versioned method.
type Versioned struct {
	Version   *int
	UpdatedAt *time.Time
}

// VersionedRow is a model under optimistic locking.
type VersionedRow interface{ Versioned() Versioned }

// SaveVersion writes columns of row (a model whose primary key is set) if
// its row still has the version row was read with: "lock, change, save"
// written once. The version becomes one more and updated_at now, both
// written with the columns. A row that changed or went meanwhile (0 rows:
// the lock taken before the change should rule it out) is stale, and row
// keeps its old version and time. The columns are written as row holds
// them (no GORM hooks, no automatic times: now is the time written).
func SaveVersion(tx *gorm.DB, row VersionedRow, now time.Time, stale error, columns ...string) error {
	v := row.Versioned()
	prev, prevAt := *v.Version, *v.UpdatedAt
	*v.Version, *v.UpdatedAt = prev+1, now
	cols := append(append(make([]string, 0, len(columns)+2), columns...), "version", "updated_at")
	res := tx.Model(row).Where("version = ?", prev).Select(cols).UpdateColumns(row)
	if err := One(res, stale); err != nil {
		*v.Version, *v.UpdatedAt = prev, prevAt
		return err
	}
	return nil
}
