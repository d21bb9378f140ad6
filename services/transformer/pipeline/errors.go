package pipeline

import "errors"

var (
	// ErrNotReady: the pipeline has not joined the group yet (or its
	// session is being recreated after an error).
	ErrNotReady = errors.New("transformer not consuming yet")
	// ErrTooLarge: an output or dead letter does not fit in one Kafka record.
	ErrTooLarge = errors.New("record too large for Kafka")
	// errBatchTooSlow: a batch was abandoned because it would not have
	// ended within the transaction timeout.
	errBatchTooSlow = errors.New("batch took too long")
)
