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
	"strings"
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
	// CPU per request over the measured time: the whole machine's (every
	// process: server, database, load) and, for each watched server, its
	// own.
	CPU      time.Duration
	WatchCPU []time.Duration
}

// closedLoop runs fn from concurrency workers, back to back, for duration
// after a warm-up, and measures each call. fn reports whether the call
// succeeded. The CPU used per call is measured for the whole machine and
// for each watched server.
func closedLoop(concurrency int, warmup, duration time.Duration, fn func(worker, i int) bool, watch ...*server) result {
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
	cpu0, watch0 := machineCPU(), cpuTimes(watch)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(began)
	cpu1, watch1 := machineCPU(), cpuTimes(watch)
	stop.Store(true)
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{Rate: float64(count.Load()) / elapsed.Seconds(), Errors: errors.Load(), Count: count.Load()}
	if len(all) > 0 {
		r.P50, r.P99 = all[len(all)/2], all[len(all)*99/100]
		n := time.Duration(len(all))
		r.CPU = (cpu1 - cpu0) / n
		for i := range watch {
			r.WatchCPU = append(r.WatchCPU, (watch1[i]-watch0[i])/n)
		}
	}
	return r
}

// machineCPU is the CPU time every process on the machine has used so far
// (user, system and interrupts, from /proc/stat; not what the hypervisor
// took): divided by the work done meanwhile, it is what that work cost
// when the load keeps the CPUs busy.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line)) // cpu user nice system idle iowait irq softirq steal ...
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(fields) {
			v, _ := strconv.ParseInt(fields[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / 100 // clock ticks of 1/100 s
}

func cpuTimes(servers []*server) []time.Duration {
	out := make([]time.Duration, len(servers))
	for i, s := range servers {
		out[i] = s.cpuTime()
	}
	return out
}

// pgbench runs scripts (picked at random per transaction) with each client
// count and returns the best throughput and the client count it came at.
// mode is pgbench's query protocol: simple (its default: each statement
// parsed and planned anew) or prepared.
func pgbench(o options, dbURL string, scripts []string, mode string) (float64, int, error) {
	best, _, at, err := pgbenchCPU(o, dbURL, scripts, mode)
	return best, at, err
}

// pgbenchCPU is pgbench with the machine's CPU time per transaction of the
// best run.
func pgbenchCPU(o options, dbURL string, scripts []string, mode string) (float64, time.Duration, int, error) {
	best, cpu, at := 0.0, time.Duration(0), 0
	for _, c := range o.clients {
		cpu0 := machineCPU()
		tps, txns, err := pgbenchOnce(o, dbURL, scripts, c, mode)
		if err != nil {
			return 0, 0, 0, err
		}
		if tps > best && txns > 0 {
			best, cpu, at = tps, (machineCPU()-cpu0)/time.Duration(txns), c
		}
	}
	return best, cpu, at, nil
}

var (
	tpsLine  = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	txnsLine = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// pgbenchOnce runs pgbench once and returns its throughput and the number
// of transactions it ran.
func pgbenchOnce(o options, dbURL string, scripts []string, clients int, mode string) (float64, int64, error) {
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
		return 0, 0, fmt.Errorf("pgbench: %w\n%s", err, tail(out.Bytes()))
	}
	m, n := tpsLine.FindSubmatch(out.Bytes()), txnsLine.FindSubmatch(out.Bytes())
	if m == nil || n == nil {
		return 0, 0, fmt.Errorf("pgbench printed no tps:\n%s", out.String())
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, 0, err
	}
	txns, err := strconv.ParseInt(string(n[1]), 10, 64)
	return tps, txns, err
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

func medianDuration(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
