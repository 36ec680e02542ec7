package adversarial

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/test/testkit"
)

var (
	built    = make(chan struct{})
	binary   string
	buildErr error
)

// TestMain builds the binary for the crash tests while the others run, and
// removes it after.
func TestMain(m *testing.M) {
	var cleanup func()
	go func() {
		defer close(built)
		binary, cleanup, buildErr = testkit.BuildBinary()
	}()
	// Most of these tests wait (on processes, timers, the database), not
	// compute: run four at a time rather than one per core, unless
	// -parallel says otherwise.
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == f.DefValue {
		_ = f.Value.Set("4")
	}
	code := m.Run()
	<-built
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

// perpetua is the binary the crash tests run.
func perpetua(t *testing.T) string {
	t.Helper()
	<-built
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
	client  *http.Client
}

func startCluster(t *testing.T, env ...string) *cluster {
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
	c.env = append(c.env, env...)
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
	t.Parallel() // each on its own database and ports; most of its time is waiting
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
	t.Parallel() // each on its own database and ports; most of its time is waiting
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

// TestAnInterruptedTranscriptionCompletesOnce: the worker is killed with
// SIGKILL while a voice note's transcription waits on the service, on its
// only allowed try (max_attempts 1: the crash is on the last one). After a
// restart the job is rescued (once it has run longer than its timeout) and
// runs again on the attempt kept in reserve for this: the note is
// transcribed once, its held credits are charged once, and the user is
// told once.
func TestAnInterruptedTranscriptionCompletesOnce(t *testing.T) {
	t.Parallel() // each on its own database and ports; most of its time is waiting
	dg := testkit.NewDeepgram(t, testkit.Heard{Transcript: "call the plumber", Seconds: 45, Language: "en", Confidence: 0.9})
	dg.Script(testkit.Heard{Hang: true})
	checkout := testkit.NewCheckout(t)
	const timeout = 2 * time.Second // the transcription's; the job's is 10 s more
	c := startCluster(t, "DEEPGRAM_API_KEY="+dg.Key, "DEEPGRAM_BASE_URL="+dg.URL,
		"PERPETUA_AI_TRANSCRIPTION_TIMEOUT="+timeout.String(), "PERPETUA_AI_TRANSCRIPTION_RETRY_BACKOFF=100ms",
		"PERPETUA_AI_TRANSCRIPTION_MAX_ATTEMPTS=1",
		"CHECKOUT_SECRET_KEY="+checkout.Key, "CHECKOUT_API_URL="+checkout.URL, "CHECKOUT_WEBHOOK_SECRET="+clusterWebhookSecret)
	u := c.payUpgrade(c.signIn("voice@example.com"), checkout)
	id := c.must(u, http.MethodPost, "/api/v1/notes", map[string]any{"voice_url": "https://cdn.example.com/memo.webm",
		"voice_duration_seconds": 45}, http.StatusCreated).Data(t)["id"].(string)
	select {
	case <-dg.Hung():
	case <-time.After(30 * time.Second):
		t.Fatal("the transcription never reached the service")
	}
	started := time.Now()
	c.worker.Kill(t)
	// The job's run is rescued once it is older than its timeout: a new
	// worker's rescuer looks at start, then every 30 s.
	<-time.After(time.Until(started.Add(timeout + 11*time.Second)))
	if testkit.Postgres() {
		c.startWorker()
	} else {
		c.startAPI()
	}
	testkit.Eventually(t, 120*time.Second, "the transcription after the crash", func() bool {
		res, err := c.call(u, http.MethodGet, "/api/v1/notes/"+id, nil)
		return err == nil && res.Status == http.StatusOK && res.Data(t)["transcription_status"] == "completed"
	})
	note := c.must(u, http.MethodGet, "/api/v1/notes/"+id, nil, http.StatusOK).Data(t)
	if note["content"] != "call the plumber" || len(dg.Requests()) != 2 {
		t.Fatalf("note %v after %d calls to the service", note, len(dg.Requests()))
	}
	var charged, rows int
	for _, r := range c.must(u, http.MethodGet, "/api/v1/credits/history?limit=100", nil, http.StatusOK).List(t) {
		if r["description"] == "voice note transcription" {
			rows++
			if r["type"] == "deduct" {
				charged += int(r["amount"].(float64))
			} else {
				charged -= int(r["amount"].(float64))
			}
		}
	}
	if charged != 5 {
		t.Fatalf("charged %d for 45 s (%d rows), want 5 once", charged, rows)
	}
	testkit.Eventually(t, 10*time.Second, "the notification", func() bool {
		return c.total(u, "/api/v1/notifications?limit=1") == 2 // the subscription's and the transcription's
	})
	told := 0
	for _, n := range c.must(u, http.MethodGet, "/api/v1/notifications", nil, http.StatusOK).List(t) {
		if n["title"] == "Voice note transcribed" {
			told++
		}
	}
	if told != 1 {
		t.Fatalf("told %d times", told)
	}
	t.Logf("crash (transcription): worker killed mid-call, transcribed %s after the kill", time.Since(started).Round(time.Second))
}

const clusterWebhookSecret = "whsec_cluster"

// payUpgrade makes u Pro the way a customer becomes Pro: the upgrade's
// payment page, paid (the provider's signed webhook names our session).
func (c *cluster) payUpgrade(u *testkit.User, checkout *testkit.Checkout) *testkit.User {
	c.t.Helper()
	up := c.must(u, http.MethodPost, "/api/v1/subscription/upgrade", map[string]any{}, http.StatusOK).Data(c.t)
	body, _ := json.Marshal(map[string]any{"id": "evt_" + uuid.NewString(), "type": "payment_captured",
		"data": map[string]any{"id": "pay_" + uuid.NewString(), "amount": 999, "currency": "USD", "reference": up["session_id"],
			"metadata": map[string]any{"user_id": u.ID.String(), "purpose": "subscription"}}})
	res, err := testkit.Call(c.client, c.api, nil, testkit.Request{Method: http.MethodPost, Path: "/api/v1/webhooks/checkout",
		Body: body, Headers: map[string]string{"Cko-Signature": testkit.SignWebhook(clusterWebhookSecret, body)}})
	if err != nil {
		c.t.Fatal(err)
	}
	res.Expect(c.t, http.StatusOK)
	return c.signIn(u.Email)
}

// TestAHoldOfAKilledAPIIsGivenBack: the API process is killed with SIGKILL
// while a streamed answer holds its credit. Nothing settles or releases
// that hold; once its time is over, credit_hold_release (on the worker)
// gives it back.
func TestAHoldOfAKilledAPIIsGivenBack(t *testing.T) {
	t.Parallel() // each on its own database and ports; most of its time is waiting
	o := testkit.NewOpenAI(t, testkit.Reply{Chunks: []string{"One", " two", " three"}, HoldAfter: 1})
	c := startCluster(t, "OPENAI_API_KEY="+o.Key, "OPENAI_BASE_URL="+o.URL,
		"PERPETUA_AI_TIMEOUT=2s", "PERPETUA_AI_STREAM_WRITE_TIMEOUT=1s", "PERPETUA_AI_HOLD_TTL=6s",
		"PERPETUA_BILLING_HOLD_RELEASE_INTERVAL=1s")
	u := c.signIn("streamer@example.com")
	before := c.must(u, http.MethodGet, "/api/v1/credits/balance", nil, http.StatusOK).Data(t)["total"].(float64)
	stream := make(chan error, 1)
	go func() {
		_, err := c.call(u, http.MethodPost, "/api/v1/ai/chat/stream", map[string]any{"message": "count"})
		stream <- err
	}()
	select {
	case <-o.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("the stream never reached the model")
	}
	c.apiProc.Kill(t)
	<-stream
	c.startAPI() // on SQLite the one process is the worker too
	testkit.Eventually(t, 60*time.Second, "the hold to be given back", func() bool {
		res, err := c.call(u, http.MethodGet, "/api/v1/credits/balance", nil)
		return err == nil && res.Status == http.StatusOK && res.Data(t)["total"].(float64) == before
	})
	var released bool
	for _, r := range c.must(u, http.MethodGet, "/api/v1/credits/history", nil, http.StatusOK).List(t) {
		released = released || r["description"] == "not charged: AI chat"
	}
	if !released {
		t.Fatal("the history does not show the credit given back")
	}
}
