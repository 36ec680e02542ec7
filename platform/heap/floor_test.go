package heap

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		floor, live int64
		want        int
	}{
		{64 << 20, 0, MaxPercent},
		{64 << 20, 4 << 20, MaxPercent}, // 1,500% capped
		{64 << 20, 10 << 20, 540},
		{64 << 20, 32 << 20, 100},
		{64 << 20, 60 << 20, MinPercent}, // below the default: the default
		{64 << 20, 1 << 30, MinPercent},
	} {
		if got := Percent(c.floor, c.live); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.floor, c.live, got, c.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC collects until the tuner, called back after a collection, has
// set GOGC to want.
func waitGOGC(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d, want %d", gogc(), want)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// With a small live heap the collector is paced to the floor; with a live
// heap past half the floor, at the default; stop restores what it found.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	runtime.GC()

	stop := Floor(256 << 20)
	waitGOGC(t, MaxPercent)
	held := make([]byte, 160<<20) // live: more than half the floor
	waitGOGC(t, MinPercent)
	runtime.KeepAlive(held)
	held = nil
	waitGOGC(t, MaxPercent)

	stop()
	if got := gogc(); got != 100 {
		t.Fatalf("after stop GOGC is %d, want the 100 it found", got)
	}
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != 100 {
		t.Fatalf("a collection after stop set GOGC to %d", got)
	}
}
