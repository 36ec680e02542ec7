package billing

import (
	"context"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/changes"
)

// The billing module's entities in the live stream (not synced): the
// user's subscription and credit balance, by the user's id, in the shapes
// of GET /subscription and GET /credits/balance.

func subscriptionEntity(s *Service) changes.Entity {
	return changes.Entity{Name: "subscription",
		Load: func(ctx context.Context, userID uuid.UUID, _ []string) (map[string]any, error) {
			p, err := s.users.Principal(ctx, s.db.WithContext(ctx), userID)
			if err != nil {
				return map[string]any{}, nil // gone with its user
			}
			v, err := s.Subscription(ctx, p)
			if err != nil {
				return nil, err
			}
			return map[string]any{userID.String(): toSubscriptionDTO(v)}, nil
		}}
}

func creditsEntity(l *Ledger) changes.Entity {
	return changes.Entity{Name: "credits",
		Load: func(ctx context.Context, userID uuid.UUID, _ []string) (map[string]any, error) {
			b, err := l.CurrentBalance(ctx, userID)
			if err != nil {
				return nil, err
			}
			return map[string]any{userID.String(): toBalanceDTO(b)}, nil
		}}
}
