package tasks

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/auth"
)

// TestARestoredSnapshotIsCurrentAgainAndOnlyItsComingRemindersRing: the
// pure parts of a task's recovery.
func TestARestoredSnapshotIsCurrentAgainAndOnlyItsComingRemindersRing(t *testing.T) {
	then := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := then.Add(48 * time.Hour)
	owner, restorer := uuid.New(), uuid.New()
	snap := taskSnapshot{
		Task:     Task{ID: uuid.New(), UserID: owner, Title: "Pay rent", Version: 7, CreatedAt: then, UpdatedAt: then},
		Subtasks: []Subtask{{ID: uuid.New(), UserID: owner, UpdatedAt: then}},
		Reminders: []Reminder{
			{ID: uuid.New(), UserID: owner, ScheduledAt: now.Add(-time.Hour)},             // passed while deleted
			{ID: uuid.New(), UserID: owner, ScheduledAt: now.Add(time.Hour)},              // still to come
			{ID: uuid.New(), UserID: owner, ScheduledAt: now.Add(time.Hour), Fired: true}, // fired before
			{ID: uuid.New(), UserID: owner, ScheduledAt: now},                             // due this instant: passed
		},
	}
	out := restored(snap, auth.Principal{UserID: restorer}, now)
	if out.Task.ID != snap.Task.ID || out.Task.Version != 1 || out.Task.UserID != restorer ||
		!out.Task.CreatedAt.Equal(then) || !out.Task.UpdatedAt.Equal(now) {
		t.Fatalf("task %+v", out.Task)
	}
	if out.Subtasks[0].UserID != restorer || out.Reminders[0].UserID != restorer || !out.Reminders[1].UpdatedAt.Equal(now) {
		t.Fatal("the children keep their old owner or time")
	}
	if snap.Subtasks[0].UserID != owner || snap.Reminders[0].UserID != owner {
		t.Fatal("restoring changed the snapshot it was given")
	}
	due := stillDue(out.Reminders, now)
	if len(due) != 1 || due[0].ID != snap.Reminders[1].ID {
		t.Fatalf("still due: %+v", due)
	}
}
