package ai

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/database"
	"github.com/perpetuaflow/api/platform/events"
)

// PurgeArgs drops the request counts of sign-in sessions and the task drafts
// of notes that have not been touched for ai.retention: a session whose
// refresh token has long expired asks nothing more, and a draft that old is
// not what the user remembers.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "ai_purge" }

func purgeJob(s *Service, cfg Config) (jobs.Worker, jobs.Periodic) {
	return jobs.NewHousekeeping[PurgeArgs](cfg.PurgeInterval, s.purge)
}

func (s *Service) purge(ctx context.Context) error {
	before := s.clock.Now().Add(-s.cfg.Retention)
	if _, err := database.DeleteInBatches[Session](ctx, s.db.Gorm, "session_id", "updated_at < ?", before); err != nil {
		return err
	}
	_, err := database.DeleteInBatches[Draft](ctx, s.db.Gorm, "note_id", "created_at < ?", before)
	return err
}

// TranscribeNoteArgs transcribes one voice note.
type TranscribeNoteArgs struct {
	NoteID uuid.UUID `json:"note_id"`
	UserID uuid.UUID `json:"user_id"`
}

// Kind implements river.JobArgs.
func (TranscribeNoteArgs) Kind() string { return "transcribe_note" }

type transcribeWorker struct {
	river.WorkerDefaults[TranscribeNoteArgs]
	s *Service
}

func newTranscribeWorker(s *Service) jobs.Worker {
	return jobs.NewWorker[TranscribeNoteArgs](&transcribeWorker{s: s})
}

// NextRetry backs off from the configured delay, doubling.
func (w *transcribeWorker) NextRetry(job *river.Job[TranscribeNoteArgs]) time.Time {
	return time.Now().Add(w.s.cfg.Transcription.RetryBackoff << min(job.Attempt-1, 10))
}

// Timeout leaves the transcription service its own timeout, and a little
// for writing the outcome. A run its worker never finished (killed) is
// rescued once it has been running for the longer of this and
// jobs.rescue_after.
func (w *transcribeWorker) Timeout(*river.Job[TranscribeNoteArgs]) time.Duration {
	return w.s.cfg.Transcription.Timeout + 10*time.Second
}

// Work transcribes the note and, in one transaction, writes the text,
// settles the credits held for it and completes the job: run twice (a
// worker killed after the transcription, before its commit), it
// transcribes and charges once. A failure the service may recover from is
// retried until transcription.max_attempts runs have tried; then, or at
// once for a failure that retrying cannot fix, the note is marked failed
// and its hold released. The job has one attempt more than that, for a run
// a dead worker interrupted: a crash during the last try still ends in a
// transcription or a failure, never a note pending for ever.
func (w *transcribeWorker) Work(ctx context.Context, job *river.Job[TranscribeNoteArgs]) error {
	s := w.s
	ctx = events.WithSource(ctx, events.SourceSystem)
	args := job.Args
	log := s.log.With(zap.String("note_id", args.NoteID.String()), zap.Int("attempt", job.Attempt))
	note, err := s.notes.Note(ctx, s.db.WithContext(ctx), args.UserID, args.NoteID)
	if apperr.Is(err, apperr.CodeNotFound) || (err == nil && (note.VoiceURL == nil || note.TranscriptionStatus == nil ||
		*note.TranscriptionStatus != notes.TranscriptionPending)) {
		return s.finishVoice(ctx, job, "", false, 0) // deleted or done: nothing to do
	}
	if err != nil {
		return err
	}
	tr, err := s.stt.transcribe(ctx, *note.VoiceURL)
	if err == nil {
		err = s.stt.tooLong(tr)
	}
	if err != nil {
		if retryable(err) && job.Attempt < s.cfg.Transcription.MaxAttempts {
			log.Warn("transcription failed; will retry", zap.Error(err))
			return err
		}
		log.Warn("transcription failed", zap.Error(err))
		s.metrics.transcriptions.WithLabelValues("failed").Inc()
		return s.finishVoice(ctx, job, "", false, 0)
	}
	given := 0
	if note.VoiceDurationSeconds != nil {
		given = *note.VoiceDurationSeconds
	}
	err = s.finishVoice(ctx, job, tr.Text, true, costOf(s.cfg, billedSeconds(given, tr)))
	if apperr.Is(err, billing.CodeInsufficientCredits) {
		log.Info("transcription not paid: not enough credits")
		s.metrics.transcriptions.WithLabelValues("unpaid").Inc()
		return s.finishVoice(ctx, job, "", false, 0)
	}
	if err == nil {
		s.metrics.transcriptions.WithLabelValues("completed").Inc()
	}
	return err
}
