package flow

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound: no source or flow of that name.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write's version is not the current version.
	ErrConflict = errors.New("version conflict")
	// ErrInvalid: the resource failed validation; the error names the field.
	ErrInvalid = errors.New("invalid")
	// ErrFailedPrecondition: the write is valid but the state forbids it
	// (e.g. deleting a source that flows still read).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrNotReady: the store has not caught up with samsa.flows yet.
	ErrNotReady = errors.New("store not caught up with samsa.flows")
)

// ErrUnavailable: samsa.flows could not be written (Kafka unreachable, the
// write kept being fenced); nothing was written and the call may be retried.
var ErrUnavailable = errors.New("unavailable")

// FieldError is one validation failure: the path of the field, as in the
// JSON API ("flow.destination.http.url", "flow.delivery.maintenanceWindows[0].cron"),
// and what is wrong with it.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every field of a resource that failed validation.
// errors.Is(err, ErrInvalid) holds for it.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return strings.Join(msgs, "; ")
}

// Is makes a ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// invalid returns a ValidationError for one field.
func invalid(field, format string, args ...any) error {
	return &ValidationError{Fields: []FieldError{{Field: field, Msg: fmt.Sprintf(format, args...)}}}
}
