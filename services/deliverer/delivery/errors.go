package delivery

import "errors"

var (
	// ErrNoDestination: the flow has no destination set.
	ErrNoDestination = errors.New("flow has no destination")
	// ErrStoreNotReady: Run was cancelled before the flow store caught up.
	ErrStoreNotReady = errors.New("flow store not ready")
)
