package flow

import "errors"

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
