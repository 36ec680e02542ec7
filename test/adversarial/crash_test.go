package adversarial

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/test/testkit"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// perpetua builds the binary once for the crash tests.
func perpetua(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		var cleanup func()
		binary, cleanup, buildErr = testkit.BuildBinary()
		_ = cleanup // the temporary directory goes with the test process's
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// cluster is the API and worker processes of one database, as deployed:
// on PostgreSQL `migrate`, then --role=api and --role=worker; on SQLite one
// --role=all process (then "the worker" is that process too).
type cluster struct {
	t       *testing.T
	bin     string
	env     []string
	api     string // base URL of the API
	apiProc *testkit.Proc
	worker  *testkit.Proc
	opsURL  string
	client  *http.Client
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: perpetua(t), client: &http.Client{Timeout: 10 * time.Second}}
	port := testkit.FreePort(t)
	c.api = "http://127.0.0.1:" + port
	c.env = []string{
		"DATABASE_URL=" + testkit.NewDatabase(t),
		"JWT_PRIVATE_KEY=" + testkit.PrivateKeyPEM(t),
		"PORT=" + port,
		"OPS_PORT=" + testkit.FreePort(t),
		"DATA_DIR=" + t.TempDir(),
		"ENVIRONMENT=development",
		"DEV_LOGIN_ENABLED=true",
		"LOG_LEVEL=error",
		"RATE_LIMIT_GENERAL=10000000",
		"RATE_LIMIT_AUTH=10000000",
		"PERPETUA_LIMITS_FREE_MAX_TASKS=100000",
		"PERPETUA_JOBS_POLL_INTERVAL=50ms",
		// A job left running by a killed worker is picked up again soon.
		"PERPETUA_JOBS_JOB_TIMEOUT=2s",
		"PERPETUA_JOBS_RESCUE_AFTER=3s",
	}
	if testkit.Postgres() {
		c.env = append(c.env, "PERPETUA_DATABASE_AUTO_MIGRATE=false")
		m := testkit.Run(t, c.bin, c.env, "migrate")
		if err := <-m.Done; err != nil {
			t.Fatalf("migrate: %v\n%s", err, m.Out.String())
		}
		c.startAPI()
		c.startWorker()
	} else {
		c.startAPI()
		c.worker = c.apiProc
	}
	return c
}

func (c *cluster) startAPI() {
	role := "--role=all"
	if testkit.Postgres() {
		role = "--role=api"
	}
	c.apiProc = testkit.Run(c.t, c.bin, c.env, role)
	testkit.WaitReady(c.t, c.api, c.apiProc)
	if !testkit.Postgres() {
		c.worker = c.apiProc
	}
}

func (c *cluster) startWorker() {
	if !testkit.Postgres() {
		c.startAPI()
		return
	}
	ops := testkit.FreePort(c.t)
	c.worker = testkit.Run(c.t, c.bin, append(append([]string{}, c.env...), "OPS_PORT="+ops), "--role=worker")
	testkit.WaitReady(c.t, "http://127.0.0.1:"+ops, c.worker)
}

func (c *cluster) call(u *testkit.User, method, path string, body any) (*testkit.Response, error) {
	r := testkit.Request{Method: method, Path: path, Body: body}
	if method != http.MethodGet {
		r.Headers = map[string]string{"Idempotency-Key": uuid.NewString()}
	}
	return testkit.Call(c.client, c.api, u, r)
}

func (c *cluster) must(u *testkit.User, method, path string, body any, status int) *testkit.Response {
	c.t.Helper()
	res, err := c.call(u, method, path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return res.Expect(c.t, status)
}

func (c *cluster) signIn(email string) *testkit.User {
	c.t.Helper()
	var pair struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID uuid.UUID `json:"id"`
		} `json:"user"`
	}
	c.must(nil, http.MethodPost, "/api/v1/auth/dev/login", map[string]any{"email": email}, http.StatusOK).Decode(c.t, &pair)
	return &testkit.User{ID: pair.User.ID, Email: email, AccessToken: pair.AccessToken}
}

func (c *cluster) total(u *testkit.User, path string) int {
	c.t.Helper()
	var page struct {
		Pagination struct {
			Total int `json:"total"`
		} `json:"pagination"`
	}
	res, err := c.call(u, http.MethodGet, path, nil)
	if err != nil || res.Status != http.StatusOK {
		return -1
	}
	res.Decode(c.t, &page)
	return page.Pagination.Total
}

// TestAcknowledgedWritesSurviveKillDashNine: writers create tasks as fast as
// they can; the API process is killed with SIGKILL mid-stream. After a
// restart every task whose creation was answered 201 is there.
func TestAcknowledgedWritesSurviveKillDashNine(t *testing.T) {
	c := startCluster(t)
	const writers = 8
	users := make([]*testkit.User, writers)
	for i := range users {
		users[i] = c.signIn(fmt.Sprintf("writer%d@example.com", i))
	}
	var mu sync.Mutex
	acked := map[string]*testkit.User{}
	var count atomic.Int64
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				res, err := c.call(u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": fmt.Sprintf("w%d-%d", i, n)})
				if err != nil {
					return // the server is gone
				}
				if res.Status != http.StatusCreated {
					t.Errorf("create: %d %s", res.Status, res.Body)
					return
				}
				var body struct {
					Data struct {
						ID string `json:"id"`
					} `json:"data"`
				}
				if err := json.Unmarshal(res.Body, &body); err != nil || body.Data.ID == "" {
					t.Errorf("create answered %s", res.Body)
					return
				}
				mu.Lock()
				acked[body.Data.ID] = u
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	testkit.Eventually(t, 60*time.Second, "writes to be acknowledged", func() bool { return count.Load() >= 400 })
	c.apiProc.Kill(t)
	wg.Wait()

	c.startAPI()
	missing := 0
	for id, u := range acked {
		res, err := c.call(u, http.MethodGet, "/api/v1/tasks/"+id, nil)
		if err != nil || res.Status != http.StatusOK {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes are missing after kill -9", missing, len(acked))
	}
	t.Logf("crash (api): %d acknowledged creates, all present after kill -9 and restart", len(acked))
}

// TestDueRemindersFireOnceAcrossAWorkerCrash: a few hundred reminders come
// due together; the worker is killed with SIGKILL while it fires them. After
// a restart each has fired, and each made exactly one notification.
func TestDueRemindersFireOnceAcrossAWorkerCrash(t *testing.T) {
	c := startCluster(t)
	// A slow worker (two at a time) so that the kill lands mid-way.
	c.env = append(c.env, "PERPETUA_JOBS_WORKERS=2")
	if testkit.Postgres() {
		c.worker.Kill(t)
		c.startWorker()
	}
	u := c.signIn("reminded@example.com")
	const tasks, perTask = 40, 5
	due := time.Now().Add(8 * time.Second).UTC()
	for i := range tasks {
		task := c.must(u, http.MethodPost, "/api/v1/tasks", map[string]any{"title": fmt.Sprintf("t%d", i)},
			http.StatusCreated).Data(t)["id"].(string)
		for j := range perTask {
			at := due.Add(time.Duration(j) * time.Millisecond).Format(time.RFC3339Nano)
			c.must(u, http.MethodPost, "/api/v1/reminders", map[string]any{"task_id": task, "type": "absolute",
				"scheduled_at": at}, http.StatusCreated)
		}
	}
	if time.Now().After(due) {
		t.Fatal("the reminders came due before they were all created; the machine is too slow for this test")
	}
	const want = tasks * perTask
	var seen int
	testkit.Eventually(t, 60*time.Second, "the first notifications", func() bool {
		seen = c.total(u, "/api/v1/notifications?limit=1")
		return seen >= 20
	})
	c.worker.Kill(t)
	t.Logf("worker killed after %d of %d notifications", seen, want)

	if testkit.Postgres() {
		c.startWorker()
	} else {
		c.startAPI()
	}
	testkit.Eventually(t, 120*time.Second, "every reminder to fire", func() bool {
		return c.total(u, "/api/v1/reminders?fired=false&limit=1") == 0 &&
			c.total(u, "/api/v1/notifications?limit=1") == want
	})
	if got := c.total(u, "/api/v1/notifications?limit=1"); got != want {
		t.Fatalf("%d notifications for %d reminders", got, want)
	}
	t.Logf("crash (worker): %d reminders due together, worker killed after %d notifications, each fired once", want, seen)
}
