package tasks

import (
	"strings"
	"testing"
	"time"
)

func occurrences(t *testing.T, r *Rule, from time.Time, n int) []string {
	t.Helper()
	var out []string
	at, inclusive := from, true
	for range n {
		next, ok := r.Next(at, inclusive)
		if !ok {
			break
		}
		out = append(out, next.Format(time.RFC3339))
		at, inclusive = next, false
	}
	return out
}

func TestRuleKeepsLocalTimeAcrossDSTChanges(t *testing.T) {
	t.Parallel()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	newYork, _ := time.LoadLocation("America/New_York")
	cases := []struct {
		name  string
		rule  string
		loc   *time.Location
		start time.Time
		want  []string
	}{
		{"Berlin spring forward (29 March 2026)", "FREQ=DAILY", berlin,
			time.Date(2026, 3, 27, 9, 0, 0, 0, berlin),
			[]string{"2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"}},
		{"Berlin fall back (25 October 2026)", "FREQ=DAILY", berlin,
			time.Date(2026, 10, 24, 9, 0, 0, 0, berlin),
			[]string{"2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"}},
		{"New York weekly across 8 March 2026", "FREQ=WEEKLY;BYDAY=SU", newYork,
			time.Date(2026, 3, 1, 8, 30, 0, 0, newYork),
			[]string{"2026-03-01T13:30:00Z", "2026-03-08T12:30:00Z", "2026-03-15T12:30:00Z"}},
		{"DTSTART line in local time", "DTSTART:20260327T090000\nRRULE:FREQ=DAILY;COUNT=3", berlin,
			time.Time{}, []string{"2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"}},
		{"monthly on the 31st skips short months", "FREQ=MONTHLY;BYMONTHDAY=31", time.UTC,
			time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC),
			[]string{"2026-01-31T10:00:00Z", "2026-03-31T10:00:00Z", "2026-05-31T10:00:00Z"}},
		{"every second weekday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", time.UTC,
			time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC),
			[]string{"2026-11-23T07:00:00Z", "2026-11-25T07:00:00Z", "2026-12-07T07:00:00Z", "2026-12-09T07:00:00Z"}},
		{"until", "FREQ=YEARLY;UNTIL=20280101T000000Z", time.UTC,
			time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
			[]string{"2026-02-01T00:00:00Z", "2027-02-01T00:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRule(c.rule, c.loc, c.start)
			if err != nil {
				t.Fatal(err)
			}
			from := c.start
			if from.IsZero() {
				from = r.Start()
			}
			got := occurrences(t, r, from, 5)
			if len(got) > len(c.want) {
				got = got[:len(c.want)]
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestRuleCountEnds(t *testing.T) {
	t.Parallel()
	r, err := ParseRule("FREQ=DAILY;COUNT=1", time.UTC, time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	first, ok := r.Next(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC), true)
	if !ok || !first.Equal(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("COUNT=1 lost its occurrence: %v %v", first, ok)
	}
	if _, ok := r.Next(first, false); ok {
		t.Fatal("COUNT=1 produced a second occurrence")
	}
}

func TestRuleRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "FREQ=HOURLY", "FREQ=MINUTELY", "FREQ=DAILY;BYHOUR=9", "INTERVAL=2",
		"FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;COUNT=-1", "FREQ=DAILY;FOO=1", "FREQ=WEEKLY;BYDAY=XX", "FREQ",
		"a\nb\nc", "FREQ=DAILY;UNTIL=yesterday"} {
		if _, err := ParseRule(bad, time.UTC, time.Now()); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseRule: any text either fails to parse with an error or gives a
// rule whose occurrences move forward; nothing panics. (The seeds are in
// testdata/fuzz/FuzzParseRule too.)
func FuzzParseRule(f *testing.F) {
	for _, seed := range []string{"FREQ=DAILY", "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3",
		"DTSTART:20260327T090000\nRRULE:FREQ=DAILY;INTERVAL=2", "FREQ=MONTHLY;BYMONTHDAY=31;UNTIL=20270101T000000Z",
		"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=WEEKLY;BYDAY=5FR", "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU",
		"FREQ=DAILY;COUNT=0", "freq=daily;byday=xx", ";;==", "FREQ=SECONDLY"} {
		f.Add(seed)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	start := time.Date(2026, 3, 27, 9, 0, 0, 0, berlin)
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 500 { // the API's maxLength
			return
		}
		r, err := ParseRule(text, berlin, start)
		if err != nil {
			return
		}
		at := start
		for range 5 {
			next, ok := r.Next(at, false)
			if !ok {
				return
			}
			if !next.After(at) {
				t.Fatalf("%q: occurrence %s does not follow %s", text, next, at)
			}
			at = next
		}
	})
}
