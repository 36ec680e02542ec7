package database_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/test/testkit"
)

// bookmark is a module's row: it belongs to a user.
type bookmark struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;not null;index:idx_bookmarks_user_created,priority:1"`
	Title     string    `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null;index:idx_bookmarks_user_created,priority:2"`
}

var errBookmarkNotFound = apperr.NotFound("BOOKMARK_NOT_FOUND", "bookmark")

// bookmarkOrder is the list's order, newest first; its cursors name it.
var bookmarkOrder = database.Keyset[bookmark]{List: "bookmarks", Column: "created_at",
	Key: func(b *bookmark) (time.Time, uuid.UUID) { return b.CreatedAt, b.ID }}

// A module reads one of the user's rows with Owned (another user's id is
// the same answer as a missing one) and lists them with Page: keyset pages
// that cost the same however deep, a cursor to the next page, and a total.
func ExamplePage() {
	tb := testkit.NewExampleTB()
	defer tb.Done()
	db := testkit.OpenDB(tb)
	if err := db.Gorm.AutoMigrate(&bookmark{}); err != nil {
		panic(err)
	}
	alice, bob := uuid.New(), uuid.New()
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	var first uuid.UUID
	for i := range 5 {
		b := bookmark{ID: uuid.New(), UserID: alice, Title: fmt.Sprintf("link %d", i), CreatedAt: start.Add(time.Duration(i) * time.Minute)}
		if i == 0 {
			first = b.ID
		}
		if err := db.Gorm.Create(&b).Error; err != nil {
			panic(err)
		}
	}
	ctx := context.Background()

	b, err := database.Owned[bookmark](db.Gorm.WithContext(ctx), alice, first, errBookmarkNotFound)
	fmt.Println(b.Title, err)
	_, err = database.Owned[bookmark](db.Gorm.WithContext(ctx), bob, first, errBookmarkNotFound)
	fmt.Println(err)

	// Inside a transaction, ForUpdate locks the row until it ends.
	_ = db.Tx(ctx, func(tx *gorm.DB) error {
		_, err := database.Owned[bookmark](database.ForUpdate(tx), alice, first, errBookmarkNotFound)
		return err
	})

	w := database.Window{Limit: 2}
	for {
		page, err := database.Page(db.Gorm.WithContext(ctx).Model(&bookmark{}).Where("user_id = ?", alice), bookmarkOrder, w, nil)
		if err != nil {
			panic(err)
		}
		for _, b := range page.Rows {
			fmt.Print(b.Title, "; ")
		}
		fmt.Println("total", page.Total)
		if page.Next == "" {
			break
		}
		w.Cursor = page.Next
	}
	// Output:
	// link 0 <nil>
	// BOOKMARK_NOT_FOUND: bookmark not found
	// link 4; link 3; total 5
	// link 2; link 1; total 5
	// link 0; total 5
}
