package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The assistant's stream: what our server adds to the time to the first
// byte of a streamed answer, and what open streams cost. A local model
// (an OpenAI-compatible chat-completions server in this process) answers
// at once: the first chunk on the request's arrival, then the rest of the
// answer over two seconds, as a model writes. 200 streams are open at all
// times, each followed by the next as it ends, through the server
// (--role=api on PostgreSQL: sign-in check, the credits held in the
// ledger, the model asked, the charge settled) and straight to the model,
// beginning spread over an answer's length so that they arrive evenly;
// the difference of the two first-byte p50s is our overhead (goal ≤ 5 ms). Then 1,000 streams are opened and held open by
// the model: the api process's resident memory over its idle figure (goal
// ≤ 40 MB) and its CPU while they wait.

const (
	streamConcurrency = 200
	openStreams       = 1000
	answerLength      = 2 * time.Second // from the first chunk to the last
	answerChunks      = 10
)

// fakeModel is the local model. While holding, a stream sends its first
// chunk and waits for release (or its client to leave).
type fakeModel struct {
	srv     *http.Server
	url     string
	holding atomic.Bool
	release chan struct{}
	once    sync.Once
}

// newFakeModel starts a model over HTTPS (HTTP/2, as hosted providers
// answer) when cert is given, else over plain HTTP/1.1 (as a model server
// on the local network may).
func newFakeModel(cert *tls.Certificate) (*fakeModel, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &fakeModel{url: "http://" + ln.Addr().String() + "/v1", release: make(chan struct{})}
	m.srv = &http.Server{Handler: http.HandlerFunc(m.serve), ReadHeaderTimeout: 10 * time.Second}
	if cert == nil {
		go func() { _ = m.srv.Serve(ln) }()
		return m, nil
	}
	m.url = "https://" + ln.Addr().String() + "/v1"
	m.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	go func() { _ = m.srv.ServeTLS(ln, "", "") }()
	return m, nil
}

func (m *fakeModel) close() {
	m.once.Do(func() { close(m.release) })
	_ = m.srv.Close()
}

func (m *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	chunk := func(delta map[string]any, finish any) {
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": time.Now().Unix(),
			"model": req.Model, "choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "chatcmpl-bench", "object": "chat.completion", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant",
				"content": `{"response": "One step at a time.", "suggested_actions": []}`}}}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk(map[string]any{"role": "assistant", "content": "One step"}, nil)
	if m.holding.Load() {
		select {
		case <-m.release:
		case <-r.Context().Done():
			return
		}
	}
	for range answerChunks - 1 {
		select {
		case <-time.After(answerLength / (answerChunks - 1)):
		case <-r.Context().Done():
			return
		}
		chunk(map[string]any{"content": " and another"}, nil)
	}
	chunk(map[string]any{}, "stop")
	fmt.Fprint(w, "data: [DONE]\n\n")
	w.(http.Flusher).Flush()
}

type streamFigures struct {
	direct, through result      // time to first byte (P50/P99), streams per second
	held            heldFigures // the model over HTTPS (HTTP/2)
	heldPlain       heldFigures // the model over plain HTTP/1.1
}

// heldFigures are what openStreams streams held open cost the api process.
type heldFigures struct {
	idleRSS, openRSS float64
	// idleHeld and openHeld are the live heap and the goroutines' stacks
	// after collections (what the process holds, without the garbage that
	// opening the streams left for the next collection), in MB.
	idleHeld, openHeld  float64
	openCPU             float64 // the api process's CPU while the streams wait, in % of one core
	opened, openedFails int
}

// ttfb sends one streamed chat and returns the time to the first byte of
// its body, then reads it to the end.
func ttfb(c *http.Client, url, token string, body []byte) (time.Duration, bool) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", newKey())
	}
	began := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadByte(); err != nil {
		return 0, false
	}
	first := time.Since(began)
	var all bytes.Buffer
	_, _ = all.ReadFrom(br)
	ok := res.StatusCode == http.StatusOK && strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") &&
		!strings.Contains(all.String(), "event: error")
	return first, ok
}

// firstByteLoop runs ttfb from concurrency workers for o.duration and
// returns the rate and the first byte's p50 and p99.
func firstByteLoop(o options, c *http.Client, url string, users []seeded) result {
	body := []byte(`{"message": "How do I start?"}`)
	if users == nil { // the model's own request
		body = []byte(`{"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "How do I start?"}]}`)
	}
	var mu sync.Mutex
	var firsts []time.Duration
	// The streams begin spread over one answer's length, so that they
	// arrive evenly (as users do) rather than in waves of 200 at once.
	r := closedLoop(streamConcurrency, answerLength+time.Second, o.duration, func(w, i int) bool {
		if i == 0 {
			time.Sleep(time.Duration(w) * answerLength / streamConcurrency)
		}
		token := ""
		if users != nil {
			token = users[w%len(users)].Token // each worker is one user, who asks one thing at a time
		}
		d, ok := ttfb(c, url, token, body)
		if ok {
			mu.Lock()
			firsts = append(firsts, d)
			mu.Unlock()
		}
		return ok
	})
	slices.Sort(firsts)
	if len(firsts) > 0 {
		r.P50, r.P99 = firsts[len(firsts)/2], firsts[len(firsts)*99/100]
	}
	return r
}

func benchStreams(o options) (streamFigures, error) {
	var f streamFigures
	certFile := filepath.Join(o.work, "model.pem")
	cert, roots, err := selfSigned(certFile)
	if err != nil {
		return f, err
	}
	model, err := newFakeModel(&cert)
	if err != nil {
		return f, err
	}
	defer model.close()
	plain, err := newFakeModel(nil)
	if err != nil {
		return f, err
	}
	defer plain.close()
	o.env = append(o.env, "OPENAI_API_KEY=bench", "RATE_LIMIT_AI=100000000",
		"PERPETUA_LIMITS_FREE_DAILY_AI_CREDITS=1000000", "PERPETUA_AI_SESSION_REQUESTS=1000000",
		"PERPETUA_AI_TIMEOUT=2m", "PERPETUA_AI_HOLD_TTL=10m", "SSL_CERT_FILE="+certFile)
	base := o
	base.env = append(slices.Clone(o.env), "OPENAI_BASE_URL="+model.url)
	api, _, env, stop, err := postgresAPI(base)
	if err != nil {
		return f, err
	}
	defer stop()
	users, err := seed(newClient(api.base, 8), 200, 0, 8, "streams")
	if err != nil {
		return f, err
	}
	c := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: openStreams + 100,
		MaxConnsPerHost: openStreams + 100, DisableCompression: true, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	var directs, throughs []result
	for round := 1; round <= o.rounds; round++ {
		logf("streams round %d: %d concurrent streams, straight to the model and through the server", round, streamConcurrency)
		runs := []func(){
			func() { directs = append(directs, firstByteLoop(o, c, model.url+"/chat/completions", nil)) },
			func() {
				if round == 1 {
					profile(o, api, "streams")
				}
				throughs = append(throughs, firstByteLoop(o, c, api.base+"/api/v1/ai/chat/stream", users))
			},
		}
		if round%2 == 0 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, run := range runs {
			run()
		}
	}
	f.direct, f.through = median(directs), median(throughs)
	// The straight requests must carry what the model needs.
	if f.direct.Errors > 0 {
		return f, fmt.Errorf("the model failed %d of its own streams", f.direct.Errors)
	}

	logf("streams: %d streams held open, the model over HTTPS", openStreams)
	c.CloseIdleConnections()
	f.held = holdOpen(o, c, api, model, users, "streams-open")
	api.stop()

	// The same on a process whose model answers over plain HTTP/1.1 (a
	// connection and its two goroutines per stream), same database.
	logf("streams: %d streams held open, the model over plain HTTP/1.1", openStreams)
	env = append(slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "OPENAI_BASE_URL=") }),
		"OPENAI_BASE_URL="+plain.url)
	plainAPI, err := start(o, "api-plain", env, "serve", "--role=api")
	if err != nil {
		return f, err
	}
	defer plainAPI.stop()
	c.CloseIdleConnections()
	f.heldPlain = holdOpen(o, c, plainAPI, plain, users, "streams-open-plain")
	return f, nil
}

// holdOpen opens openStreams streams that the model holds after its first
// chunk, and reads what they cost the api process while they wait.
func holdOpen(o options, c *http.Client, api *server, model *fakeModel, users []seeded, name string) heldFigures {
	var f heldFigures
	time.Sleep(2 * time.Second)
	f.idleRSS = api.rss()
	f.idleHeld = api.held()
	saveMetrics(o, api, name+"-idle-metrics.txt")
	saveProfile(o, api, "heap", name+"-idle-heap.pprof")
	model.holding.Store(true)
	var wg sync.WaitGroup
	var opened, failed atomic.Int64
	started := make(chan struct{}, openStreams)
	for i := range openStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, api.base+"/api/v1/ai/chat/stream", strings.NewReader(`{"message": "Hold on"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+users[i%len(users)].Token)
			req.Header.Set("Idempotency-Key", newKey())
			res, err := c.Do(req)
			if err != nil {
				failed.Add(1)
				started <- struct{}{}
				return
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			if _, err := br.ReadString('\n'); err != nil || res.StatusCode != http.StatusOK {
				failed.Add(1)
				started <- struct{}{}
				return
			}
			opened.Add(1)
			started <- struct{}{}
			_, _ = bytes.NewBuffer(nil).ReadFrom(br)
		}()
	}
	for range openStreams {
		<-started
	}
	// At rest: past the 10 s after which the server retires the workers
	// that served the streams' requests (their connections were taken over).
	time.Sleep(12 * time.Second)
	f.openRSS = api.rss()
	f.openHeld = api.held() // the profiles below then show the live heap
	profile(o, api, name)
	saveMetrics(o, api, name+"-metrics.txt")
	saveProfile(o, api, "heap", name+"-heap.pprof")
	saveProfile(o, api, "goroutine?debug=1", name+"-goroutines.txt")
	cpu0 := api.cpuTime()
	time.Sleep(5 * time.Second)
	f.openCPU = (api.cpuTime() - cpu0).Seconds() / 5 * 100
	f.opened, f.openedFails = int(opened.Load()), int(failed.Load())
	model.once.Do(func() { close(model.release) })
	wg.Wait()
	return f
}

// saveProfile keeps one of the process's profiles beside the others.
func saveProfile(o options, s *server, kind, name string) { saveOps(o, s, "/debug/pprof/"+kind, name) }

// saveMetrics keeps the process's metrics (its memory by class among
// them) beside the profiles.
func saveMetrics(o options, s *server, name string) { saveOps(o, s, "/metrics", name) }

// saveOps writes what the process's ops listener answers at path into the
// profile folder (with -profile).
func saveOps(o options, s *server, path, name string) {
	if o.profile == "" {
		return
	}
	res, err := http.Get(s.ops + path)
	if err != nil {
		return
	}
	defer res.Body.Close()
	if out, err := os.Create(filepath.Join(o.profile, name)); err == nil {
		_, _ = io.Copy(out, res.Body)
		out.Close()
	}
}

// held is what the process holds after collections, in MB: the live heap
// and the goroutines' stacks (three collections, as a stack shrinks by half
// at most in each), read from its ops listener (pprof on).
func (s *server) held() float64 {
	for range 3 {
		if res, err := http.Get(s.ops + "/debug/pprof/heap?gc=1"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	res, err := http.Get(s.ops + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var total float64
	for _, line := range strings.Split(string(b), "\n") {
		name, value, _ := strings.Cut(line, " ")
		if name == "go_memstats_heap_alloc_bytes" || name == "go_memstats_stack_inuse_bytes" {
			v, _ := strconv.ParseFloat(value, 64)
			total += v
		}
	}
	return total / 1e6
}

// rss is the process's resident set size now (VmRSS), in MB.
func (s *server) rss() float64 { return s.procStatus("VmRSS:") }

func (s *server) procStatus(key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpuTime is the CPU time the process has used (user and system).
func (s *server) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command's name (which may hold spaces).
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks of 1/100 s
}

const (
	streamOverheadGoal = 5 * time.Millisecond
	openStreamsGoalMB  = 40
)

func printStreams(f streamFigures) {
	fmt.Printf("\nThe assistant's stream, PostgreSQL --role=api, a local model answering at once (the answer over %s), %d streams open at all times\n\n",
		answerLength, streamConcurrency)
	w := newTable()
	fmt.Fprintln(w, "\tstreams/s\tfirst byte p50\tp99\terrors\tgoal\t")
	fmt.Fprintf(w, "straight to the model\t%.0f\t%s\t%s\t%d\t\t\n", f.direct.Rate, ms(f.direct.P50), ms(f.direct.P99), f.direct.Errors)
	over := f.through.P50 - f.direct.P50
	fmt.Fprintf(w, "through the server (POST /ai/chat/stream)\t%.0f\t%s\t%s\t%d\t+%s ≤ %s %s\t\n", f.through.Rate, ms(f.through.P50),
		ms(f.through.P99), f.through.Errors, ms(over), ms(streamOverheadGoal), verdict(over <= streamOverheadGoal && f.through.Errors == 0))
	_ = w.Flush()
	for _, h := range []struct {
		figures heldFigures
		how     string
		goal    bool
	}{{f.held, "the model over HTTPS (HTTP/2, as hosted providers answer)", true},
		{f.heldPlain, "the model over plain HTTP/1.1 (one connection per stream)", false}} {
		// The goal is judged on what the streams hold (live heap and
		// stacks after collections): the RSS over idle also moves with what
		// the process kept from the load before it.
		extra := h.figures.openRSS - h.figures.idleRSS
		held := h.figures.openHeld - h.figures.idleHeld
		goal := ""
		if h.goal {
			goal = fmt.Sprintf(" (goal ≤ %d MB %s)", openStreamsGoalMB, verdict(held <= openStreamsGoalMB &&
				h.figures.openedFails == 0 && h.figures.opened == openStreams))
		}
		fmt.Printf("\n%d streams held open, %s (%d failed to open): live heap and stacks after a collection %.0f MB against %.0f MB idle, "+
			"+%.0f MB%s; api RSS %.0f MB against %.0f MB, +%.0f MB; CPU while they wait %.1f%% of a core",
			h.figures.opened, h.how, h.figures.openedFails, h.figures.openHeld, h.figures.idleHeld, held, goal,
			h.figures.openRSS, h.figures.idleRSS, extra, h.figures.openCPU)
	}
	fmt.Println()
}
