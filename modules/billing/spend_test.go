package billing

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm/schema"
)

// TestASpendTakesTheKindsInOrderAndTheOldestLotFirst: the spending order
// (daily, subscription, granted, purchased, kickstart), without a database.
func TestASpendTakesTheKindsInOrderAndTheOldestLotFirst(t *testing.T) {
	book := func() lots {
		return lots{
			{Kind: KindPurchased, Description: "p1", Remaining: 10},
			{Kind: KindKickstart, Description: "k1", Remaining: 5},
			{Kind: KindDaily, Description: "d1", Remaining: 2},
			{Kind: KindPurchased, Description: "p2", Remaining: 10},
			{Kind: KindSubscription, Description: "s1", Remaining: 0},
			{Kind: KindSubscription, Description: "s2", Remaining: 3},
			{Kind: KindGranted, Description: "g1", Remaining: 4},
		}
	}
	show := func(ts []lotTake) string {
		s := ""
		for _, t := range ts {
			s += fmt.Sprintf("%s:%d ", t.lot.Description, t.n)
		}
		return s
	}
	for _, c := range []struct {
		amount int
		want   string
	}{
		{0, ""},
		{1, "d1:1 "},
		{2, "d1:2 "},
		{4, "d1:2 s2:2 "},
		{7, "d1:2 s2:3 g1:2 "},
		{19, "d1:2 s2:3 g1:4 p1:10 "},
		{20, "d1:2 s2:3 g1:4 p1:10 p2:1 "},
		{34, "d1:2 s2:3 g1:4 p1:10 p2:10 k1:5 "},
	} {
		ls := book()
		if got := show(ls.plan(c.amount)); got != c.want {
			t.Errorf("%d: %q, want %q", c.amount, got, c.want)
		}
		for _, g := range ls {
			if g.Remaining != book()[indexOf(book(), g.Description)].Remaining {
				t.Errorf("%d: planning changed lot %s", c.amount, g.Description)
			}
		}
	}
}

func indexOf(ls lots, desc string) int {
	for i, g := range ls {
		if g.Description == desc {
			return i
		}
	}
	return -1
}

// TestTheLedgersWritesNameEveryColumn: the statement that writes a ledger
// row on PostgreSQL lists the columns by hand; a field added to Entry
// without it fails here.
func TestTheLedgersWritesNameEveryColumn(t *testing.T) {
	s, err := schema.Parse(&Entry{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := entryColumns, strings.Join(s.DBNames, ", "); got != want {
		t.Fatalf("the ledger's writes name\n%s\nEntry has\n%s", got, want)
	}
}
