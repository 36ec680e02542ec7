package ai

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/billing"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/clock"
	"github.com/perpetuaflow/api/platform/events"
)

// costOf is the credits of seconds of audio: a rate per started minute.
func costOf(cfg Config, seconds float64) int {
	minutes := int(seconds) / 60
	if float64(minutes*60) < seconds {
		minutes++
	}
	return max(minutes, 1) * cfg.Costs.TranscriptionPerMinute
}

// billedSeconds is the duration a transcription is paid for: the one the
// client gave, or the one the service measured when longer.
func billedSeconds(given int, tr *transcript) float64 {
	return max(float64(given), tr.Seconds)
}

// tooLong is the check of the measured duration: a client that gave a
// short duration for a long recording is refused (and not charged).
func (t *transcriber) tooLong(tr *transcript) error {
	if tr.Seconds > float64(t.cfg.MaxSeconds)+1 {
		return apperr.New(apperr.KindValidation, CodeAudioTooLong,
			"the audio is %.0f seconds long; at most %d are allowed", tr.Seconds, t.cfg.MaxSeconds)
	}
	return nil
}

// voiceQueue is the notes module's Transcriber: it admits voice notes. It
// needs nothing of the notes module, which depends on it.
type voiceQueue struct {
	stt *transcriber
}

func newVoiceQueue(stt *transcriber) notes.Transcriber { return &voiceQueue{stt: stt} }

// Admit implements notes.Transcriber: the audio's URL and duration, and
// that transcription is configured. The credits are held when the note is
// stored (queueTranscriptions).
func (v *voiceQueue) Admit(ctx context.Context, _ auth.Principal, audioURL string, seconds int) error {
	if err := v.stt.checkAudio(ctx, "voice_url", "voice_duration_seconds", audioURL, seconds); err != nil {
		return err
	}
	if !v.stt.ok {
		return errSTTNotConfigured
	}
	return nil
}

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

// finishVoice writes the outcome of a voice note's transcription, settles
// its hold for cost when it succeeded (releases it otherwise), and
// completes the job, in one transaction.
func (s *Service) finishVoice(ctx context.Context, job *river.Job[TranscribeNoteArgs], text string, ok bool, cost int) error {
	args := job.Args
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		applied, err := s.notes.FinishTranscription(ctx, tx, args.UserID, args.NoteID, text, ok)
		if err != nil {
			return err
		}
		if applied && ok {
			_, err = s.credits.Settle(ctx, tx, args.UserID, args.NoteID, cost, "voice note transcription")
		} else {
			// Failed, or the note is gone: nothing is charged (a note done
			// already has no open hold left to release).
			_, err = s.credits.Release(ctx, tx, args.UserID, args.NoteID)
		}
		if err != nil {
			return err
		}
		return jobs.CompleteTx(ctx, tx, job)
	})
}

// Transcription is the answer of /ai/transcribe.
type Transcription struct {
	Text             string
	Language         string
	Confidence       float64
	CreditsUsed      int
	CreditsRemaining int
	Warning          bool
}

// Transcribe transcribes audio at once (Pro): checked and admitted for the
// given duration, charged for the longer of it and the measured one.
func (s *Service) Transcribe(ctx context.Context, p auth.Principal, audioURL string, seconds int) (_ *Transcription, err error) {
	if !s.cfg.Tiers.For(p.Tier).Voice {
		return nil, apperr.New(apperr.KindForbidden, CodeTierRequired, "transcription is a Pro feature")
	}
	if err := s.stt.checkAudio(ctx, "audio_url", "duration_seconds", audioURL, seconds); err != nil {
		return nil, err
	}
	if !s.stt.ok {
		return nil, errSTTNotConfigured
	}
	a, err := s.admit(ctx, p, "transcribe", costOf(s.cfg, float64(seconds)))
	if err != nil {
		return nil, err
	}
	defer func() { a.end(ctx, err) }()
	tr, err := s.stt.transcribe(ctx, audioURL)
	if err == nil {
		err = s.stt.tooLong(tr)
	}
	if err != nil {
		return nil, err
	}
	a.cost = costOf(s.cfg, billedSeconds(seconds, tr))
	bal, err := a.pay(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Transcription{Text: tr.Text, Language: tr.Language, Confidence: tr.Confidence, CreditsUsed: a.cost,
		CreditsRemaining: bal.Total(), Warning: a.warning()}, nil
}
