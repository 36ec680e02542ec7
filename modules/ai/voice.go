package ai

import (
	"context"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/perpetuaflow/api/modules/auth"
	"github.com/perpetuaflow/api/modules/jobs"
	"github.com/perpetuaflow/api/modules/notes"
	"github.com/perpetuaflow/api/platform/apperr"
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
