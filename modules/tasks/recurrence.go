package tasks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// Rule is a recurrence rule (RFC 5545 RRULE) evaluated in a time zone, so
// that "every day at 9:00" stays at 9:00 local time across DST changes. It
// wraps rrule-go behind the little this module needs.
type Rule struct {
	rr *rrule.RRule
}

var allowedFreq = map[string]bool{"DAILY": true, "WEEKLY": true, "MONTHLY": true, "YEARLY": true}

var allowedParts = map[string]bool{"FREQ": true, "INTERVAL": true, "BYDAY": true, "BYMONTHDAY": true,
	"BYMONTH": true, "BYSETPOS": true, "COUNT": true, "UNTIL": true, "WKST": true}

// ParseRule parses text: an RRULE ("FREQ=WEEKLY;BYDAY=MO,WE" or
// "RRULE:FREQ=..."), optionally preceded by a DTSTART line. Occurrences keep
// the wall-clock time of the start in loc; without a DTSTART the rule starts
// at start.
func ParseRule(text string, loc *time.Location, start time.Time) (*Rule, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	if text == "" {
		return nil, errors.New("empty rule")
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 2 {
		return nil, errors.New("expected an RRULE, optionally after a DTSTART line")
	}
	ruleLine := strings.TrimPrefix(lines[len(lines)-1], "RRULE:")
	for _, part := range strings.Split(ruleLine, ";") {
		key, value, ok := strings.Cut(part, "=")
		if !ok || value == "" {
			return nil, fmt.Errorf("malformed part %q", part)
		}
		key = strings.ToUpper(key)
		if !allowedParts[key] {
			return nil, fmt.Errorf("%s is not supported (use FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL)", key)
		}
		switch key {
		case "FREQ":
			if !allowedFreq[strings.ToUpper(value)] {
				return nil, fmt.Errorf("FREQ=%s is not supported (DAILY, WEEKLY, MONTHLY or YEARLY)", value)
			}
		case "INTERVAL", "COUNT":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 || n > 10000 {
				return nil, fmt.Errorf("%s must be a whole number from 1 to 10000", key)
			}
		}
	}
	opt, err := rrule.StrToROptionInLocation(text, loc)
	if err != nil {
		return nil, err
	}
	if opt.Dtstart.IsZero() {
		opt.Dtstart = start
	}
	opt.Dtstart = opt.Dtstart.In(loc).Truncate(time.Second)
	rr, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, err
	}
	return &Rule{rr: rr}, nil
}

// Start is the rule's first possible occurrence (its DTSTART).
func (r *Rule) Start() time.Time { return r.rr.GetDTStart().UTC() }

// Next returns the first occurrence after t (or at t when inclusive), in UTC;
// false when the rule has no more.
func (r *Rule) Next(t time.Time, inclusive bool) (time.Time, bool) {
	next := r.rr.After(t, inclusive)
	if next.IsZero() {
		return time.Time{}, false
	}
	return next.UTC(), true
}
