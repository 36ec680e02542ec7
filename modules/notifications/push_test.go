package notifications_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/gamification"
	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/modules/tasks"
	"github.com/perpetuaflow/api/test/testkit"
)

// startPush composes reminders and notifications with a local push service
// that decrypts what it receives.
func startPush(t *testing.T, opts ...testkit.Option) (*testkit.App, *testkit.PushService) {
	t.Helper()
	ps := testkit.NewPushService(t)
	base := []testkit.Option{testkit.Modules(tasks.Module, notifications.Module),
		testkit.WithConfig("push.allow_private_endpoints", true),
		testkit.WithConfig("push.retry_backoff", "10ms"),
		testkit.WithFx(fx.Decorate(func(notifications.PushClient) notifications.PushClient {
			return notifications.PushClient{Client: ps.Client()}
		}))}
	return testkit.Start(t, append(base, opts...)...), ps
}

func subscribe(t *testing.T, app *testkit.App, u *testkit.User, e *testkit.PushEndpoint) {
	t.Helper()
	app.Do(t, u, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": e.Endpoint, "p256dh_key": e.P256dh, "auth_key": e.Auth}).Expect(t, http.StatusCreated)
}

// remind makes a push reminder that is due now and waits for the worker to
// fire it.
func remind(t *testing.T, app *testkit.App, u *testkit.User, title, method string) string {
	t.Helper()
	due := app.Clock.Now().Add(10 * time.Minute).Format(time.RFC3339)
	task := app.Do(t, u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": title, "due_date": due}).
		Expect(t, http.StatusCreated).Data(t)["id"].(string)
	r := app.Do(t, u, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": task, "type": "before",
		"offset_minutes": -60, "method": method}).Expect(t, http.StatusCreated).Data(t)
	testkit.Eventually(t, 10*time.Second, "the reminder to fire", func() bool {
		return app.Count(t, "reminders", "id = ? AND fired = ?", r["id"], true) == 1
	})
	return task
}

func TestPushRemindersReachTheBrowserEncrypted(t *testing.T) {
	t.Parallel()
	app, ps := startPush(t)
	alice := app.SignIn(t, "alice@example.com")
	ps.VAPIDKey = app.Do(t, alice, http.MethodGet, "/api/v1/notifications/vapid-public-key", nil).Expect(t, http.StatusOK).Data(t)["public_key"].(string)
	laptop, phone := ps.Subscribe(t, http.StatusCreated), ps.Subscribe(t, http.StatusCreated)
	subscribe(t, app, alice, laptop)
	subscribe(t, app, alice, phone)

	task := remind(t, app, alice, "Call the bank", "push")
	testkit.Eventually(t, 10*time.Second, "both pushes", func() bool {
		return len(ps.Messages(laptop)) == 1 && len(ps.Messages(phone)) == 1
	})
	var got struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(ps.Messages(laptop)[0]), &got); err != nil || got.Type != "reminder" ||
		got.Title != "Call the bank" || got.TaskID != task {
		t.Fatalf("payload %q: %v", ps.Messages(laptop)[0], err)
	}
	h := ps.Headers(laptop)[0]
	if h.Get("Urgency") != "high" || len(h.Get("Topic")) != 32 || h.Get("TTL") != "86400" {
		t.Fatalf("headers %v", h)
	}
	if f := ps.Failures(); len(f) != 0 {
		t.Fatalf("the push service refused: %v", f)
	}
	testkit.Eventually(t, 10*time.Second, "the jobs to complete", func() bool {
		return app.Count(t, "river_job", "kind = 'push_deliver' AND state = 'completed'") == 2
	})

	// An in-app reminder does not push.
	remind(t, app, alice, "Water the plants", "in_app")
	if app.Count(t, "river_job", "kind = 'push_deliver'") != 2 {
		t.Fatal("an in_app reminder was pushed")
	}
}

func TestAGoneSubscriptionIsDeactivatedAndRejectionsAreNotRetried(t *testing.T) {
	t.Parallel()
	app, ps := startPush(t)
	alice := app.SignIn(t, "alice@example.com")
	gone, refused, busy := ps.Subscribe(t, http.StatusGone), ps.Subscribe(t, http.StatusBadRequest), ps.Subscribe(t, http.StatusServiceUnavailable)
	for _, e := range []*testkit.PushEndpoint{gone, refused, busy} {
		subscribe(t, app, alice, e)
	}
	remind(t, app, alice, "Pay rent", "push")
	testkit.Eventually(t, 15*time.Second, "the deliveries to end", func() bool {
		return app.Count(t, "river_job", "kind = 'push_deliver' AND state IN ('completed', 'discarded')") == 3
	})
	if app.Count(t, "push_subscriptions", "endpoint = ? AND active = ?", gone.Endpoint, false) != 1 {
		t.Fatal("a 410 must deactivate the subscription")
	}
	if app.Count(t, "push_subscriptions", "active = ?", true) != 2 {
		t.Fatal("other answers must not deactivate")
	}
	if n := len(ps.Messages(refused)); n != 1 {
		t.Fatalf("a 400 was tried %d times, want once", n)
	}
	if n := len(ps.Messages(busy)); n != 5 {
		t.Fatalf("a 503 was tried %d times, want max_attempts (5)", n)
	}
	// The deactivated subscription gets nothing more.
	remind(t, app, alice, "Pay rent again", "push")
	testkit.Eventually(t, 15*time.Second, "the next deliveries", func() bool {
		return app.Count(t, "river_job", "kind = 'push_deliver' AND state IN ('completed', 'discarded')") == 5
	})
	if n := len(ps.Messages(gone)); n != 1 {
		t.Fatalf("a gone subscription got %d pushes", n)
	}
}

func TestPushEndpointsMustBePublicHosts(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	p256, secret := browserKeys(t)
	for _, endpoint := range []string{"https://127.0.0.1:8443/push", "https://localhost/push", "https://169.254.169.254/x",
		"https://10.0.0.3/push", "https://[::1]/push", "https://metadata.internal/x"} {
		res := app.Do(t, alice, http.MethodPost, "/api/v1/notifications/push-subscription",
			map[string]any{"endpoint": endpoint, "p256dh_key": p256, "auth_key": secret}).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
		if !strings.Contains(string(res.Body), "endpoint") {
			t.Fatalf("%s: %s", endpoint, res.Body)
		}
	}
}

func TestAchievementsArePushedToo(t *testing.T) {
	t.Parallel()
	app, ps := startPush(t, testkit.Modules(gamification.Module))
	alice := app.SignIn(t, "alice@example.com")
	phone := ps.Subscribe(t, http.StatusCreated)
	subscribe(t, app, alice, phone)
	for range 5 {
		id := app.Do(t, alice, http.MethodPost, "/api/v1/tasks", map[string]any{"title": "step"}).Expect(t, http.StatusCreated).Data(t)["id"].(string)
		app.Do(t, alice, http.MethodPost, "/api/v1/tasks/"+id+"/complete", nil).Expect(t, http.StatusOK)
	}
	testkit.Eventually(t, 10*time.Second, "the achievement push", func() bool { return len(ps.Messages(phone)) == 1 })
	if m := ps.Messages(phone)[0]; !strings.Contains(m, `"type":"achievement"`) || !strings.Contains(m, "Task Starter") {
		t.Fatalf("payload %s", m)
	}
}
