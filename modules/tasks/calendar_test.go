package tasks_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"

	"github.com/perpetuaflow/api/test/testkit"
)

// fetchFeed GETs a feed URL (no bearer: calendar apps have none).
func fetchFeed(t *testing.T, app *testkit.App, url string, etag string) *testkit.Response {
	t.Helper()
	path := url[strings.Index(url, "/calendar/"):]
	r := testkit.Request{Method: http.MethodGet, Path: path}
	if etag != "" {
		r.Headers = map[string]string{"If-None-Match": etag}
	}
	return app.Send(t, nil, r)
}

func parseFeed(t *testing.T, body []byte) map[string]*ics.VEvent {
	t.Helper()
	cal, err := ics.ParseCalendar(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse feed: %v\n%s", err, body)
	}
	out := map[string]*ics.VEvent{}
	for _, ev := range cal.Events() {
		out[ev.Id()] = ev
	}
	return out
}

func prop(ev *ics.VEvent, p ics.ComponentProperty) string {
	if v := ev.GetProperty(p); v != nil {
		return v.Value
	}
	return ""
}

// TestTheCalendarFeedShowsDueTasks: the feed URL holds a secret; the feed
// lists the open, visible tasks with a due date as events with every field,
// a reminder as an alarm; a change shows in the next fetch (a new ETag,
// If-None-Match answered 304 otherwise); a new URL retires the old one,
// turning the feed off retires it too; malformed secrets are 404.
func TestTheCalendarFeedShowsDueTasks(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("server.public_url", "https://api.example.com/"))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	due := app.Clock.Now().Add(48 * time.Hour).Truncate(time.Second).UTC()
	task := createTask(t, app, alice, map[string]any{"title": "Dentist", "description": "Bring the card",
		"due_date": due.Format(time.RFC3339), "estimated_duration": 45, "priority": "high"})
	id := task["id"].(string)
	createTask(t, app, alice, map[string]any{"title": "No date"})
	done := createTask(t, app, alice, map[string]any{"title": "Done", "due_date": due.Format(time.RFC3339)})
	app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+done["id"].(string)+"/complete", map[string]any{}).Expect(t, http.StatusOK)
	createTask(t, app, bob, map[string]any{"title": "Bob's", "due_date": due.Format(time.RFC3339)})
	addReminder(t, app, alice, map[string]any{"task_id": id, "type": "before", "offset_minutes": 15})

	url := app.Do(t, alice, http.MethodPost, "/api/v1/calendar/feed", map[string]any{}).Expect(t, http.StatusOK).Data(t)["url"].(string)
	if !strings.HasPrefix(url, "https://api.example.com/calendar/") || !strings.HasSuffix(url, ".ics") || len(url) < 60 {
		t.Fatalf("url %q", url)
	}
	res := fetchFeed(t, app, url, "").Expect(t, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/calendar") {
		t.Fatalf("content type %q", ct)
	}
	events := parseFeed(t, res.Body)
	if len(events) != 1 {
		t.Fatalf("%d events, want the one open task with a due date: %s", len(events), res.Body)
	}
	ev := events[id+"@perpetuaflow"]
	if ev == nil {
		t.Fatalf("no event with the task's UID: %s", res.Body)
	}
	start, err := ev.GetStartAt()
	end, err2 := ev.GetEndAt()
	if err != nil || err2 != nil || !start.Equal(due) || !end.Equal(due.Add(45*time.Minute)) {
		t.Fatalf("start %v end %v (%v %v), want %v + 45m", start, end, err, err2, due)
	}
	for p, want := range map[ics.ComponentProperty]string{
		ics.ComponentPropertySummary:     "Dentist",
		ics.ComponentPropertyDescription: "Bring the card",
		ics.ComponentPropertyStatus:      "CONFIRMED",
		ics.ComponentPropertySequence:    "1",
		ics.ComponentPropertyPriority:    "1",
	} {
		if got := prop(ev, p); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	if prop(ev, ics.ComponentPropertyDtstamp) == "" || prop(ev, ics.ComponentPropertyLastModified) == "" {
		t.Errorf("no DTSTAMP or LAST-MODIFIED: %s", res.Body)
	}
	alarms := ev.Alarms()
	if len(alarms) != 1 || alarms[0].GetProperty(ics.ComponentPropertyTrigger).Value != due.Add(-15*time.Minute).Format("20060102T150405Z") {
		t.Fatalf("alarms: %s", res.Body)
	}

	etag := res.Header.Get("ETag")
	fetchFeed(t, app, url, etag).Expect(t, http.StatusNotModified)
	app.Do(t, alice, http.MethodPatch, "/api/v1/tasks/"+id, map[string]any{"title": "Dentist at 10"}).Expect(t, http.StatusOK)
	res = fetchFeed(t, app, url, etag).Expect(t, http.StatusOK)
	if res.Header.Get("ETag") == etag {
		t.Fatal("the ETag did not change with the task")
	}
	ev = parseFeed(t, res.Body)[id+"@perpetuaflow"]
	if prop(ev, ics.ComponentPropertySummary) != "Dentist at 10" || prop(ev, ics.ComponentPropertySequence) != "2" {
		t.Fatalf("after the change: %s", res.Body)
	}

	// Bob's feed is Bob's.
	bobURL := app.Do(t, bob, http.MethodPost, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK).Data(t)["url"].(string)
	if evs := parseFeed(t, fetchFeed(t, app, bobURL, "").Expect(t, http.StatusOK).Body); len(evs) != 1 || evs[id+"@perpetuaflow"] != nil {
		t.Fatalf("Bob's feed: %v", evs)
	}

	// A new URL retires the old one; turning the feed off retires it.
	newURL := app.Do(t, alice, http.MethodPost, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK).Data(t)["url"].(string)
	if newURL == url {
		t.Fatal("the URL did not change")
	}
	fetchFeed(t, app, url, "").ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	fetchFeed(t, app, newURL, "").Expect(t, http.StatusOK)
	if d := app.Do(t, alice, http.MethodDelete, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK).Data(t); d["deleted"] != true {
		t.Fatalf("delete: %v", d)
	}
	fetchFeed(t, app, newURL, "").ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	if d := app.Do(t, alice, http.MethodDelete, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK).Data(t); d["deleted"] != false {
		t.Fatalf("second delete: %v", d)
	}
	if n := app.Count(t, "calendar_feeds", "user_id = ?", alice.ID); n != 0 {
		t.Fatalf("%d feeds left", n)
	}
	for _, bad := range []string{"x", strings.Repeat("A", 43), "AAAA%00", strings.Repeat("a", 64)} {
		app.Do(t, nil, http.MethodGet, "/calendar/"+bad+".ics", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	}
	app.Do(t, nil, http.MethodPost, "/api/v1/calendar/feed", nil).ExpectError(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestACalendarFeedIsRateLimitedPerFeed: the general budget per feed, not
// per caller (calendar apps share addresses).
func TestACalendarFeedIsRateLimitedPerFeed(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.WithConfig("rate_limit.general_per_minute", 3))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	url := app.Do(t, alice, http.MethodPost, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK).Data(t)["url"].(string)
	bobURL := app.Do(t, bob, http.MethodPost, "/api/v1/calendar/feed", nil).Expect(t, http.StatusOK).Data(t)["url"].(string)
	for range 3 {
		fetchFeed(t, app, url, "").Expect(t, http.StatusOK)
	}
	fetchFeed(t, app, url, "").ExpectError(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
	fetchFeed(t, app, bobURL, "").Expect(t, http.StatusOK)
}
