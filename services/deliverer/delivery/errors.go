package delivery

import "errors"

var (
	// ErrNoDestination: the flow has no destination set.
	ErrNoDestination = errors.New("flow has no destination")
)
