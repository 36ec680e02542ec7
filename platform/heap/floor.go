// Package heap tunes the Go collector for a serving process.
package heap

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The collector's pace is GOGC: the heap may grow by that percentage of
// what the last collection found live before the next one starts. At the
// default of 100 a server whose live heap is 10 MB collects every 10 MB
// allocated, many times a second under load, while memory it may use sits
// idle. A floor lets the heap grow to at least that size between
// collections: GOGC is set after every collection so that the next starts
// at max(floor, 2 × live), within [MinPercent, MaxPercent]. A large live
// heap (many open streams) gets the default pace; a memory limit
// (GOMEMLIMIT, server.memory_limit) still applies on top.
const (
	MinPercent = 100
	MaxPercent = 800
)

// Floor keeps the collector's target heap at no less than floor bytes until
// stop is called, which restores the GOGC it found. A floor of 0 does
// nothing.
func Floor(floor int64) (stop func()) {
	if floor <= 0 {
		return func() {}
	}
	f := &tuner{floor: floor, initial: debug.SetGCPercent(MaxPercent)}
	debug.SetGCPercent(f.initial)
	f.adjust()
	f.arm()
	return f.stop
}

type tuner struct {
	floor   int64
	initial int

	mu      sync.Mutex
	stopped bool
	percent int
	sample  [1]metrics.Sample
}

// arm asks to be called back after the next collection: a cleanup runs once
// the object it is attached to is found unreachable, which a collection
// does.
func (f *tuner) arm() {
	runtime.AddCleanup(new([16]byte), func(f *tuner) {
		if f.adjust() {
			f.arm()
		}
	}, f)
}

// adjust sets GOGC from the live heap the last collection found, and
// reports whether it is still to be done.
func (f *tuner) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.sample[0].Name = "/gc/heap/live:bytes"
	metrics.Read(f.sample[:])
	live := int64(f.sample[0].Value.Uint64())
	percent := Percent(f.floor, live)
	if percent != f.percent {
		debug.SetGCPercent(percent)
		f.percent = percent
	}
	return true
}

// Percent is the GOGC that starts the next collection at floor bytes with
// live bytes live, within [MinPercent, MaxPercent].
func Percent(floor, live int64) int {
	if live <= 0 {
		return MaxPercent
	}
	p := (floor - live) * 100 / live
	return int(min(max(p, MinPercent), MaxPercent))
}

func (f *tuner) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.initial)
	}
}
