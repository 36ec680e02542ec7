package billing_test

import (
	"fmt"
	"time"

	"github.com/perpetuaflow/api/modules/billing"
)

// A subscription's transitions are its methods: the service locks the row,
// calls one, saves and publishes.
func ExampleSubscription() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var sub billing.Subscription
	sub.PeriodPaid(now)
	for range 3 {
		sub.PaymentDeclined(now, 3, 7*24*time.Hour)
	}
	fmt.Println(sub.Status, sub.GraceUntil.Format(time.DateOnly))
	fmt.Println(sub.Lapsed(now.AddDate(0, 0, 7)))
	// Output:
	// grace 2026-01-08
	// true
}
