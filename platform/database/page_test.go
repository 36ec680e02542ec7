package database_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/database"
)

// pageRow is a row of a scratch list.
type pageRow struct {
	ID     uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID uuid.UUID `gorm:"type:uuid;not null"`
	At     time.Time `gorm:"not null"`
}

func (pageRow) TableName() string { return "page_rows" }

// TestPageWalksEveryRowOnceByCursorAndByOffset: in both directions, with
// instants shared by several rows, pages taken by next cursor and by offset
// give the whole list in its order, each row once; a cursor and an offset
// together skip from the cursor; the last page has no cursor; another
// list's cursor, or a made-up one, is a validation error.
func TestPageWalksEveryRowOnceByCursorAndByOffset(t *testing.T) {
	t.Parallel()
	db := open(t)
	if err := db.Gorm.AutoMigrate(&pageRow{}); err != nil {
		t.Fatal(err)
	}
	user, other := uuid.New(), uuid.New()
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i := range 23 {
		at := base.Add(time.Duration(i/3) * time.Second) // three rows share each instant
		for _, u := range []uuid.UUID{user, other} {
			if err := db.Gorm.Create(&pageRow{ID: uuid.New(), UserID: u, At: at}).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	key := func(r *pageRow) (time.Time, uuid.UUID) { return r.At, r.ID }
	ids := func(rows []pageRow) (out []uuid.UUID) {
		for _, r := range rows {
			out = append(out, r.ID)
		}
		return out
	}
	for _, asc := range []bool{false, true} {
		order := database.Keyset[pageRow]{List: "rows", Column: "at", Asc: asc, Key: key}
		list := func(w database.Window) database.Paged[pageRow] {
			t.Helper()
			p, err := database.Page(db.Gorm.Model(&pageRow{}).Where("user_id = ?", user), order, w, nil)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		all := list(database.Window{Limit: 100})
		if len(all.Rows) != 23 || all.Next != "" || all.Total != 23 {
			t.Fatalf("asc %v: the whole list has %d rows, total %d, next %q", asc, len(all.Rows), all.Total, all.Next)
		}
		want := ids(all.Rows)
		if !slices.IsSortedFunc(all.Rows, func(a, b pageRow) int {
			c := a.At.Compare(b.At)
			if c == 0 {
				c = slices.Compare(a.ID[:], b.ID[:])
			}
			if !asc {
				c = -c
			}
			return c
		}) {
			t.Fatalf("asc %v: not in order", asc)
		}
		var byCursor, byOffset []uuid.UUID
		cursor := ""
		for n := 0; ; n++ {
			p := list(database.Window{Cursor: cursor, Limit: 5})
			byCursor = append(byCursor, ids(p.Rows)...)
			byOffset = append(byOffset, ids(list(database.Window{Offset: 5 * n, Limit: 5}).Rows)...)
			if p.Total != 23 {
				t.Fatalf("asc %v page %d: total %d", asc, n, p.Total)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if !slices.Equal(byCursor, want) || !slices.Equal(byOffset, want) {
			t.Fatalf("asc %v:\nby cursor %v\nby offset %v\nwant      %v", asc, byCursor, byOffset, want)
		}
		first := list(database.Window{Limit: 4})
		if got := ids(list(database.Window{Cursor: first.Next, Offset: 6, Limit: 3}).Rows); !slices.Equal(got, want[10:13]) {
			t.Fatalf("asc %v: cursor then offset 6 gives %v, want %v", asc, got, want[10:13])
		}
		other := database.Keyset[pageRow]{List: "others", Column: "at", Asc: asc, Key: key}
		for _, bad := range []string{"x", "eyJsIjoicm93cyJ9", "%%", first.Next + "x"} {
			if _, err := database.Page(db.Gorm.Model(&pageRow{}), order, database.Window{Cursor: bad, Limit: 5}, nil); !errors.Is(err, database.ErrBadCursor) {
				t.Fatalf("asc %v: cursor %q: %v, want a bad cursor", asc, bad, err)
			}
		}
		if _, err := database.Page(db.Gorm.Model(&pageRow{}), other, database.Window{Cursor: first.Next, Limit: 5}, nil); !errors.Is(err, database.ErrBadCursor) {
			t.Fatalf("asc %v: another list's cursor: %v", asc, err)
		}
	}
}

// TestDeleteInBatchesDeletesEveryMatchingRowAndNoOther: more rows than
// three batches match; all go, in batches, and the rows that do not match
// stay.
func TestDeleteInBatchesDeletesEveryMatchingRowAndNoOther(t *testing.T) {
	t.Parallel()
	db := open(t)
	if err := db.Gorm.AutoMigrate(&pageRow{}); err != nil {
		t.Fatal(err)
	}
	old, recent := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	user := uuid.New()
	rows := make([]pageRow, 0, 3*database.PurgeBatch+20)
	for i := range cap(rows) {
		at := old
		if i%100 == 0 {
			at = recent
		}
		rows = append(rows, pageRow{ID: uuid.New(), UserID: user, At: at})
	}
	if err := db.Gorm.CreateInBatches(rows, 500).Error; err != nil {
		t.Fatal(err)
	}
	var keep int64
	db.Gorm.Model(&pageRow{}).Where("at >= ?", recent).Count(&keep)
	n, err := database.DeleteInBatches[pageRow](t.Context(), db.Gorm, "id", "at < ?", recent)
	if err != nil {
		t.Fatal(err)
	}
	var left, leftOld int64
	db.Gorm.Model(&pageRow{}).Count(&left)
	db.Gorm.Model(&pageRow{}).Where("at < ?", recent).Count(&leftOld)
	if n != int64(len(rows))-keep || leftOld != 0 || left != keep {
		t.Fatalf("deleted %d of %d, %d left (%d old), want %d left", n, len(rows), left, leftOld, keep)
	}
}
