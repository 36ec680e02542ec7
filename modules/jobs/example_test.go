package jobs_test

import (
	"fmt"
	"time"

	"github.com/perpetuaflow/api/modules/jobs"
)

// A periodic job's schedule: DailyAt runs at a UTC time each day (the
// elected leader enqueues it, so N workers run it once).
func ExampleDailyAt() {
	at := jobs.DailyAt(3, 30)
	fmt.Println(at.Next(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	fmt.Println(at.Next(time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)))
	// Output:
	// 2026-03-02 03:30:00 +0000 UTC
	// 2026-03-01 03:30:00 +0000 UTC
}
