package perks_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/gamification/perks"
)

type fixed map[string]int

func (f fixed) PerkBonus(_ context.Context, _ *gorm.DB, _ uuid.UUID, kind string) (int, error) {
	if kind == "broken" {
		return 0, errors.New("no table")
	}
	return f[kind], nil
}

func TestALimitIsTheBasePlusTheBonusOfItsKind(t *testing.T) {
	ctx, user := context.Background(), uuid.New()
	b := fixed{perks.MaxTasks: 10, perks.DailyCredits: 3}
	for _, c := range []struct {
		bonus perks.Bonus
		kind  string
		want  int
	}{
		{nil, perks.MaxTasks, 50},
		{b, perks.MaxTasks, 60},
		{b, perks.MaxNotes, 50},
		{b, perks.DailyCredits, 53},
	} {
		if got, err := perks.Limit(ctx, nil, c.bonus, user, c.kind, 50); err != nil || got != c.want {
			t.Errorf("%s with %v: %d, %v; want %d", c.kind, c.bonus, got, err, c.want)
		}
	}
	if _, err := perks.Limit(ctx, nil, b, user, "broken", 50); err == nil {
		t.Error("a failed read of the bonus gave a limit")
	}
}
