// Package httpx is the HTTP edge shared by every module: the error envelope
// and the one mapping from service errors to status codes, the list and
// object envelopes, operation metadata and request-scoped values.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/apperr"
	"github.com/perpetuaflow/api/platform/observability"
)

// ErrorEnvelope is the body of every failed request:
// {"error": {"code", "message", "details", "request_id"}}.
type ErrorEnvelope struct {
	Err ErrorObject `json:"error"`

	status  int
	headers http.Header
}

// ErrorObject is the inside of the envelope.
type ErrorObject struct {
	Code      string              `json:"code" example:"VALIDATION_ERROR" doc:"Stable machine-readable code"`
	Message   string              `json:"message" doc:"Human-readable explanation"`
	Details   []apperr.FieldError `json:"details" doc:"Invalid fields (validation errors); empty otherwise"`
	RequestID string              `json:"request_id" doc:"Id of the request, also in the X-Request-ID header"`
}

// Error implements error.
func (e *ErrorEnvelope) Error() string { return e.Err.Code + ": " + e.Err.Message }

// GetStatus implements huma.StatusError.
func (e *ErrorEnvelope) GetStatus() int { return e.status }

// GetHeaders implements huma.HeadersError (Retry-After).
func (e *ErrorEnvelope) GetHeaders() http.Header { return e.headers }

var statusOfKind = map[apperr.Kind]int{
	apperr.KindInternal:        http.StatusInternalServerError,
	apperr.KindValidation:      http.StatusBadRequest,
	apperr.KindUnauthorized:    http.StatusUnauthorized,
	apperr.KindPaymentRequired: http.StatusPaymentRequired,
	apperr.KindForbidden:       http.StatusForbidden,
	apperr.KindNotFound:        http.StatusNotFound,
	apperr.KindConflict:        http.StatusConflict,
	apperr.KindTooLarge:        http.StatusRequestEntityTooLarge,
	apperr.KindTooManyRequests: http.StatusTooManyRequests,
	apperr.KindUnavailable:     http.StatusServiceUnavailable,
}

// FromAppError builds the envelope for a service error.
func FromAppError(e *apperr.Error, requestID string) *ErrorEnvelope {
	env := newEnvelope(statusOfKind[e.Kind], e.Code, e.Message, requestID)
	if len(e.Details) > 0 {
		env.Err.Details = e.Details
	}
	if e.RetryAfter > 0 {
		secs := int(e.RetryAfter.Seconds())
		if secs < 1 {
			secs = 1
		}
		env.headers = http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
	}
	return env
}

func newEnvelope(status int, code, msg, requestID string) *ErrorEnvelope {
	return &ErrorEnvelope{
		status: status,
		Err:    ErrorObject{Code: code, Message: msg, Details: []apperr.FieldError{}, RequestID: requestID},
	}
}

// codeForStatus names the envelope code of a status that no service error
// chose (framework-level failures).
func codeForStatus(status int) (int, string) {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType:
		return http.StatusBadRequest, apperr.CodeValidation
	case http.StatusUnauthorized:
		return status, apperr.CodeUnauthorized
	case http.StatusForbidden:
		return status, apperr.CodeForbidden
	case http.StatusNotFound:
		return status, apperr.CodeNotFound
	case http.StatusMethodNotAllowed:
		return status, "METHOD_NOT_ALLOWED"
	case http.StatusNotAcceptable:
		return status, "NOT_ACCEPTABLE"
	case http.StatusConflict:
		return status, apperr.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return status, apperr.CodePayloadTooLarge
	case http.StatusRequestHeaderFieldsTooLarge:
		return status, "REQUEST_HEADERS_TOO_LARGE"
	case http.StatusRequestURITooLong:
		return status, "URI_TOO_LONG"
	case http.StatusRequestTimeout:
		return status, "REQUEST_TIMEOUT"
	case http.StatusTooManyRequests:
		return status, apperr.CodeRateLimited
	case http.StatusServiceUnavailable:
		return status, "SERVICE_UNAVAILABLE"
	}
	return http.StatusInternalServerError, apperr.CodeInternal
}

// InstallHumaErrors makes Huma produce our envelope for every error it
// reports: validation (400, never 422), body too large (413), and errors
// returned by handlers, which are mapped through apperr. Unknown errors become
// a logged 500 that reveals nothing but the request id.
func InstallHumaErrors(fallback *zap.Logger) {
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		ctx := context.Background()
		if hctx != nil {
			ctx = hctx.Context()
		}
		return mapError(ctx, fallback, status, msg, errs...)
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return mapError(context.Background(), fallback, status, msg, errs...)
	}
}

func mapError(ctx context.Context, fallback *zap.Logger, status int, msg string, errs ...error) huma.StatusError {
	requestID := observability.RequestID(ctx)
	for _, err := range errs {
		if env, ok := err.(*ErrorEnvelope); ok {
			return env
		}
		if ae, ok := apperr.As(err); ok {
			if ae.Kind == apperr.KindInternal {
				observability.Logger(ctx, fallback).Error("internal error", zap.Error(err))
			}
			return FromAppError(ae, requestID)
		}
		if errors.Is(err, context.DeadlineExceeded) && status >= 500 {
			return newEnvelope(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "the request timed out", requestID)
		}
	}
	status, code := codeForStatus(status)
	if status == http.StatusInternalServerError {
		if len(errs) > 0 || msg != "" {
			observability.Logger(ctx, fallback).Error("internal error", zap.String("reason", msg), zap.Errors("errors", errs))
		}
		return newEnvelope(status, code, "an unexpected error occurred", requestID)
	}
	env := newEnvelope(status, code, humanMessage(status, msg), requestID)
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d *huma.ErrorDetail
		if errors.As(err, &d) {
			env.Err.Details = append(env.Err.Details, apperr.FieldError{Field: fieldOf(d), Message: d.Message})
		} else {
			env.Err.Details = append(env.Err.Details, apperr.FieldError{Field: "", Message: err.Error()})
		}
	}
	if code == apperr.CodeValidation && len(env.Err.Details) > 0 {
		first := env.Err.Details[0]
		if first.Field != "" {
			env.Err.Message = first.Field + ": " + first.Message
		} else {
			env.Err.Message = first.Message
		}
	}
	return env
}

func humanMessage(status int, msg string) string {
	if msg == "" {
		return strings.ToLower(http.StatusText(status))
	}
	return msg
}

// fieldOf names the field of a validation detail. A missing property is
// reported by Huma on its parent object; the field is the property itself.
func fieldOf(d *huma.ErrorDetail) string {
	field := fieldName(d.Location)
	var prop string
	if _, err := fmt.Sscanf(d.Message, "expected required property %s to be present", &prop); err == nil && prop != "" {
		if field == "" || field == "body" {
			return prop
		}
		return field + "." + prop
	}
	return field
}

// fieldName turns Huma's location ("body.title", "query.limit", "path.id",
// "body.items[1].name") into the field the client sent.
func fieldName(loc string) string {
	for _, p := range []string{"body.", "query.", "path.", "header.", "cookie."} {
		if strings.HasPrefix(loc, p) {
			return strings.TrimPrefix(loc, p)
		}
	}
	return loc
}

// WriteFiberError writes the envelope on a Fiber context: for failures that
// happen outside Huma (unknown routes, oversize bodies, panics).
func WriteFiberError(c *fiber.Ctx, env *ErrorEnvelope) error {
	for k, vs := range env.headers {
		for _, v := range vs {
			c.Set(k, v)
		}
	}
	return c.Status(env.status).JSON(env)
}

// FiberErrorHandler is Fiber's ErrorHandler: every error that reaches Fiber
// leaves as the envelope. Requests the HTTP parser refused (malformed, head
// too large) never reached the middleware: they get a plain message (never
// the parser's own, which quotes the raw request) and their own log line.
func FiberErrorHandler(log *zap.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		requestID, _ := c.Locals(localRequestID).(string)
		unparsed := requestID == ""
		if unparsed {
			requestID = c.Get(fiber.HeaderXRequestID)
			if !SaneRequestID(requestID) {
				requestID = NewRequestID()
			}
			c.Set(fiber.HeaderXRequestID, requestID)
		}
		var env *ErrorEnvelope
		var fe *fiber.Error
		switch {
		case errors.As(err, &env):
		case errors.As(err, &fe):
			status, code := codeForStatus(fe.Code)
			msg := fe.Message
			switch {
			case status == http.StatusNotFound:
				msg = "no route for " + c.Method() + " " + c.Path()
			case status == http.StatusRequestEntityTooLarge:
				msg = "request body is too large"
			case status == http.StatusRequestHeaderFieldsTooLarge:
				msg = "request line and headers are too large"
			case status == http.StatusInternalServerError:
				log.Error("internal error", zap.String("request_id", requestID), zap.Error(err))
				msg = "an unexpected error occurred"
			case unparsed:
				msg = "malformed HTTP request"
			}
			env = newEnvelope(status, code, msg, requestID)
		default:
			if ae, ok := apperr.As(err); ok {
				env = FromAppError(ae, requestID)
				break
			}
			log.Error("internal error", zap.String("request_id", requestID), zap.Error(err))
			env = newEnvelope(http.StatusInternalServerError, apperr.CodeInternal, "an unexpected error occurred", requestID)
		}
		env.Err.RequestID = requestID
		if unparsed {
			log.Info("request refused by the HTTP parser", zap.String("request_id", requestID),
				zap.Int("status", env.status), zap.String("ip", c.Context().RemoteIP().String()), zap.Error(err))
		}
		return WriteFiberError(c, env)
	}
}

// WriteError writes err as the envelope from inside a Huma middleware,
// including headers such as Retry-After.
func WriteError(api huma.API, hctx huma.Context, err error) {
	se := huma.NewErrorWithContext(hctx, http.StatusInternalServerError, "", err)
	var he huma.HeadersError
	if errors.As(se, &he) {
		for k, vs := range he.GetHeaders() {
			for _, v := range vs {
				hctx.SetHeader(k, v)
			}
		}
	}
	_ = huma.WriteErr(api, hctx, se.GetStatus(), "", se)
}
