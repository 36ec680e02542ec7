package gamification

import "testing"

func localDate(s string) *string { return &s }

// TestAStreakGoesOnFromYesterdayAndRestartsAfterAGap: the transitions of a
// streak, without a database.
func TestAStreakGoesOnFromYesterdayAndRestartsAfterAGap(t *testing.T) {
	var s Streak
	for _, c := range []struct {
		today            string
		current, longest int
		last             string
	}{
		{"2026-03-01", 1, 1, "2026-03-01"}, // the first completion
		{"2026-03-01", 1, 1, "2026-03-01"}, // a second one the same day
		{"2026-03-02", 2, 2, "2026-03-02"}, // the next day
		{"2026-03-03", 3, 3, "2026-03-03"},
		{"2026-03-01", 3, 3, "2026-03-03"}, // a zone behind: counted already
		{"2026-03-05", 1, 3, "2026-03-05"}, // after a gap
		{"2026-03-06", 2, 3, "2026-03-06"},
		{"2026-02-28", 2, 3, "2026-03-06"},
	} {
		s.Complete(c.today)
		if s.CurrentStreak != c.current || s.LongestStreak != c.longest || *s.LastCompletionDate != c.last {
			t.Fatalf("after %s: %d/%d last %s, want %d/%d last %s", c.today, s.CurrentStreak, s.LongestStreak,
				*s.LastCompletionDate, c.current, c.longest, c.last)
		}
	}
	// Across a month's end and a leap day.
	s = Streak{CurrentStreak: 4, LongestStreak: 4, LastCompletionDate: localDate("2028-02-28")}
	s.Complete("2028-02-29")
	s.Complete("2028-03-01")
	if s.CurrentStreak != 6 {
		t.Fatalf("across a leap day: %d", s.CurrentStreak)
	}
}

// TestTheDailyCheckBreaksAStaleStreakOncePerDay: the check breaks a streak
// with no completion yesterday or today, keeps one with, and looks once a
// local day.
func TestTheDailyCheckBreaksAStaleStreakOncePerDay(t *testing.T) {
	for _, c := range []struct {
		name           string
		s              Streak
		today          string
		changed, broke bool
		current        int
	}{
		{"completed yesterday", Streak{CurrentStreak: 3, LastCompletionDate: localDate("2026-03-01")}, "2026-03-02", true, false, 3},
		{"completed today", Streak{CurrentStreak: 3, LastCompletionDate: localDate("2026-03-02")}, "2026-03-02", true, false, 3},
		{"a day missed", Streak{CurrentStreak: 3, LastCompletionDate: localDate("2026-02-28")}, "2026-03-02", true, true, 0},
		{"never completed", Streak{}, "2026-03-02", true, false, 0},
		{"looked at today", Streak{CurrentStreak: 3, LastCompletionDate: localDate("2026-02-01"), StreakCheckedOn: localDate("2026-03-02")},
			"2026-03-02", false, false, 3},
	} {
		s := c.s
		changed, broke := s.Check(c.today)
		if changed != c.changed || broke != c.broke || s.CurrentStreak != c.current {
			t.Errorf("%s: changed %v broke %v streak %d; want %v %v %d", c.name, changed, broke, s.CurrentStreak,
				c.changed, c.broke, c.current)
		}
		if changed && (s.StreakCheckedOn == nil || *s.StreakCheckedOn != c.today) {
			t.Errorf("%s: the look was not recorded", c.name)
		}
	}
}
