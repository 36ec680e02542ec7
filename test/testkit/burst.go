package testkit

import (
	"sync"
	"testing"
)

// Burst sends the requests all at once: one goroutine each, held at a
// barrier until every one is ready, then released together, so that they
// race inside the server. It returns the answers in the order of reqs.
func (a *App) Burst(t testing.TB, reqs []Racer) []*Response {
	t.Helper()
	out := make([]*Response, len(reqs))
	errs := make([]error, len(reqs))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(len(reqs))
	done.Add(len(reqs))
	for i, c := range reqs {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i], errs[i] = a.Call(c.User, c.Request)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// Racer is one request of a Burst, by User (nil: no token).
type Racer struct {
	User *User
	Request
}

// Statuses counts the answers by status code.
func Statuses(rs []*Response) map[int]int {
	out := map[int]int{}
	for _, r := range rs {
		out[r.Status]++
	}
	return out
}
