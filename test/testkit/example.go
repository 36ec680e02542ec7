package testkit

import (
	"fmt"
	"os"
	"testing"
)

// ExampleTB lets a runnable Example function (which gets no *testing.T)
// start an App and sign users in: a failure panics, which fails the
// example, and Done runs the cleanups (stopping the app, removing its
// database). Methods testkit does not call are not implemented.
type ExampleTB struct {
	testing.TB
	cleanups []func()
}

// NewExampleTB returns an ExampleTB; defer its Done.
func NewExampleTB() *ExampleTB { return &ExampleTB{} }

// Done runs the cleanups, last registered first.
func (e *ExampleTB) Done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// Helper implements testing.TB.
func (e *ExampleTB) Helper() {}

// Cleanup implements testing.TB.
func (e *ExampleTB) Cleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// Failed implements testing.TB: a failure has panicked already.
func (e *ExampleTB) Failed() bool { return false }

// Logf implements testing.TB: examples compare their output, so logs are
// dropped.
func (e *ExampleTB) Logf(string, ...any) {}

// Errorf implements testing.TB.
func (e *ExampleTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Fatal implements testing.TB.
func (e *ExampleTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// Fatalf implements testing.TB.
func (e *ExampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// TempDir implements testing.TB.
func (e *ExampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "perpetua-example-")
	if err != nil {
		panic(err)
	}
	e.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
