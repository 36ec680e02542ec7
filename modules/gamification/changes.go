package gamification

import (
	"context"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/database"
)

// The gamification module's entities in the live stream and sync, in their
// REST shapes.

func focusEntity(db *database.DB) changes.Entity {
	e := changes.Rows(db.Gorm, "focus_session", "id", func(fs *FocusSession) string { return fs.ID.String() }, toFocusDTO, "")
	e.All = nil // streamed, not synced
	return e
}

// achievementEntity: an unlocked achievement, by its code, as the catalog
// describes it.
func achievementEntity(db *database.DB, s *Service) changes.Entity {
	return changes.Entity{Name: "achievement",
		Load: func(ctx context.Context, userID uuid.UUID, ids []string) (map[string]any, error) {
			var rows []UserAchievement
			err := db.WithContext(ctx).Where("user_id = ? AND achievement_code IN ?", userID, ids).Find(&rows).Error
			out := map[string]any{}
			for _, r := range rows {
				if a, ok := s.byCode[r.AchievementCode]; ok {
					out[r.AchievementCode] = toAchievementDTO(&a)
				}
			}
			return out, err
		}}
}

// statsEntity: the user's stats (one, by the user's id).
func statsEntity(db *database.DB) changes.Entity {
	load := func(ctx context.Context, userID uuid.UUID) (map[string]any, error) {
		var st Stats
		err := db.WithContext(ctx).Where("user_id = ?", userID).Take(&st).Error
		if database.IsNotFound(err) {
			return map[string]any{}, nil
		}
		return map[string]any{userID.String(): toStatsDTO(&Profile{Stats: st})}, err
	}
	return changes.Entity{Name: "stats",
		Load: func(ctx context.Context, userID uuid.UUID, _ []string) (map[string]any, error) {
			return load(ctx, userID)
		},
		All: func(ctx context.Context, userID uuid.UUID, emit func(string, any) error) error {
			m, err := load(ctx, userID)
			for id, v := range m {
				if err := emit(id, v); err != nil {
					return err
				}
			}
			return err
		}}
}
