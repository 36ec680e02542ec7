package main

import (
	"fmt"
	"net/http"
	"time"
)

// More processes on one database: the same mixed load (four reads of the
// task list to one create, as the web client's sessions do) against one
// --role=api process, then split evenly over two; the two must serve at
// least 0.9× the one's requests per second (shared rate-limit leases,
// session cache and idempotency keys must not add contention). Beside it,
// the same load on the two deployments the README describes: one
// --role=all on SQLite, and --role=api with a --role=worker on PostgreSQL.

type processFigures struct {
	one, two     result
	pgDeployment result // --role=api beside a --role=worker
	lite         *result
}

// mixed is the load: four reads to one write, each user's own.
func mixed(loads []*wire, users []seeded) func(w, i int) bool {
	return func(w, i int) bool {
		load := loads[w%len(loads)]
		u := users[(w*7+i)%len(users)]
		if i%5 == 4 {
			status, err := load.post(w, "/api/v1/tasks", u.Token, []byte(`{"title":"bench write"}`))
			return err == nil && status == http.StatusCreated
		}
		status, err := load.get(w, "/api/v1/tasks?limit=25", u.Token)
		return err == nil && status == http.StatusOK
	}
}

// benchProcesses measures one api process against two, rounds alternated,
// then the api beside a worker; reset clears what the writes added.
func benchProcesses(o options, api *server, env []string, users []seeded, reset func() error) (processFigures, error) {
	var f processFigures
	second, err := start(o, "api-2", env, "serve", "--role=api")
	if err != nil {
		return f, err
	}
	defer second.stop()
	one, err := newWire(api.base, o.concurrency)
	if err != nil {
		return f, err
	}
	defer one.close()
	other, err := newWire(second.base, o.concurrency)
	if err != nil {
		return f, err
	}
	defer other.close()
	var ones, twos []result
	for round := 1; round <= o.rounds; round++ {
		logf("processes round %d: one api process, then two, same load", round)
		runs := []func(){
			func() {
				ones = append(ones, closedLoop(o.concurrency, time.Second, o.duration, mixed([]*wire{one}, users)))
			},
			func() {
				twos = append(twos, closedLoop(o.concurrency, time.Second, o.duration, mixed([]*wire{one, other}, users)))
			},
		}
		if round%2 == 0 {
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, run := range runs {
			run()
			if err := reset(); err != nil {
				return f, err
			}
		}
	}
	f.one, f.two = median(ones), median(twos)
	second.stop()
	worker, err := start(o, "worker", env, "serve", "--role=worker")
	if err != nil {
		return f, err
	}
	defer worker.stop()
	var deps []result
	for round := 1; round <= o.rounds; round++ {
		logf("processes round %d: api beside a worker", round)
		deps = append(deps, closedLoop(o.concurrency, time.Second, o.duration, mixed([]*wire{one}, users)))
		if err := reset(); err != nil {
			return f, err
		}
	}
	f.pgDeployment = median(deps)
	return f, nil
}

// processesGoal is the least share of one process's req/s two must serve.
const processesGoal = 0.9

func printProcesses(f processFigures) {
	fmt.Printf("\nMore processes, the same mixed load (4 × GET /tasks?limit=25 : 1 × POST /tasks)\n\n")
	w := newTable()
	fmt.Fprintln(w, "deployment\treq/s\tp50\tp99\terrors\tratio\tgoal\t")
	ratio := f.two.Rate / f.one.Rate
	fmt.Fprintf(w, "PostgreSQL, 1 × --role=api\t%.0f\t%s\t%s\t%d\t\t\t\n", f.one.Rate, ms(f.one.P50), ms(f.one.P99), f.one.Errors)
	fmt.Fprintf(w, "PostgreSQL, 2 × --role=api\t%.0f\t%s\t%s\t%d\t%.2f\t≥ %.2f %s\t\n", f.two.Rate, ms(f.two.P50), ms(f.two.P99), f.two.Errors,
		ratio, processesGoal, verdict(ratio >= processesGoal && f.two.Errors == 0))
	fmt.Fprintf(w, "PostgreSQL, --role=api + --role=worker\t%.0f\t%s\t%s\t%d\t\t\t\n", f.pgDeployment.Rate, ms(f.pgDeployment.P50),
		ms(f.pgDeployment.P99), f.pgDeployment.Errors)
	if f.lite != nil {
		fmt.Fprintf(w, "SQLite, 1 × --role=all\t%.0f\t%s\t%s\t%d\t\t\t\n", f.lite.Rate, ms(f.lite.P50), ms(f.lite.P99), f.lite.Errors)
	}
	_ = w.Flush()
}
