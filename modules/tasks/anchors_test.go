package tasks_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/test/testkit"
)

// anchorUses reads the deep pages found by each way from the metrics.
func anchorUses(t *testing.T, app *testkit.App) map[string]int {
	t.Helper()
	res, err := http.Get(app.OpsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := map[string]int{}
	for _, m := range regexp.MustCompile(`perpetua_task_list_anchors_total\{result="(\w+)"\} (\d+)`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

// TestDeepPagesByOffsetStartAtKeptPositionsUntilTheListChanges: a deep
// page by offset is the same page whether its start is walked in the
// index or found at a position kept from an earlier request (the page
// again, or the page after it); a task created, completed or deleted
// before that position moves the page, and the next request sees the move
// (the kept position is stale and the page is read the long way), on both
// orders by creation and with state filters; the pages always match the
// database's own order.
func TestDeepPagesByOffsetStartAtKeptPositionsUntilTheListChanges(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(tasks.Module))
	alice := app.SignIn(t, "alice@example.com")
	base := app.Clock.Now().Add(-1000 * time.Hour)
	err := app.DB.Gorm.Transaction(func(tx *gorm.DB) error {
		for i := range 700 {
			at := base.Add(time.Duration(i/2) * time.Minute) // two tasks share each instant
			if err := tx.Exec(`INSERT INTO tasks (id, user_id, title, description, priority, completed, hidden, archived, version, created_at, updated_at)
				VALUES (?, ?, ?, '', 'medium', ?, false, false, 1, ?, ?)`, uuid.New(), alice.ID, fmt.Sprintf("t%03d", i), i%20 != 0, at, at).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// truth is the page as the database orders it.
	truth := func(sort, filter string, offset int) []string {
		order := "created_at DESC, id DESC"
		if sort == "created_at" {
			order = "created_at ASC, id DESC"
		}
		var ids []string
		q := app.DB.Gorm.Table("tasks").Where("user_id = ?", alice.ID)
		if filter != "" {
			q = q.Where(filter)
		}
		if err := q.Order(order).Offset(offset).Limit(25).Pluck("id", &ids).Error; err != nil {
			t.Fatal(err)
		}
		return ids
	}
	page := func(sort, query string, offset int) []string {
		var ids []string
		for _, d := range app.Do(t, alice, http.MethodGet, fmt.Sprintf("/api/v1/tasks?limit=25&sort=%s&offset=%d%s", sort, offset, query), nil).
			Expect(t, http.StatusOK).List(t) {
			ids = append(ids, d["id"].(string))
		}
		return ids
	}
	check := func(what, sort, query, filter string, offset int) {
		t.Helper()
		got, want := page(sort, query, offset), truth(sort, filter, offset)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s (%s%s at %d):\ngot  %v\nwant %v", what, sort, query, offset, got, want)
		}
	}
	for _, sort := range []string{"-created_at", "created_at"} {
		for _, l := range []struct{ query, filter string }{{"", ""}, {"&completed=true", "completed = true"}} {
			before := anchorUses(t, app)
			check("first walk", sort, l.query, l.filter, 520)
			check("again, from its kept start", sort, l.query, l.filter, 520)
			check("the page after, from the row after the page", sort, l.query, l.filter, 545)
			uses := anchorUses(t, app)
			if uses["miss"]-before["miss"] != 1 || uses["hit"]-before["hit"] != 2 {
				t.Fatalf("%s%s: uses %v after %v, want one miss then two hits", sort, l.query, uses, before)
			}
			// A task created now comes first in one order and last in the
			// other; a task completed or deleted among the oldest moves the
			// positions of both orders.
			createTask(t, app, alice, map[string]any{"title": "new"})
			check("after a create", sort, l.query, l.filter, 520)
			var oldest []string
			app.DB.Gorm.Table("tasks").Where("user_id = ? AND completed = false", alice.ID).Order("created_at, id").Limit(2).Pluck("id", &oldest)
			app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+oldest[0]+"/complete", map[string]any{}).Expect(t, http.StatusOK)
			check("after a completion", sort, l.query, l.filter, 545)
			check("again", sort, l.query, l.filter, 545)
			app.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+oldest[1], nil).Expect(t, http.StatusOK)
			check("after a deletion", sort, l.query, l.filter, 545)
			after := anchorUses(t, app)
			if after["stale"]-uses["stale"] < 2 {
				t.Fatalf("%s%s: uses %v after %v, want the changes seen as stale positions", sort, l.query, after, uses)
			}
		}
	}
}
