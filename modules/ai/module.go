// Package ai is the assistant: chat (JSON and streamed), subtask
// suggestions, note-to-task drafts, and the actions the user confirms. It
// talks to any OpenAI-compatible chat-completions endpoint, pays with AI
// credits through the billing module in the transaction of the answer, and
// counts the requests of each sign-in session.
package ai

import (
	"time"

	"go.uber.org/fx"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/platform"
	"github.com/perpetuaflow/api/platform/config"
	"github.com/perpetuaflow/api/platform/events"
	"github.com/perpetuaflow/api/platform/userdata"
)

// Module is the ai module; it acts through the tasks and notes modules'
// faces, pays through the billing module, and gives the notes module its
// Transcriber and Converter.
var Module = platform.Module{
	Name:  "ai",
	Needs: []string{"tasks", "notes", "billing"},
	Option: fx.Module("ai",
		userdata.Contribute(
			userdata.Table("ai_sessions", "ai_sessions", "user_id"),
			userdata.Table("ai_note_drafts", "ai_note_drafts", "user_id"),
		),
		fx.Provide(
			newConfig,
			newProvider,
			newTranscriber,
			newMetrics,
			newService,
			newVoiceQueue,
			func(s *Service) notes.Converter { return s },
			platform.AsRoutes(newHandlers),
			platform.AsModels(models),
			jobs.AsWorker(newTranscribeWorker),
			events.AsSubscriber(queueTranscriptions),
			jobs.AsHousekeeping(purgeJob),
		),
	),
}

// Costs are the credits each kind of request costs.
type Costs struct {
	Chat                   int `mapstructure:"chat"`
	Subtasks               int `mapstructure:"subtasks"`
	Convert                int `mapstructure:"convert"`
	TranscriptionPerMinute int `mapstructure:"transcription_per_minute"`
}

// TranscriptionConfig is the speech-to-text provider (Deepgram's
// pre-recorded API).
type TranscriptionConfig struct {
	APIKey      string        `mapstructure:"api_key"`
	BaseURL     string        `mapstructure:"base_url"`
	Model       string        `mapstructure:"model"`
	Timeout     time.Duration `mapstructure:"timeout"`
	MaxAttempts int           `mapstructure:"max_attempts"`
	// RetryBackoff is the wait before the second attempt; it doubles.
	RetryBackoff time.Duration `mapstructure:"retry_backoff"`
	MaxSeconds   int           `mapstructure:"max_seconds"`
	// HoldTTL is how long a voice note's credits stay held for its
	// transcription job (through its retries and a crashed worker's rescue)
	// before credit_hold_release gives them back.
	HoldTTL time.Duration `mapstructure:"hold_ttl"`
	// AllowPrivateURLs lets audio URLs name loopback, link-local and private
	// hosts (development with a local audio server only).
	AllowPrivateURLs bool `mapstructure:"allow_private_urls"`
}

// Config is the ai section, with the tier limits and the due-date horizon
// the assistant's drafts must respect.
type Config struct {
	APIKey             string              `mapstructure:"api_key"`
	BaseURL            string              `mapstructure:"base_url"`
	Model              string              `mapstructure:"model"`
	Timeout            time.Duration       `mapstructure:"timeout"`
	SessionRequests    int                 `mapstructure:"session_requests"`
	WarnWhenLeft       int                 `mapstructure:"warn_when_left"`
	TaskLimit          int                 `mapstructure:"task_limit"`
	MaxActions         int                 `mapstructure:"max_actions"`
	StreamHeartbeat    time.Duration       `mapstructure:"stream_heartbeat"`
	StreamWriteTimeout time.Duration       `mapstructure:"stream_write_timeout"`
	HoldTTL            time.Duration       `mapstructure:"hold_ttl"`
	Retention          time.Duration       `mapstructure:"retention"`
	PurgeInterval      time.Duration       `mapstructure:"purge_interval"`
	Costs              Costs               `mapstructure:"costs"`
	Transcription      TranscriptionConfig `mapstructure:"transcription"`

	Tiers           config.Tiered[TierLimits] `mapstructure:"-"`
	MaxDueDaysAhead int                       `mapstructure:"-"`
}

// TierLimits are the limits of one tier that the assistant respects.
type TierLimits struct {
	Suggestions    int  `mapstructure:"ai_subtask_suggestions"`
	MaxSubtasks    int  `mapstructure:"max_subtasks"`
	MaxDescription int  `mapstructure:"max_description_length"`
	Voice          bool `mapstructure:"voice_notes"`
}

// Validate checks the section.
func (c Config) Validate() error {
	t := c.Transcription
	switch {
	case c.Model == "":
		return config.Invalid("model", "must not be empty")
	case c.Timeout <= 0:
		return config.Invalid("timeout", "must be positive")
	case c.SessionRequests < 1:
		return config.Invalid("session_requests", "must be at least 1")
	case c.WarnWhenLeft < 0:
		return config.Invalid("warn_when_left", "must not be negative")
	case c.TaskLimit < 1 || c.TaskLimit > 50:
		return config.Invalid("task_limit", "must be 1-50")
	case c.MaxActions < 0:
		return config.Invalid("max_actions", "must not be negative")
	case c.StreamHeartbeat <= 0:
		return config.Invalid("stream_heartbeat", "must be positive")
	case c.StreamWriteTimeout <= 0:
		return config.Invalid("stream_write_timeout", "must be positive")
	case c.HoldTTL < 2*c.Timeout+c.StreamWriteTimeout:
		// A request may call the provider twice (an unusable answer is asked
		// for again), and a stream may wait on a slow client: the hold must
		// outlive them, or a live request would find its hold given back.
		return config.Invalid("hold_ttl", "must be at least twice timeout plus stream_write_timeout (%s)", 2*c.Timeout+c.StreamWriteTimeout)
	case c.Retention < 24*time.Hour:
		return config.Invalid("retention", "must be at least 24h (longer than a sign-in session's life)")
	case c.PurgeInterval <= 0:
		return config.Invalid("purge_interval", "must be positive")
	case c.Costs.Chat < 0 || c.Costs.Subtasks < 0 || c.Costs.Convert < 0 || c.Costs.TranscriptionPerMinute < 0:
		return config.Invalid("costs", "must not be negative")
	case t.Model == "":
		return config.Invalid("transcription.model", "must not be empty")
	case t.Timeout <= 0:
		return config.Invalid("transcription.timeout", "must be positive")
	case t.MaxAttempts < 1:
		return config.Invalid("transcription.max_attempts", "must be at least 1")
	case t.RetryBackoff <= 0:
		return config.Invalid("transcription.retry_backoff", "must be positive")
	case t.MaxSeconds < 1:
		return config.Invalid("transcription.max_seconds", "must be at least 1")
	case t.HoldTTL < time.Duration(t.MaxAttempts+1)*(t.Timeout+t.RetryBackoff<<min(t.MaxAttempts, 10)):
		return config.Invalid("transcription.hold_ttl", "must outlast every attempt and its backoff (at least %s)",
			time.Duration(t.MaxAttempts+1)*(t.Timeout+t.RetryBackoff<<min(t.MaxAttempts, 10)))
	}
	return nil
}

func newConfig(cfg *config.Config) (Config, error) {
	var c Config
	if err := cfg.Section("ai", &c); err != nil {
		return c, err
	}
	var err error
	if c.Tiers, err = config.LoadTiered[TierLimits](cfg, "limits", auth.TierFree); err != nil {
		return c, err
	}
	var t struct {
		MaxDueDaysAhead int `mapstructure:"max_due_days_ahead"`
	}
	err = cfg.Section("tasks", &t)
	c.MaxDueDaysAhead = t.MaxDueDaysAhead
	return c, err
}

func models() platform.Models {
	return platform.Models{Module: "ai", List: []any{&Session{}, &Draft{}}}
}
