package perks_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/gamification/perks"
)

type unlocked map[string]int

func (u unlocked) PerkBonus(_ context.Context, _ *gorm.DB, _ uuid.UUID, kind string) (int, error) {
	return u[kind], nil
}

// A module checking a limit asks for the effective one, in the transaction
// that creates: the tier's base plus what the user's achievements add (the
// gamification module provides perks.Bonus; without it, bonus is nil).
func ExampleLimit() {
	var bonus perks.Bonus = unlocked{perks.MaxTasks: 200}
	limit, _ := perks.Limit(context.Background(), nil, bonus, uuid.New(), perks.MaxTasks, 50)
	base, _ := perks.Limit(context.Background(), nil, nil, uuid.New(), perks.MaxTasks, 50)
	fmt.Println(limit, base)
	// Output: 250 50
}
