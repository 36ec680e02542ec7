package notifications_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/modules/notifications"
	"github.com/perpetuaflow/api/test/testkit"
)

func seed(t *testing.T, app *testkit.App, u *testkit.User, n int) {
	t.Helper()
	for i := range n {
		at := app.Clock.Now().Add(time.Duration(i) * time.Second)
		err := app.DB.Gorm.Exec(`INSERT INTO notifications (id, user_id, type, title, message, read, created_at, updated_at)
			VALUES (?, ?, 'system', ?, 'm', ?, ?, ?)`, uuid.New(), u.ID, "n"+string(rune('a'+i)), false, at, at).Error
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestNotificationList(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	bob := app.SignIn(t, "bob@example.com")
	seed(t, app, alice, 3)
	seed(t, app, bob, 1)

	list := app.Do(t, alice, http.MethodGet, "/api/v1/notifications", nil).Expect(t, http.StatusOK).List(t)
	if len(list) != 3 || list[0]["title"] != "nc" || list[0]["read"] != false {
		t.Fatalf("list (newest first): %v", list)
	}
	if _, ok := list[0]["task_id"]; !ok {
		t.Fatal("task_id must be present (null)")
	}
	id := list[0]["id"].(string)
	// The client marks read with PATCH and no body.
	read := app.Do(t, alice, http.MethodPatch, "/api/v1/notifications/"+id+"/read", nil).Expect(t, http.StatusOK).Data(t)
	if read["read"] != true {
		t.Fatalf("read: %v", read)
	}
	app.Do(t, alice, http.MethodPatch, "/api/v1/notifications/"+id+"/read", nil).Expect(t, http.StatusOK)
	if unread := app.Do(t, alice, http.MethodGet, "/api/v1/notifications?unread_only=true", nil).List(t); len(unread) != 2 {
		t.Fatalf("unread_only: %v", unread)
	}
	var page struct {
		Data       []any `json:"data"`
		Pagination struct {
			Total   int64 `json:"total"`
			HasMore bool  `json:"has_more"`
		} `json:"pagination"`
	}
	app.Do(t, alice, http.MethodGet, "/api/v1/notifications?limit=2", nil).Decode(t, &page)
	if len(page.Data) != 2 || page.Pagination.Total != 3 || !page.Pagination.HasMore {
		t.Fatalf("page: %+v", page)
	}

	app.Do(t, bob, http.MethodPatch, "/api/v1/notifications/"+id+"/read", nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
	app.Do(t, bob, http.MethodDelete, "/api/v1/notifications/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")

	all := app.Do(t, alice, http.MethodPost, "/api/v1/notifications/read-all", nil).Expect(t, http.StatusOK).Data(t)
	if all["updated"] != float64(2) {
		t.Fatalf("read-all: %v", all)
	}
	if n := app.Count(t, "notifications", "user_id = ? AND read = ?", bob.ID, false); n != 1 {
		t.Fatal("read-all touched another user")
	}
	del := app.Do(t, alice, http.MethodDelete, "/api/v1/notifications/"+id, nil).Expect(t, http.StatusOK).Data(t)
	if del["deleted"] != true || del["id"] != id {
		t.Fatalf("delete: %v", del)
	}
	app.Do(t, alice, http.MethodDelete, "/api/v1/notifications/"+id, nil).ExpectError(t, http.StatusNotFound, "NOT_FOUND")
}

func browserKeys(t *testing.T) (string, string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(secret)
}

func TestPushSubscriptions(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notifications.Module))
	alice := app.SignIn(t, "alice@example.com")
	key := app.Do(t, alice, http.MethodGet, "/api/v1/notifications/vapid-public-key", nil).Expect(t, http.StatusOK).Data(t)
	raw, err := base64.RawURLEncoding.DecodeString(key["public_key"].(string))
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("VAPID public key: %v", key)
	}
	again := app.Do(t, alice, http.MethodGet, "/api/v1/notifications/vapid-public-key", nil).Data(t)
	if again["public_key"] != key["public_key"] {
		t.Fatal("the VAPID key changed between calls")
	}

	p256, secret := browserKeys(t)
	endpoint := "https://fcm.googleapis.com/fcm/send/abc123"
	sub := app.Do(t, alice, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": endpoint, "p256dh_key": p256, "auth_key": secret}).Expect(t, http.StatusCreated).Data(t)
	if sub["endpoint"] != endpoint || sub["active"] != true {
		t.Fatalf("subscription: %v", sub)
	}
	// Alice's browser renewing its keys updates her row.
	p2, s2 := browserKeys(t)
	app.Do(t, alice, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": endpoint, "p256dh_key": p2, "auth_key": s2}).Expect(t, http.StatusCreated)
	count := func(want int64, where string, args ...any) {
		t.Helper()
		if n := app.Count(t, "push_subscriptions", where, args...); n != want {
			t.Fatalf("push subscriptions where %q: %d, want %d", where, n, want)
		}
	}
	count(1, "endpoint = ? AND user_id = ? AND p256dh_key = ?", endpoint, alice.ID, p2)
	count(1, "")

	// Another user naming the same endpoint with other keys does not take
	// Alice's pushes: each keeps a row.
	bob := app.SignIn(t, "bob@example.com")
	p3, s3 := browserKeys(t)
	app.Do(t, bob, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": endpoint, "p256dh_key": p3, "auth_key": s3}).Expect(t, http.StatusCreated)
	count(1, "endpoint = ? AND user_id = ? AND p256dh_key = ?", endpoint, alice.ID, p2)
	count(1, "endpoint = ? AND user_id = ?", endpoint, bob.ID)

	// Carol signs in on Alice's browser: the same endpoint with the same keys
	// moves to her.
	carol := app.SignIn(t, "carol@example.com")
	app.Do(t, carol, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": endpoint, "p256dh_key": p2, "auth_key": s2}).Expect(t, http.StatusCreated)
	count(0, "user_id = ?", alice.ID)
	count(1, "endpoint = ? AND user_id = ?", endpoint, carol.ID)
	count(2, "")

	for name, body := range map[string]map[string]any{
		"http endpoint": {"endpoint": "http://push.example.com/x", "p256dh_key": p256, "auth_key": secret},
		"short key":     {"endpoint": endpoint, "p256dh_key": "AAAA", "auth_key": secret},
		"bad auth":      {"endpoint": endpoint, "p256dh_key": p256, "auth_key": "!!"},
		"missing":       {"endpoint": endpoint},
	} {
		t.Run(name, func(t *testing.T) {
			app.Do(t, alice, http.MethodPost, "/api/v1/notifications/push-subscription", body).ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
		})
	}
	res := app.Do(t, bob, http.MethodDelete, "/api/v1/notifications/push-subscription", map[string]any{"endpoint": endpoint}).
		Expect(t, http.StatusOK).Data(t)
	if res["deleted"] != true {
		t.Fatalf("unsubscribe: %v", res)
	}
	count(0, "user_id = ?", bob.ID)
	count(1, "user_id = ?", carol.ID) // Bob's unsubscribe touches only his own row
	// The answer says what happened: Bob has nothing left to delete (Carol's
	// row of the endpoint is not his), and says nothing of Carol's row.
	second := app.Do(t, bob, http.MethodDelete, "/api/v1/notifications/push-subscription", map[string]any{"endpoint": endpoint}).
		Expect(t, http.StatusOK).Data(t)
	if second["deleted"] != false {
		t.Fatalf("a second unsubscribe: %v", second)
	}
	count(1, "user_id = ?", carol.ID)
	// An endpoint on a port push services do not use is refused.
	app.Do(t, alice, http.MethodPost, "/api/v1/notifications/push-subscription",
		map[string]any{"endpoint": "https://fcm.googleapis.com:8443/fcm/send/x", "p256dh_key": p256, "auth_key": secret}).
		ExpectError(t, http.StatusBadRequest, "VALIDATION_ERROR")
}

func TestWithoutVAPIDKeysInProductionPushIsOff(t *testing.T) {
	t.Parallel()
	app := testkit.Start(t, testkit.Modules(notifications.Module), testkit.WithConfig("environment", "production"), testkit.WithConfig("auth.dev_login_enabled", "false"))
	alice := app.SignIn(t, "alice@example.com")
	app.Do(t, alice, http.MethodGet, "/api/v1/notifications/vapid-public-key", nil).ExpectError(t, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
}
