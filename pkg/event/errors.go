package event

import (
	"errors"
	"fmt"
)

// The errors below are returned wrapped, with the field and the detail that
// went wrong, e.g. "event: decode: field data: truncated record: length
// 2147483648, 7 bytes left". Test for them with errors.Is.
var (
	// ErrNotSingleObject is returned by Decode when the input does not start
	// with the C3 01 marker of Avro single-object encoding: it is not an
	// envelope at all (plain JSON, raw bytes, Confluent-framed Avro, or an
	// empty value such as a tombstone).
	ErrNotSingleObject = errors.New("not Avro single-object encoded (no C3 01 marker)")

	// ErrUnknownSchema is returned by Decode when the input is single-object
	// encoded, but by a schema whose fingerprint is not the envelope's. The
	// returned error is an *UnknownSchemaError, which says which fingerprint
	// the record carries.
	ErrUnknownSchema = errors.New("unknown schema")

	// ErrTruncated is returned by Decode when the input ends before the
	// record does, including when a length prefix announces more bytes than
	// are left. Decode checks every length against the input before
	// allocating, so a corrupt prefix cannot make it allocate more than the
	// input's size.
	ErrTruncated = errors.New("truncated record")

	// ErrMalformed is returned by Decode when the input is not a valid
	// encoding of the envelope schema: a negative length, an unknown union
	// branch, an overlong varint, invalid UTF-8 in a string, a duplicate
	// attribute key, or bytes left over after the record.
	ErrMalformed = errors.New("malformed record")

	// ErrInvalid is returned by Encode when an Event cannot be represented
	// in the envelope schema: a nil event, a string that is not valid UTF-8
	// (Avro strings are UTF-8, and readers in other languages would mangle
	// it), or a time outside the range of timestamp-micros.
	ErrInvalid = errors.New("invalid event")
)

// UnknownSchemaError is the error Decode returns for a single-object encoded
// record written with another schema. It matches ErrUnknownSchema with
// errors.Is; use errors.As to get the fingerprint, for example to look the
// writer's schema up elsewhere or to report it.
type UnknownSchemaError struct {
	// Fingerprint is the CRC-64-AVRO fingerprint found in the record's
	// header.
	Fingerprint uint64
}

// Error reports both the record's fingerprint and the envelope's, in hex as
// schema registries and avro-tools print them.
func (e *UnknownSchemaError) Error() string {
	return fmt.Sprintf("event: decode: %v: fingerprint %#016x, want %#016x (dev.samsa.Envelope)",
		ErrUnknownSchema, e.Fingerprint, fingerprint)
}

// Is reports whether target is ErrUnknownSchema, so that errors.Is works
// on an *UnknownSchemaError.
func (e *UnknownSchemaError) Is(target error) bool { return target == ErrUnknownSchema }
