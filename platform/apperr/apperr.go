// Package apperr is the vocabulary of failures that services return. A service
// says what went wrong (a kind, a stable code, a message); the HTTP edge alone
// decides the status code and the envelope.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for the edge.
type Kind int

// Kinds, each mapped to one HTTP status at the edge.
const (
	KindInternal        Kind = iota // 500
	KindValidation                  // 400
	KindUnauthorized                // 401
	KindPaymentRequired             // 402
	KindForbidden                   // 403
	KindNotFound                    // 404
	KindConflict                    // 409
	KindGone                        // 410
	KindTooLarge                    // 413
	KindTooManyRequests             // 429
	KindUnavailable                 // 503
)

// Error codes shared by several modules. Modules add their own (e.g.
// TASK_NOT_FOUND) next to the code that raises them.
const (
	CodeValidation      = "VALIDATION_ERROR"
	CodeUnauthorized    = "UNAUTHORIZED"
	CodeTokenExpired    = "TOKEN_EXPIRED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeConflict        = "CONFLICT"
	CodeLimitExceeded   = "LIMIT_EXCEEDED"
	CodeRateLimited     = "RATE_LIMIT_EXCEEDED"
	CodePayloadTooLarge = "PAYLOAD_TOO_LARGE"
	CodeInternal        = "INTERNAL_ERROR"
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a failure with meaning for the client.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Details []FieldError
	// RetryAfter, when set, becomes the Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an error of the given kind and code.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Validation reports one invalid field.
func Validation(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: KindValidation, Code: CodeValidation, Message: field + ": " + msg,
		Details: []FieldError{{Field: field, Message: msg}}}
}

// NotFound reports an absent row (or one the caller may not know exists).
func NotFound(code, what string) *Error {
	return &Error{Kind: KindNotFound, Code: code, Message: what + " not found"}
}

// VersionConflict reports a stale optimistic-locking version.
func VersionConflict(what string, current int) *Error {
	return &Error{Kind: KindConflict, Code: CodeConflict,
		Message: fmt.Sprintf("%s was modified by another request: current version is %d", what, current)}
}

// LimitExceeded reports a tier limit that is reached.
func LimitExceeded(limit string, value int) *Error {
	return &Error{Kind: KindConflict, Code: CodeLimitExceeded,
		Message: fmt.Sprintf("limit %s reached (%d)", limit, value)}
}

// Unauthorized reports a missing or invalid credential.
func Unauthorized(code, msg string) *Error {
	return &Error{Kind: KindUnauthorized, Code: code, Message: msg}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Is reports whether err carries the given code.
func Is(err error, code string) bool {
	e, ok := As(err)
	return ok && e.Code == code
}
