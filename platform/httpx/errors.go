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
	"github.com/danielgtaylor/huma/v2/validation"
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
	TraceID   string              `json:"trace_id,omitempty" doc:"Id of the request's trace, when tracing is on"`
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
	apperr.KindGone:            http.StatusGone,
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

// Huma produces our envelope for every error it reports: validation (400,
// never 422), body too large (413), and errors returned by handlers, which
// are mapped through apperr. Unknown errors become a logged 500 that reveals
// nothing but the request id. Huma keeps these hooks in package variables,
// so they are set once, when this package loads, and never by an app's
// start: several apps (tests in parallel) can run in one process. Errors are
// logged with the request's logger; zap's global logger stands in outside a
// request.
func init() {
	installMessages()
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		ctx := context.Background()
		if hctx != nil {
			ctx = hctx.Context()
		}
		return mapError(ctx, zap.L(), status, msg, errs...)
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return mapError(context.Background(), zap.L(), status, msg, errs...)
	}
}

// mapError is the envelope of an error, with the request's ids.
func mapError(ctx context.Context, fallback *zap.Logger, status int, msg string, errs ...error) huma.StatusError {
	se := mapErrorToEnvelope(ctx, fallback, status, msg, errs...)
	if env, ok := se.(*ErrorEnvelope); ok && env.Err.TraceID == "" {
		env.Err.TraceID = observability.TraceID(ctx)
	}
	return se
}

func mapErrorToEnvelope(ctx context.Context, fallback *zap.Logger, status int, msg string, errs ...error) huma.StatusError {
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
			field, message := fieldOf(d)
			env.Err.Details = append(env.Err.Details, apperr.FieldError{Field: field, Message: message})
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

// installMessages words Huma's validation messages for the people who read
// them in the client: no RFC numbers, no library errors (a "%.0v" keeps a
// message's argument out of it).
func installMessages() {
	validation.MsgExpectedBoolean = "expected true or false"
	validation.MsgExpectedNumber = "expected a number"
	validation.MsgExpectedInteger = "expected a whole number"
	validation.MsgExpectedString = "expected a string"
	validation.MsgExpectedArray = "expected a list"
	validation.MsgExpectedObject = "expected an object"
	validation.MsgExpectedRFC3339DateTime = "expected a date and time such as 2026-02-11T10:00:00Z"
	validation.MsgExpectedRFC3339Date = "expected a date such as 2026-02-11"
	validation.MsgExpectedRFC4122UUID = "expected a UUID%.0v"
	validation.MsgExpectedRFC5322Email = "expected an email address%.0v"
	validation.MsgExpectedRFC3986URI = "expected a URL%.0v"
	validation.MsgExpectedOneOf = "expected one of: %s"
	validation.MsgExpectedMinLength = "expected at least %d characters"
	validation.MsgExpectedMaxLength = "expected at most %d characters"
	validation.MsgExpectedMinItems = "expected at least %d items"
	validation.MsgExpectedMaxItems = "expected at most %d items"
	validation.MsgExpectedMinimumNumber = "expected a number >= %v"
	validation.MsgExpectedMaximumNumber = "expected a number <= %v"
	validation.MsgExpectedRequiredProperty = "%s is required"
}

// fieldOf names the field of a validation detail. A missing property is
// reported by Huma on its parent object; the field is the property itself.
// A parameter that failed to parse is reported without the parser's error.
func fieldOf(d *huma.ErrorDetail) (field, message string) {
	field, message = fieldName(d.Location), d.Message
	var prop string
	if _, err := fmt.Sscanf(d.Message, validation.MsgExpectedRequiredProperty, &prop); err == nil && prop != "" {
		if field == "" || field == "body" {
			return prop, "is required"
		}
		return field + "." + prop, "is required"
	}
	if strings.HasPrefix(message, "invalid value: ") {
		message = "invalid value"
		if strings.Contains(d.Message, "UUID") {
			message = "expected a UUID"
		}
	}
	return field, message
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
		if env.Err.TraceID == "" {
			env.Err.TraceID = observability.TraceID(c.UserContext())
		}
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
