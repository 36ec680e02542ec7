package gamification_test

import (
	"fmt"

	"github.com/perpetuaflow/api/modules/gamification"
)

// A streak counts local days with a completion; the daily check breaks it
// when a day was missed.
func ExampleStreak() {
	var s gamification.Streak
	for _, day := range []string{"2026-03-01", "2026-03-02", "2026-03-02", "2026-03-03"} {
		s.Complete(day)
	}
	fmt.Println(s.CurrentStreak, s.LongestStreak)
	_, broke := s.Check("2026-03-05")
	fmt.Println(broke, s.CurrentStreak, s.LongestStreak)
	// Output:
	// 3 3
	// true 0 3
}
