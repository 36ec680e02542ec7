package adversarial

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/perpetuaflow/api/test/testkit"
)

// instances is two --role=api processes on one PostgreSQL database, as
// deployed behind a load balancer.
type instances struct {
	a, b *cluster
}

func startInstances(t *testing.T, env ...string) instances {
	t.Helper()
	if !testkit.Postgres() {
		t.Skip("several API processes share PostgreSQL; the embedded SQLite serves one process")
	}
	a := startCluster(t) // migrates, starts an API and a worker
	b := &cluster{t: t, bin: a.bin, client: a.client}
	port := testkit.FreePort(t)
	b.api = "http://127.0.0.1:" + port
	b.env = append(append(append([]string{}, a.env...), env...), "PORT="+port, "OPS_PORT="+testkit.FreePort(t))
	b.apiProc = testkit.Run(t, b.bin, b.env, "--role=api")
	testkit.WaitReady(t, b.api, b.apiProc)
	if len(env) > 0 {
		a.apiProc.Stop(t)
		a.env = append(a.env, env...)
		a.startAPI()
	}
	return instances{a: a, b: b}
}

// TestTwoProcessesShareTheRateLimit: requests of one user spread over two
// API processes, all at once: together they are allowed at most the budget,
// and at least the budget less one lease (a twentieth of it) that the other
// process may hold unspent.
func TestTwoProcessesShareTheRateLimit(t *testing.T) {
	const budget, lease = 100, 5
	in := startInstances(t, "RATE_LIMIT_GENERAL="+strconv.Itoa(budget))
	alice := in.a.signIn("alice@example.com")

	var mu sync.Mutex
	allowed := map[string]int{} // by window (X-RateLimit-Reset)
	refused := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 32 {
		c := in.a
		if i%2 == 1 {
			c = in.b
		}
		wg.Go(func() {
			<-start
			for range 10 {
				res, err := c.call(alice, http.MethodGet, "/api/v1/tasks?limit=1", nil)
				if err != nil {
					t.Error(err)
					return
				}
				window := res.Header.Get("X-RateLimit-Reset")
				mu.Lock()
				switch res.Status {
				case http.StatusOK:
					allowed[window]++
				case http.StatusTooManyRequests:
					refused[window]++
				default:
					t.Errorf("status %d: %s", res.Status, res.Body)
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for window, n := range allowed {
		if n > budget {
			t.Errorf("window %s: %d requests allowed, budget %d", window, n, budget)
		}
		if refused[window] > 0 && n < budget-(lease-1) {
			t.Errorf("window %s: refused after %d requests, budget %d less one lease is %d", window, n, budget, budget-(lease-1))
		}
	}
	if len(refused) == 0 {
		t.Fatalf("320 requests, none refused: %v", allowed)
	}
	t.Logf("allowed %v, refused %v", allowed, refused)
}

// TestSessionRevokedOnOneProcessIsRefusedByTheOther: the other process
// remembers a live session for auth.session_cache_ttl (2s by default), no
// longer.
func TestSessionRevokedOnOneProcessIsRefusedByTheOther(t *testing.T) {
	const ttl = 2 * time.Second
	in := startInstances(t, "PERPETUA_AUTH_REFRESH_REUSE_GRACE=0s")

	refusedWithin := func(u *testkit.User) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := start.Add(ttl + 3*time.Second)
		for time.Now().Before(deadline) {
			res, err := in.b.call(u, http.MethodGet, "/api/v1/users/me", nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status == http.StatusUnauthorized {
				return time.Since(start)
			}
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			time.Sleep(20 * time.Millisecond) // polling the other process
		}
		t.Fatalf("the other process still accepts the revoked session after %s", ttl+3*time.Second)
		return 0
	}

	// Logout.
	alice := in.a.signIn("alice@example.com")
	in.b.must(alice, http.MethodGet, "/api/v1/users/me", nil, http.StatusOK) // b remembers the session
	in.a.must(alice, http.MethodPost, "/api/v1/auth/logout", nil, http.StatusOK)
	in.a.must(alice, http.MethodGet, "/api/v1/users/me", nil, http.StatusUnauthorized) // at once where it ended
	if took := refusedWithin(alice); took > ttl+500*time.Millisecond {
		t.Errorf("logout: refused by the other process after %s, documented %s", took, ttl)
	}

	// Refresh-token reuse revokes the family.
	bob := in.a.signIn("bob@example.com")
	var refresh struct {
		RefreshToken string `json:"refresh_token"`
	}
	first := in.a.must(nil, http.MethodPost, "/api/v1/auth/dev/login", map[string]any{"email": "carol@example.com"}, http.StatusOK)
	first.Decode(t, &refresh)
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	in.a.must(nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": refresh.RefreshToken}, http.StatusOK).Decode(t, &pair)
	carol := &testkit.User{AccessToken: pair.AccessToken}
	in.b.must(carol, http.MethodGet, "/api/v1/users/me", nil, http.StatusOK)
	in.a.must(nil, http.MethodPost, "/api/v1/auth/refresh", map[string]any{"refresh_token": refresh.RefreshToken}, http.StatusUnauthorized)
	if took := refusedWithin(carol); took > ttl+500*time.Millisecond {
		t.Errorf("refresh reuse: refused by the other process after %s, documented %s", took, ttl)
	}
	// Other sessions live on.
	in.b.must(bob, http.MethodGet, "/api/v1/users/me", nil, http.StatusOK)
}
