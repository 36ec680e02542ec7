package account

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"slices"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Service holds the export and erasure rules.
type Service struct {
	db        *database.DB
	bus       *events.Bus
	clock     clock.Clock
	cfg       Config
	closing   auth.Closing
	exporters []userdata.Exporter
	erasers   []userdata.Eraser
	publicURL string
	log       *zap.Logger
}

type serviceIn struct {
	fx.In
	DB        *database.DB
	Bus       *events.Bus
	Clock     clock.Clock
	Cfg       Config
	AppCfg    *config.Config
	Closing   auth.Closing
	Exporters []userdata.Exporter `group:"exporters"`
	Erasers   []userdata.Eraser   `group:"erasers"`
	Log       *zap.Logger
}

func newService(in serviceIn) *Service {
	exporters := slices.Clone(in.Exporters)
	slices.SortFunc(exporters, func(a, b userdata.Exporter) int { return cmp.Compare(a.Name, b.Name) })
	erasers := slices.Clone(in.Erasers)
	slices.SortStableFunc(erasers, func(a, b userdata.Eraser) int {
		if a.Phase != b.Phase {
			return int(a.Phase) - int(b.Phase)
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return &Service{db: in.DB, bus: in.Bus, clock: in.Clock, cfg: in.Cfg, closing: in.Closing,
		exporters: exporters, erasers: erasers, publicURL: in.AppCfg.PublicBaseURL(), log: in.Log.Named("account")}
}

// newToken makes a download link's secret: 32 random bytes, hex.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather)
	return hex.EncodeToString(b)
}
