package billing

import (
	"testing"
	"time"
)

// TestASubscriptionsTransitions: payments, failures, grace, cancellation
// and the end of a subscription, without a database.
func TestASubscriptionsTransitions(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	sub := &Subscription{}
	sub.PeriodPaid(now)
	if sub.Status != StatusActive || !sub.CurrentPeriodEnd.Equal(time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("paid: %s until %v", sub.Status, sub.CurrentPeriodEnd)
	}

	// Two failures: past due; the third opens the grace period.
	for i, want := range []string{StatusPastDue, StatusPastDue, StatusGrace} {
		if !sub.PaymentDeclined(now, 3, 7*24*time.Hour) || sub.Status != want || sub.PaymentFailures != i+1 {
			t.Fatalf("failure %d: %s, %d failures", i+1, sub.Status, sub.PaymentFailures)
		}
	}
	if !sub.GraceUntil.Equal(now.Add(7 * 24 * time.Hour)) {
		t.Fatalf("grace until %v", sub.GraceUntil)
	}
	if sub.PaymentDeclined(now, 3, time.Hour) || sub.PaymentFailures != 3 {
		t.Fatal("a failure in grace changed the subscription")
	}
	if sub.Lapsed(now.Add(7*24*time.Hour-time.Second)) || !sub.Lapsed(now.Add(7*24*time.Hour)) {
		t.Fatal("grace lapses at its end, not before")
	}

	// A payment in grace: active again, failures and grace forgotten.
	sub.PeriodPaid(now)
	if sub.Status != StatusActive || sub.PaymentFailures != 0 || sub.GraceUntil != nil {
		t.Fatalf("paid in grace: %+v", sub)
	}

	// Cancelled: Pro until the period's end, once.
	if !sub.Cancel() || sub.Status != StatusCancelled || !sub.CancelAtPeriodEnd {
		t.Fatalf("cancel: %+v", sub)
	}
	if sub.Cancel() {
		t.Fatal("cancelled twice")
	}
	end := *sub.CurrentPeriodEnd
	if sub.Lapsed(end.Add(-time.Second)) || !sub.Lapsed(end) {
		t.Fatal("a cancelled subscription lapses at its period's end")
	}
	sub.End()
	if sub.Status != StatusCancelled {
		t.Fatalf("a cancelled subscription ends cancelled, not %s", sub.Status)
	}

	// An active one that lapses ends expired, and a failure changes nothing then.
	sub = &Subscription{}
	sub.PeriodPaid(now)
	sub.End()
	if sub.Status != StatusExpired || sub.PaymentDeclined(now, 3, time.Hour) || sub.Lapsed(now.AddDate(1, 0, 0)) {
		t.Fatalf("expired: %+v", sub)
	}
}

// TestAnOperatorsGrantAndEnd: Pro granted until a time lapses then (as
// expired), granted with no end never lapses, and ending it now closes the
// period at now, once.
func TestAnOperatorsGrantAndEnd(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	until := now.AddDate(0, 1, 0)
	sub := &Subscription{PaymentFailures: 2, Status: StatusPastDue}
	sub.Granted(now, &until)
	if sub.Status != StatusActive || !sub.CancelAtPeriodEnd || sub.PaymentFailures != 0 || !sub.CurrentPeriodEnd.Equal(until) {
		t.Fatalf("granted until: %+v", sub)
	}
	if sub.Lapsed(until.Add(-time.Second)) || !sub.Lapsed(until) {
		t.Fatal("a granted period lapses at its end, not before")
	}
	sub.End()
	if sub.Status != StatusExpired {
		t.Fatalf("ended: %s", sub.Status)
	}

	sub.Granted(now, nil)
	if sub.CancelAtPeriodEnd || sub.CurrentPeriodEnd != nil || sub.Lapsed(now.AddDate(100, 0, 0)) {
		t.Fatalf("granted with no end: %+v", sub)
	}
	later := now.Add(time.Hour)
	if !sub.EndNow(later) || sub.Status != StatusExpired || !sub.CurrentPeriodEnd.Equal(later) {
		t.Fatalf("ended now: %+v", sub)
	}
	if sub.EndNow(later.Add(time.Hour)) || !sub.CurrentPeriodEnd.Equal(later) {
		t.Fatal("ending an ended subscription changed it")
	}
}
