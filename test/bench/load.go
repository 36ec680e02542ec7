package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured run.
type result struct {
	Rate   float64 // per second
	P50    time.Duration
	P99    time.Duration
	Errors int64
	Count  int64
}

// closedLoop runs fn from concurrency workers, back to back, for duration
// after a warm-up, and measures each call. fn reports whether the call
// succeeded.
func closedLoop(concurrency int, warmup, duration time.Duration, fn func(worker, i int) bool) result {
	var measuring atomic.Bool
	var stop atomic.Bool
	var errors, count atomic.Int64
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				began := time.Now()
				ok := fn(w, i)
				if !measuring.Load() {
					continue
				}
				lat[w] = append(lat[w], time.Since(began))
				count.Add(1)
				if !ok {
					errors.Add(1)
				}
			}
		}()
	}
	time.Sleep(warmup)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(began)
	stop.Store(true)
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{Rate: float64(count.Load()) / elapsed.Seconds(), Errors: errors.Load(), Count: count.Load()}
	if len(all) > 0 {
		r.P50, r.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

// pgbench runs scripts (picked at random per transaction) with each client
// count and returns the best throughput and the client count it came at.
// mode is pgbench's query protocol: simple (its default: each statement
// parsed and planned anew) or prepared.
func pgbench(o options, dbURL string, scripts []string, mode string) (float64, int, error) {
	best, at := 0.0, 0
	for _, c := range o.clients {
		tps, err := pgbenchOnce(o, dbURL, scripts, c, mode)
		if err != nil {
			return 0, 0, err
		}
		if tps > best {
			best, at = tps, c
		}
	}
	return best, at, nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func pgbenchOnce(o options, dbURL string, scripts []string, clients int, mode string) (float64, error) {
	args := []string{"-n", "-M", mode, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)),
		"-T", strconv.Itoa(int(o.pgbenchTime.Seconds()))}
	for _, s := range scripts {
		args = append(args, "-f", s+"@1")
	}
	args = append(args, dbURL)
	var out bytes.Buffer
	cmd := exec.Command("pgbench", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, tail(out.Bytes()))
	}
	m := tpsLine.FindSubmatch(out.Bytes())
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps:\n%s", out.String())
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// writeScripts writes one pgbench script per user from a template in which
// :uid stands for the user's id.
func writeScripts(dir, name, template string, users []seeded) ([]string, error) {
	var out []string
	for i, u := range users {
		path := filepath.Join(dir, fmt.Sprintf("%s-%03d.sql", name, i))
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		w := bufio.NewWriter(f)
		_, _ = w.WriteString(string(bytes.ReplaceAll([]byte(template), []byte(":uid"), []byte("'"+u.ID+"'"))))
		if err := w.Flush(); err != nil {
			return nil, err
		}
		f.Close()
		out = append(out, path)
	}
	return out, nil
}

// median returns the run with the median rate.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func medianFloat(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
