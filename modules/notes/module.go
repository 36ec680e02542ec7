// Package notes owns text and voice notes: their limits, archiving, notes
// attached to tasks (which go to and come back from the task's tombstone),
// and the route of note-to-task conversion (done by the ai module's
// Converter).
package notes

import (
	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/recovery"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/changes"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the notes module; notes hang on tasks and deleted ones go to the
// recovery module's bin.
var Module = platform.Module{
	Name:  "notes",
	Needs: []string{"tasks", "recovery"},
	Option: fx.Module("notes",
		userdata.Contribute(
			userdata.Table("notes", "notes", "user_id"),
		),
		fx.Provide(
			newConfig,
			newService,
			platform.AsRoutes(newHandlers),
			changes.AsEntity(noteEntity),
			platform.AsModels(models),
			events.AsSubscriber(buryWithTask),
			events.AsSubscriber(recoverWithTask),
			recovery.AsRecoverer(newRecoverer),
			func(s *Service) Notes { return s },
		),
	),
}

// TierLimits are the limits of one tier that notes enforce.
type TierLimits struct {
	MaxNotes      int  `mapstructure:"max_notes"`
	MaxNoteLength int  `mapstructure:"max_note_length"`
	VoiceNotes    bool `mapstructure:"voice_notes"`
}

// Validate checks one tier's limits.
func (l TierLimits) Validate() error {
	switch {
	case l.MaxNotes < 1:
		return config.Invalid("max_notes", "must be at least 1")
	case l.MaxNoteLength < 1:
		return config.Invalid("max_note_length", "must be at least 1")
	}
	return nil
}

// Config holds the tier limits by tier name.
type Config struct {
	Tiers config.Tiered[TierLimits]
}

func newConfig(cfg *config.Config) (Config, error) {
	tiers, err := config.LoadTiered[TierLimits](cfg, "limits", auth.TierFree)
	return Config{Tiers: tiers}, err
}

func (c Config) limits(tier string) TierLimits { return c.Tiers.For(tier) }

func models() platform.Models {
	return platform.Models{Module: "notes", List: []any{&Note{}}}
}
