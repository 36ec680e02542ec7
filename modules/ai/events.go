package ai

import (
	"context"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/events"
)

// The module publishes no events of its own; it subscribes to these.

// queueTranscriptions holds a voice note's cost (402 when the balance is
// short: the note is not stored) and schedules its transcription, in the
// transaction that stores the note: the job and the hold exist exactly
// when the note does. The hold's id is the note's.
func queueTranscriptions(q jobs.Enqueuer, credits billing.Credits, clk clock.Clock, cfg Config) events.Subscription {
	return events.On("queue transcription", func(ctx context.Context, tx *gorm.DB, e notes.VoiceNoteAdded) error {
		cost := costOf(cfg, float64(e.Seconds))
		until := clk.Now().Add(cfg.Transcription.HoldTTL)
		if _, err := credits.Hold(ctx, tx, e.UserID, e.NoteID, cost, "voice note transcription", until); err != nil {
			return err
		}
		_, err := q.InsertTx(ctx, tx, TranscribeNoteArgs{NoteID: e.NoteID, UserID: e.UserID},
			&river.InsertOpts{MaxAttempts: cfg.Transcription.MaxAttempts + 1})
		return err
	})
}
