package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/live"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/test/testkit"
)

const wait = 5 * time.Second

// open asks for a ticket and opens the user's stream with it.
func open(t *testing.T, a *testkit.App, u *testkit.User, headers map[string]string, query string) *testkit.SSE {
	t.Helper()
	ticket := a.Do(t, u, http.MethodPost, "/api/v1/events/ticket", nil).Expect(t, http.StatusOK).Data(t)
	if ticket["expires_in"] != float64(30) {
		t.Fatalf("ticket %v", ticket)
	}
	s := testkit.OpenSSE(t, a.URL+"/api/v1/events?ticket="+ticket["ticket"].(string)+query, headers)
	if s.Status != http.StatusOK {
		t.Fatalf("stream: status %d", s.Status)
	}
	return s
}

func data(t *testing.T, e testkit.SSEEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		t.Fatalf("event %+v: %v", e, err)
	}
	return m
}

// failOn rolls back any transaction that creates a task titled "boom".
func failOn() fx.Option {
	return fx.Provide(events.AsSubscriber(func() events.Subscription {
		return events.On("fail boom", func(_ context.Context, _ *gorm.DB, e tasks.TaskCreated) error {
			if e.Title == "boom" {
				return errors.New("boom")
			}
			return nil
		})
	}))
}

// TestChangesReachTheStreamAsTheyCommit: a task's creation, change and
// deletion, a subtask and a note arrive in order with ids, each in the
// shape its REST route answers; a rolled-back change never arrives;
// another user's changes never do.
func TestChangesReachTheStreamAsTheyCommit(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t, testkit.WithFx(failOn()))
	alice := a.SignIn(t, "alice@example.com")
	bob := a.SignIn(t, "bob@example.com")
	s := open(t, a, alice, nil, "")
	other := open(t, a, bob, nil, "")

	task := a.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "Write the report"}).
		Expect(t, http.StatusCreated).Data(t)
	id := task["id"].(string)
	e := s.Next(t, wait)
	if e.Event != "task.created" || e.ID == "" {
		t.Fatalf("first event %+v", e)
	}
	got := data(t, e)
	rest := a.Do(t, alice, http.MethodGet, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK).Data(t)
	for _, k := range []string{"id", "title", "version", "priority", "subtask_count", "created_at", "user_id"} {
		if got[k] != rest[k] && k != "subtasks" {
			t.Errorf("%s: stream %v, REST %v", k, got[k], rest[k])
		}
	}

	// A change that rolls back is never sent: the next event is the next
	// change that committed.
	a.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "boom"}).Expect(t, http.StatusInternalServerError)
	a.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "Write the final report", "version": 1}).
		Expect(t, http.StatusOK)
	e2 := s.Next(t, wait)
	if e2.Event != "task.updated" || data(t, e2)["title"] != "Write the final report" || e2.ID <= e.ID {
		t.Fatalf("after the rollback: %+v", e2)
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/subtasks", map[string]any{"title": "outline"}).Expect(t, http.StatusCreated)
	seen := map[string]bool{}
	for range 2 { // the subtask, and the task whose count changed (either order within the commit)
		seen[s.Next(t, wait).Event] = true
	}
	if !seen["subtask.created"] || !seen["task.updated"] {
		t.Fatalf("after a subtask: %v", seen)
	}
	a.Do(t, alice, http.MethodDelete, "/api/v1/tasks/"+id, nil).Expect(t, http.StatusOK)
	deleted := map[string]bool{}
	for range 2 {
		d := s.Next(t, wait)
		deleted[d.Event] = true
		if len(data(t, d)) != 1 || data(t, d)["id"] == nil {
			t.Fatalf("a deletion's data: %s", d.Data)
		}
	}
	if !deleted["task.deleted"] || !deleted["subtask.deleted"] {
		t.Fatalf("deletions %v", deleted)
	}

	// Bob's stream saw nothing of Alice's: its first event is his own.
	a.Do(t, bob, http.MethodPost, "/api/v1/notes", map[string]any{"content": "bob's"}).Expect(t, http.StatusCreated)
	if b := other.Next(t, wait); b.Event != "note.created" || data(t, b)["content"] != "bob's" {
		t.Fatalf("Bob's first event %+v", b)
	}
}

// TestATicketOpensOneStreamOnce: a ticket works once and not after its
// time; none, or a made-up one, is a 401.
func TestATicketOpensOneStreamOnce(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t)
	alice := a.SignIn(t, "alice@example.com")
	ticket := a.Do(t, alice, http.MethodPost, "/api/v1/events/ticket", nil).Expect(t, http.StatusOK).Data(t)["ticket"].(string)
	first := testkit.OpenSSE(t, a.URL+"/api/v1/events?ticket="+ticket, nil)
	if first.Status != http.StatusOK {
		t.Fatalf("first use: %d", first.Status)
	}
	a.Do(t, nil, http.MethodGet, "/api/v1/events?ticket="+ticket, nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	a.Do(t, nil, http.MethodGet, "/api/v1/events?ticket=made-up", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	a.Do(t, nil, http.MethodGet, "/api/v1/events", nil).Expect(t, http.StatusBadRequest)
	late := a.Do(t, alice, http.MethodPost, "/api/v1/events/ticket", nil).Expect(t, http.StatusOK).Data(t)["ticket"].(string)
	a.Clock.Advance(31 * time.Second)
	a.Do(t, nil, http.MethodGet, "/api/v1/events?ticket="+late, nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
	a.Do(t, nil, http.MethodPost, "/api/v1/events/ticket", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestAReconnectReplaysWhatWasMissed: with Last-Event-ID the stream sends
// exactly the changes after it, in order, then goes on live; after the
// retained window it says reset.
func TestAReconnectReplaysWhatWasMissed(t *testing.T) {
	t.Parallel()
	var svc *live.Service
	a := testkit.Start(t, testkit.WithFx(fx.Populate(&svc)))
	alice := a.SignIn(t, "alice@example.com")
	s := open(t, a, alice, nil, "")
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "one"}).Expect(t, http.StatusCreated)
	last := s.Next(t, wait)
	s.Close()
	var missed []string
	for _, c := range []string{"two", "three", "four"} {
		missed = append(missed, a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": c}).
			Expect(t, http.StatusCreated).Data(t)["id"].(string))
	}
	back := open(t, a, alice, map[string]string{"Last-Event-ID": last.ID}, "")
	prev := last.ID
	for i, want := range missed {
		e := back.Next(t, wait)
		if e.Event != "note.created" || data(t, e)["id"] != want || len(e.ID) < len(prev) || (len(e.ID) == len(prev) && e.ID <= prev) {
			t.Fatalf("replayed event %d: %+v (want note %s after id %s)", i, e, want, prev)
		}
		prev = e.ID
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "live"}).Expect(t, http.StatusCreated)
	if e := back.Next(t, wait); data(t, e)["content"] != "live" {
		t.Fatalf("after the replay: %+v", e)
	}
	// ?since= is the same as the header.
	again := open(t, a, alice, nil, "&since="+prev)
	if e := again.Next(t, wait); data(t, e)["content"] != "live" {
		t.Fatalf("since: %+v", e)
	}

	// A day later the changes are gone: resuming says reset, then goes on.
	a.Clock.Advance(25 * time.Hour)
	if err := svc.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	alice = a.SignIn(t, "alice@example.com")
	old := open(t, a, alice, map[string]string{"Last-Event-ID": last.ID}, "")
	if e := old.Next(t, wait); e.Event != "reset" {
		t.Fatalf("resuming after the window: %+v", e)
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "after reset"}).Expect(t, http.StatusCreated)
	if e := old.Next(t, wait); data(t, e)["content"] != "after reset" {
		t.Fatalf("after reset: %+v", e)
	}
}

// TestTheOldestStreamIsClosedBeyondTheLimit: a user's sixth stream on an
// instance closes the first.
func TestTheOldestStreamIsClosedBeyondTheLimit(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t, testkit.WithConfig("live.max_streams_per_user", 2))
	alice := a.SignIn(t, "alice@example.com")
	first := open(t, a, alice, nil, "")
	second := open(t, a, alice, nil, "")
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "sync"}).Expect(t, http.StatusCreated)
	first.Next(t, wait) // both registered
	second.Next(t, wait)
	third := open(t, a, alice, nil, "")
	select {
	case <-first.Done:
	case <-time.After(wait):
		t.Fatal("the oldest stream was not closed")
	}
	a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": "still"}).Expect(t, http.StatusCreated)
	for _, s := range []*testkit.SSE{second, third} {
		if e := s.Next(t, wait); data(t, e)["content"] != "still" {
			t.Fatalf("a newer stream: %+v", e)
		}
	}
	if !strings.Contains(string(a.Do(t, nil, http.MethodGet, "/api/v1/events?ticket=x", nil).Body), "ticket") {
		t.Fatal("a bad ticket's error says nothing of tickets")
	}
}

// TestAchievementsStatsNotificationsAndCreditsAreStreamed: completing five
// tasks unlocks an achievement; the stream carries the stats, the
// achievement and its notification; an AI-free credit change (the day's
// grant on first read) arrives as credits.updated.
func TestAchievementsStatsNotificationsAndCreditsAreStreamed(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t)
	alice := a.SignIn(t, "alice@example.com")
	s := open(t, a, alice, nil, "")
	for i := range 5 {
		id := a.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "t" + string(rune('a'+i))}).
			Expect(t, http.StatusCreated).Data(t)["id"].(string)
		a.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK)
	}
	seen := map[string]map[string]any{}
	testkit.Eventually(t, wait, "the achievement, its notification and the stats", func() bool {
		select {
		case e := <-s.Events:
			if e.Event != "" {
				seen[e.Event] = data(t, e)
			}
		case <-time.After(50 * time.Millisecond):
		}
		return seen["achievement.created"] != nil && seen["notification.created"] != nil && seen["stats.updated"] != nil
	})
	if seen["achievement.created"]["id"] != "tasks_5" || seen["stats.updated"]["lifetime_tasks_completed"] != float64(5) {
		t.Fatalf("achievement %v, stats %v", seen["achievement.created"], seen["stats.updated"])
	}
	if seen["notification.created"]["type"] != "achievement" {
		t.Fatalf("notification %v", seen["notification.created"])
	}
	a.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK)
	a.Clock.Advance(24 * time.Hour)
	alice = a.SignIn(t, "alice@example.com")
	balance := a.Do(t, alice, http.MethodGet, "/api/v1/credits/balance", nil).Expect(t, http.StatusOK).Data(t)
	testkit.Eventually(t, wait, "credits.updated", func() bool {
		select {
		case e := <-s.Events:
			if e.Event == "credits.updated" {
				seen[e.Event] = data(t, e)
			}
		case <-time.After(50 * time.Millisecond):
		}
		return seen["credits.updated"] != nil && seen["credits.updated"]["total"] == balance["total"]
	})
}

// TestStreamsEndCleanlyOnShutdown: stopping the server ends open streams
// (their responses finish) instead of holding the shutdown.
func TestStreamsEndCleanlyOnShutdown(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t)
	alice := a.SignIn(t, "alice@example.com")
	s := open(t, a, alice, nil, "")
	began := time.Now()
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done:
	case <-time.After(wait):
		t.Fatal("the stream outlived the server")
	}
	t.Logf("stopped with a stream open in %s", time.Since(began).Round(time.Millisecond))
}

// TestASlowClientIsDisconnectedAndBlocksNobody: a client that sends its
// request and then reads nothing is disconnected once a write has waited
// write_timeout; meanwhile another stream of the same user receives every
// change at once.
func TestASlowClientIsDisconnectedAndBlocksNobody(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t, testkit.WithConfig("live.write_timeout", "300ms"), testkit.WithConfig("live.poll_interval", "20ms"),
		testkit.WithConfig("limits.free.max_notes", 100000), testkit.WithConfig("limits.free.max_description_length", 5000))
	alice := a.SignIn(t, "alice@example.com")
	ticket := a.Do(t, alice, http.MethodPost, "/api/v1/events/ticket", nil).Expect(t, http.StatusOK).Data(t)["ticket"].(string)
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /api/v1/events?ticket=%s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", ticket)
	fast := open(t, a, alice, nil, "")
	body := strings.Repeat("a long note that fills the socket buffers. ", 50)
	closed := func() bool {
		res, err := http.Get(a.OpsURL + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return strings.Contains(string(b), `perpetua_live_streams_closed_total{reason="client"} 1`) ||
			strings.Contains(string(b), `perpetua_live_streams_closed_total{reason="error"} 1`)
	}
	sent := 0
	for sent < 5000 && !closed() {
		for range 50 {
			a.Do(t, alice, http.MethodPost, "/api/v1/notes", map[string]any{"content": body[:1990]}).Expect(t, http.StatusCreated)
			sent++
		}
		for range 50 {
			if e := fast.Next(t, wait); e.Event != "note.created" {
				t.Fatalf("the reading stream: %+v", e)
			}
		}
	}
	if !closed() {
		t.Fatalf("after %d notes (%d kB of events) the client that reads nothing is still connected", sent, sent*2)
	}
	t.Logf("the client that read nothing was disconnected after %d events (about %d kB); the other stream got every one", sent, sent*2)
}

// TestAStreamEndsWithItsSignIn: a stream belongs to the sign-in that asked
// for its ticket: after logout, or the account's deletion, it ends at the
// next heartbeat; another sign-in's stream goes on.
func TestAStreamEndsWithItsSignIn(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t, testkit.WithConfig("live.heartbeat", "1s"))
	laptop := a.SignIn(t, "alice@example.com")
	phone := a.SignIn(t, "alice@example.com")
	onLaptop := open(t, a, laptop, nil, "")
	onPhone := open(t, a, phone, nil, "")
	a.Do(t, laptop, http.MethodPost, "/api/v1/auth/logout", map[string]any{"refresh_token": laptop.RefreshToken}).Expect(t, http.StatusOK)
	select {
	case <-onLaptop.Done:
	case <-time.After(wait):
		t.Fatal("the signed-out laptop's stream went on")
	}
	a.Do(t, phone, http.MethodPost, "/api/v1/notes", map[string]any{"content": "still here"}).Expect(t, http.StatusCreated)
	if e := onPhone.Next(t, wait); data(t, e)["content"] != "still here" {
		t.Fatalf("the phone's stream: %+v", e)
	}
	a.Do(t, phone, http.MethodDelete, "/api/v1/users/me", map[string]any{"confirm": "alice@example.com"}).Expect(t, http.StatusAccepted)
	select {
	case <-onPhone.Done:
	case <-time.After(wait):
		t.Fatal("a closed account's stream went on")
	}
}

// TestATicketIsSpentOnceUnderConcurrency: ten requests with one ticket,
// released together: one stream opens, nine are refused (the ticket is
// spent by a compare-and-set).
func TestATicketIsSpentOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	a := testkit.Start(t)
	alice := a.SignIn(t, "alice@example.com")
	ticket := a.Do(t, alice, http.MethodPost, "/api/v1/events/ticket", nil).Expect(t, http.StatusOK).Data(t)["ticket"].(string)
	start := make(chan struct{})
	statuses := make(chan int, 10)
	for range 10 {
		go func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/api/v1/events?ticket="+ticket, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close() // a stream that opened: leave at once
			statuses <- res.StatusCode
		}()
	}
	close(start)
	got := map[int]int{}
	for range 10 {
		got[<-statuses]++
	}
	if got[http.StatusOK] != 1 || got[http.StatusUnauthorized] != 9 {
		t.Fatalf("statuses %v: want one 200 and nine 401", got)
	}
}
