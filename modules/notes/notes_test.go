package notes_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/test/testkit"
)

func addNote(t *testing.T, app *testkit.App, u *testkit.User, body map[string]any) map[string]any {
	t.Helper()
	return app.Do(t, u, http.MethodPost, "/api/v1/notes", body).Expect(t, http.StatusCreated).Data(t)
}

func TestNotesLifecycle(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	n := addNote(t, app, alice, map[string]any{"content": "Buy milk"})
	for k, want := range map[string]any{"content": "Buy milk", "archived": false, "task_id": nil, "voice_url": nil,
		"voice_duration_seconds": nil, "transcription_status": nil, "user_id": alice.ID.String()} {
		if got, ok := n[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	id := n["id"].(string)
	app.Do(t, alice, http.MethodGet, "/api/v1/notes/"+id, nil).Expect(t, http.StatusOK)
	upd := app.Do(t, alice, http.MethodPatch, "/api/v1/notes/"+id, map[string]any{"content": "Buy oat milk"}).Expect(t, http.StatusOK).Data(t)
	if upd["content"] != "Buy oat milk" || upd["version"] != float64(2) {
		t.Fatalf("update: %v", upd)
	}
	addNote(t, app, alice, map[string]any{"content": "second"})
	app.Do(t, alice, http.MethodPatch, "/api/v1/notes/"+id, map[string]any{"archived": true}).Expect(t, http.StatusOK)

	// A plain list has archived notes too; the client filters itself.
	if all := app.Do(t, alice, http.MethodGet, "/api/v1/notes", nil).Expect(t, http.StatusOK).List(t); len(all) != 2 {
		t.Fatalf("plain list: %d", len(all))
	}
	if live := app.Do(t, alice, http.MethodGet, "/api/v1/notes?archived=false", nil).List(t); len(live) != 1 || live[0]["content"] != "second" {
		t.Fatalf("archived=false: %v", live)
	}
	if arch := app.Do(t, alice, http.MethodGet, "/api/v1/notes?archived=true", nil).List(t); len(arch) != 1 || arch[0]["id"] != id {
		t.Fatalf("archived=true: %v", arch)
	}

	for _, bad := range []map[string]any{{}, {"content": ""}, {"content": "   "}, {"content": strings.Repeat("x", 2001)}, {"content": 5}} {
		app.Do(t, alice, http.MethodPost, "/api/v1/notes", bad).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	}
	addNote(t, app, alice, map[string]any{"content": strings.Repeat("x", 2000)})

	bob := app.SignIn(t, "bob@example.com")
	app.Do(t, bob, http.MethodGet, "/api/v1/notes/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, bob, http.MethodPatch, "/api/v1/notes/"+id, map[string]any{"content": "x"}).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, bob, http.MethodDelete, "/api/v1/notes/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")

	del := app.Do(t, alice, http.MethodDelete, "/api/v1/notes/"+id, nil).Expect(t, http.StatusOK).Data(t)
	app.Do(t, alice, http.MethodGet, "/api/v1/notes/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	back := app.Do(t, alice, http.MethodPost, "/api/v1/recovery/"+del["tombstone_id"].(string)+"/recover", nil).
		Expect(t, http.StatusCreated).Data(t)
	if back["id"] != id || back["version"] != float64(1) || back["created_at"] != n["created_at"] || back["content"] != "Buy oat milk" {
		t.Fatalf("recovered note: %v", back)
	}
}

func TestNoteLimitCountsOnlyUnarchivedNotes(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	var first string
	for i := range 10 {
		n := addNote(t, app, alice, map[string]any{"content": fmt.Sprintf("n%d", i)})
		if i == 0 {
			first = n["id"].(string)
		}
	}
	res := app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "eleventh"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
	if !strings.Contains(string(res.Body), "max_notes") || !strings.Contains(string(res.Body), "10") {
		t.Fatalf("message: %s", res.Body)
	}
	app.Do(t, alice, http.MethodPatch, "/api/v1/notes/"+first, map[string]any{"archived": true}).Expect(t, http.StatusOK)
	addNote(t, app, alice, map[string]any{"content": "fits after archiving"})
	app.Do(t, alice, http.MethodPatch, "/api/v1/notes/"+first, map[string]any{"archived": false}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")

	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 25; i++ {
		addNote(t, app, alice, map[string]any{"content": fmt.Sprintf("n%d", i)})
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "twenty-sixth"}).
		ExpectError(t, http.StatusConflict, "LIMIT_EXCEEDED")
}

func TestTaskNotes(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	task := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t"}).Expect(t, http.StatusCreated).Data(t)
	id := task["id"].(string)
	n := app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/notes", map[string]any{"content": "on the task"}).
		Expect(t, http.StatusCreated).Data(t)
	if n["task_id"] != id {
		t.Fatalf("task note: %v", n)
	}
	viaBody := addNote(t, app, alice, map[string]any{"content": "also on it", "task_id": id})
	addNote(t, app, alice, map[string]any{"content": "free"})
	list := app.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id+"/notes", nil).Expect(t, http.StatusOK).List(t)
	if len(list) != 2 || list[0]["id"] != viaBody["id"] {
		t.Fatalf("task notes: %v", list)
	}
	if filtered := app.Do(t, alice, http.MethodGet, "/api/v1/notes?task_id="+id, nil).List(t); len(filtered) != 2 {
		t.Fatalf("task_id filter: %v", filtered)
	}
	app.Do(t, bob, http.MethodGet, "/api/v1/tasks/"+id+"/notes", nil).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	app.Do(t, bob, http.MethodPost, "/api/v1/tasks/"+id+"/notes", map[string]any{"content": "x"}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
	app.Do(t, bob, http.MethodPost, "/api/v1/notes", map[string]any{"content": "x", "task_id": id}).ExpectError(t, http.StatusNotFound, "TASK_NOT_FOUND")
}

func TestVoiceNotesWithoutTheAIModuleSayWhyTheyAreUnavailable(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notes.Module))
	alice := app.SignIn(t, "alice@example.com")
	voice := map[string]any{"voice_url": "https://cdn.example.com/a.webm", "voice_duration_seconds": 42}
	app.Do(t, alice, http.MethodPost, "/api/v1/notes", voice).ExpectError(t, http.StatusForbidden, "TIER_REQUIRED")
	if err := app.DB.Gorm.Exec("UPDATE users SET tier = 'pro' WHERE id = ?", alice.ID).Error; err != nil {
		t.Fatal(err)
	}
	res := app.Do(t, alice, http.MethodPost, "/api/v1/notes", voice).ExpectError(t, http.StatusServiceUnavailable, "TRANSCRIPTION_SERVICE_UNAVAILABLE")
	if !strings.Contains(string(res.Body), "transcription") {
		t.Fatalf("message does not say why: %s", res.Body)
	}
	app.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"voice_duration_seconds": 30, "content": "x"}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
	if n := app.Count(t, "notes", ""); n != 0 {
		t.Fatalf("a refused voice note was stored (%d)", n)
	}
	// Conversion is the assistant's: without the ai module the route is absent.
	n := addNote(t, app, alice, map[string]any{"content": "call mom tomorrow"})
	app.Do(t, alice, http.MethodPost, "/api/v1/notes/"+n["id"].(string)+"/convert", map[string]any{}).
		ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}
