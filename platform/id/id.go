// Package id makes the identifiers of new rows: RFC 4122 variant UUIDs,
// version 7 so that primary-key indexes grow at their end.
package id

import "github.com/google/uuid"

// New returns a new UUIDv7.
func New() uuid.UUID {
	u, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		return uuid.New()
	}
	return u
}

// Parse parses s as a UUID, accepting only the canonical 36-character form.
func Parse(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}
