// Command load drives a running Perpetua Flow API with the task life cycle the
// web client produces, from many users at once, and reports throughput and
// latency per route.
//
//	go run ./test/load -url http://127.0.0.1:8000 -users 50 -concurrency 32 -duration 30s
//
// The server needs dev login (DEV_LOGIN_ENABLED=true) and rate limits above
// the load (RATE_LIMIT_GENERAL, RATE_LIMIT_AUTH).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8000", "API base URL")
	users := flag.Int("users", 50, "distinct users")
	concurrency := flag.Int("concurrency", 32, "concurrent clients")
	duration := flag.Duration("duration", 30*time.Second, "how long to run")
	flag.Parse()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: *concurrency * 2, MaxIdleConnsPerHost: *concurrency * 2, IdleConnTimeout: time.Minute,
	}}
	r := &runner{base: *base, client: client, stats: map[string]*routeStats{}}

	tokens := make([]string, *users)
	for i := range tokens {
		tok, err := r.signIn(fmt.Sprintf("load-%d-%d@example.com", time.Now().UnixNano(), i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "sign in:", err)
			os.Exit(1)
		}
		tokens[i] = tok
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r.lifecycle(tokens[(w+i*(*concurrency))%len(tokens)])
			}
		}()
	}
	wg.Wait()
	r.report(time.Since(start))
	if r.failures.Load() > 0 {
		os.Exit(1)
	}
}

type routeStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	statuses  map[int]int
}

type runner struct {
	base     string
	client   *http.Client
	mu       sync.Mutex
	stats    map[string]*routeStats
	failures atomic.Int64
}

func (r *runner) record(route string, status int, d time.Duration) {
	r.mu.Lock()
	s, ok := r.stats[route]
	if !ok {
		s = &routeStats{statuses: map[int]int{}}
		r.stats[route] = s
	}
	r.mu.Unlock()
	s.mu.Lock()
	s.latencies = append(s.latencies, d)
	s.statuses[status]++
	s.mu.Unlock()
}

// call sends one request and decodes {"data": ...} into out.
func (r *runner) call(route, token, method, path string, body any, want int, out any) bool {
	var reader io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		reader = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.base+path, reader)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != http.MethodGet {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	start := time.Now()
	res, err := r.client.Do(req)
	if err != nil {
		r.record(route, 0, time.Since(start))
		r.failures.Add(1)
		return false
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r.record(route, res.StatusCode, time.Since(start))
	if res.StatusCode != want {
		r.failures.Add(1)
		return false
	}
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return true
}

func (r *runner) signIn(email string) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if !r.call("POST /auth/dev/login", "", http.MethodPost, "/api/v1/auth/dev/login",
		map[string]any{"email": email}, http.StatusOK, &out) || out.AccessToken == "" {
		return "", fmt.Errorf("dev login refused (is DEV_LOGIN_ENABLED=true?)")
	}
	return out.AccessToken, nil
}

// lifecycle is one task's life in the client: list, create, read, edit,
// complete, delete.
func (r *runner) lifecycle(token string) {
	r.call("GET /tasks", token, http.MethodGet, "/api/v1/tasks", nil, http.StatusOK, nil)
	var created struct {
		Data struct {
			ID      string `json:"id"`
			Version int    `json:"version"`
		} `json:"data"`
	}
	if !r.call("POST /tasks", token, http.MethodPost, "/api/v1/tasks",
		map[string]any{"title": "load test task", "description": "generated", "priority": "high"}, http.StatusCreated, &created) {
		return
	}
	path := "/api/v1/tasks/" + created.Data.ID
	r.call("GET /tasks/{id}", token, http.MethodGet, path, nil, http.StatusOK, nil)
	r.call("PATCH /tasks/{id}", token, http.MethodPatch, path,
		map[string]any{"title": "edited", "version": created.Data.Version}, http.StatusOK, nil)
	r.call("POST /tasks/{id}/complete", token, http.MethodPost, path+"/complete", nil, http.StatusOK, nil)
	r.call("DELETE /tasks/{id}", token, http.MethodDelete, path, nil, http.StatusOK, nil)
}

func (r *runner) report(elapsed time.Duration) {
	names := make([]string, 0, len(r.stats))
	total := 0
	for name, s := range r.stats {
		names = append(names, name)
		total += len(s.latencies)
	}
	sort.Strings(names)
	fmt.Printf("%d requests in %s: %.0f req/s, %d failures\n\n", total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds(), r.failures.Load())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "route\tcount\tp50\tp90\tp99\tmax\tstatuses\t")
	for _, name := range names {
		s := r.stats[name]
		slices.Sort(s.latencies)
		q := func(p float64) time.Duration {
			return s.latencies[int(p*float64(len(s.latencies)-1))].Round(10 * time.Microsecond)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%v\t\n", name, len(s.latencies), q(.5), q(.9), q(.99),
			s.latencies[len(s.latencies)-1].Round(10*time.Microsecond), s.statuses)
	}
	w.Flush()
}
