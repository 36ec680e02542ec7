package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/observability"
	"github.com/perpetuaflow/api/platform/safeurl"
)

// CodeTranscriptionUnavailable is the error code when audio cannot be
// transcribed now.
const CodeTranscriptionUnavailable = "TRANSCRIPTION_SERVICE_UNAVAILABLE"

// CodeAudioTooLong is the error code of audio over the allowed duration.
const CodeAudioTooLong = "AUDIO_DURATION_EXCEEDED"

var errSTTNotConfigured = apperr.New(apperr.KindUnavailable, CodeTranscriptionUnavailable,
	"transcription is not configured on this server: set DEEPGRAM_API_KEY (and DEEPGRAM_BASE_URL for another server)")

// transcriber is Deepgram's pre-recorded API: the audio is given by URL,
// Deepgram fetches it.
type transcriber struct {
	cfg      TranscriptionConfig
	client   *http.Client
	resolver safeurl.Resolver
	ok       bool
}

func newTranscriber(cfg Config) *transcriber {
	t := cfg.Transcription
	return &transcriber{cfg: t, client: &http.Client{Timeout: t.Timeout, Transport: observability.Outbound(nil, "deepgram")}, resolver: net.DefaultResolver, ok: t.APIKey != ""}
}

// transcript is what Deepgram heard.
type transcript struct {
	Text       string
	Language   string
	Confidence float64
	// Seconds is the audio's duration as Deepgram measured it (0 if not
	// reported).
	Seconds float64
}

// sttFailure is a failed transcription; Retry says whether trying again
// later may work (the service was down or busy).
type sttFailure struct {
	err   error
	Retry bool
}

func (f *sttFailure) Error() string { return f.err.Error() }
func (f *sttFailure) Unwrap() error { return f.err }

// retryable reports whether a failed transcription may work later.
func retryable(err error) bool {
	var f *sttFailure
	return errors.As(err, &f) && f.Retry
}

// deepgramAnswer is the part of Deepgram's pre-recorded answer we read.
type deepgramAnswer struct {
	Metadata struct {
		Duration float64 `json:"duration"`
	} `json:"metadata"`
	Results struct {
		Channels []struct {
			DetectedLanguage string `json:"detected_language"`
			Alternatives     []struct {
				Transcript string  `json:"transcript"`
				Confidence float64 `json:"confidence"`
			} `json:"alternatives"`
		} `json:"channels"`
	} `json:"results"`
}

type deepgramError struct {
	ErrCode string `json:"err_code"`
	ErrMsg  string `json:"err_msg"`
}

// transcribe asks Deepgram for the text of the audio at audioURL.
func (t *transcriber) transcribe(ctx context.Context, audioURL string) (*transcript, error) {
	if !t.ok {
		return nil, errSTTNotConfigured
	}
	q := url.Values{"model": {t.cfg.Model}, "smart_format": {"true"}, "detect_language": {"true"}}
	endpoint := strings.TrimRight(t.cfg.BaseURL, "/") + "/v1/listen?" + q.Encode()
	body, _ := json.Marshal(map[string]string{"url": audioURL})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &sttFailure{err: unavailable("the transcription service URL is invalid", err)}
	}
	req.Header.Set("Authorization", "Token "+t.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := t.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &sttFailure{err: unavailable("the transcription service took too long; nothing was charged", err), Retry: true}
		}
		return nil, &sttFailure{err: unavailable("the transcription service is unavailable; nothing was charged", err), Retry: true}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, &sttFailure{err: unavailable("the transcription service's answer was cut", err), Retry: true}
	}
	switch {
	case res.StatusCode == http.StatusOK:
	case res.StatusCode == http.StatusBadRequest:
		var e deepgramError
		_ = json.Unmarshal(raw, &e)
		msg := e.ErrMsg
		if msg == "" {
			msg = "the audio could not be fetched or decoded"
		}
		return nil, &sttFailure{err: apperr.Validation("audio_url", "the transcription service could not use this audio: %s", msg)}
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return nil, &sttFailure{err: unavailable("the transcription service is busy; nothing was charged, try again later",
			fmt.Errorf("status %d: %s", res.StatusCode, raw)), Retry: true}
	default: // 401, 402, 403: our key or account
		return nil, &sttFailure{err: unavailable("the transcription service refused this server's credentials",
			fmt.Errorf("status %d: %s", res.StatusCode, raw))}
	}
	var ans deepgramAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, &sttFailure{err: unavailable("the transcription service's answer could not be read", err), Retry: true}
	}
	out := &transcript{Seconds: ans.Metadata.Duration}
	if len(ans.Results.Channels) > 0 {
		ch := ans.Results.Channels[0]
		out.Language = ch.DetectedLanguage
		if len(ch.Alternatives) > 0 {
			out.Text, out.Confidence = ch.Alternatives[0].Transcript, ch.Alternatives[0].Confidence
		}
	}
	return out, nil
}

func unavailable(msg string, cause error) error {
	return fmt.Errorf("%w (%v)", apperr.New(apperr.KindUnavailable, CodeTranscriptionUnavailable, "%s", msg), cause)
}

// checkAudio checks an audio URL and duration before anything is charged
// or stored. The URL must be http(s) and must not name loopback,
// link-local, private or otherwise internal hosts (unless configured for
// development): the transcription service fetches it, and a self-hosted
// one would fetch it from inside our network.
func (t *transcriber) checkAudio(ctx context.Context, field, durationField, raw string, seconds int) error {
	if seconds > t.cfg.MaxSeconds {
		e := apperr.New(apperr.KindValidation, CodeAudioTooLong, "audio may be at most %d seconds long", t.cfg.MaxSeconds)
		e.Details = []apperr.FieldError{{Field: durationField, Message: fmt.Sprintf("must be at most %d", t.cfg.MaxSeconds)}}
		return e
	}
	if seconds < 1 {
		return apperr.Validation(durationField, "must be at least 1")
	}
	if t.cfg.AllowPrivateURLs {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return apperr.Validation(field, "must be an http or https URL")
		}
		return nil
	}
	if _, err := safeurl.Check(ctx, t.resolver, raw, "http", "https"); err != nil {
		return apperr.Validation(field, "%s", err.Error())
	}
	return nil
}
