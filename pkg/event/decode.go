package event

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// maxAttributesHint caps the size hint Decode gives the attributes map, so
// that a block count read from the input can make Decode allocate at most a
// small map up front; a map with more entries grows as they are decoded.
const maxAttributesHint = 64

// Decode decodes an envelope that Encode, or any Avro implementation writing
// single-object encoding with the envelope schema, produced.
//
// The input must be exactly one record: the C3 01 marker, the envelope's
// fingerprint, and the Avro binary body, with nothing after it. Decode does
// not retain b: Data and every string are copied out of it.
//
// The decoded event is normalized the way Encode writes events: Time is in
// UTC, with microsecond precision; a null Subject, Key, TraceParent or
// TraceState is the empty string; empty data is a nil Data; and Attributes
// is never nil, an empty map if the record has no attributes (a nil and an
// empty map encode the same), so callers can add attributes without
// checking.
//
// Decode returns an error wrapping ErrNotSingleObject, ErrUnknownSchema (an
// *UnknownSchemaError), ErrTruncated or ErrMalformed, naming the field that
// could not be decoded. It never panics, and it checks every length and
// count in the input against the bytes actually left before allocating, so
// a corrupt or hostile record fails fast instead of allocating gigabytes.
func Decode(b []byte) (*Event, error) {
	if len(b) < 2 || b[0] != magic0 || b[1] != magic1 {
		return nil, fmt.Errorf("event: decode: %w", ErrNotSingleObject)
	}
	if len(b) < headerLen {
		return nil, fmt.Errorf("event: decode: header: %w: %d bytes, want %d", ErrTruncated, len(b), headerLen)
	}
	if fp := binary.LittleEndian.Uint64(b[2:headerLen]); fp != fingerprint {
		return nil, &UnknownSchemaError{Fingerprint: fp}
	}
	e := new(Event)
	if err := decodeBody(e, b[headerLen:]); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeBody decodes the Avro binary body of an envelope into e, reading the
// fields in the order of the schema.
func decodeBody(e *Event, b []byte) error {
	r := reader{b: b}
	var err error
	if e.ID, err = r.string(); err != nil {
		return fieldError("id", err)
	}
	if e.Source, err = r.string(); err != nil {
		return fieldError("source", err)
	}
	if e.Type, err = r.string(); err != nil {
		return fieldError("type", err)
	}
	if e.Subject, err = r.optString(); err != nil {
		return fieldError("subject", err)
	}
	us, err := r.long()
	if err != nil {
		return fieldError("time", err)
	}
	e.Time = time.UnixMicro(us).UTC()
	if e.Key, err = r.optString(); err != nil {
		return fieldError("key", err)
	}
	if e.ContentType, err = r.contentType(); err != nil {
		return fieldError("content_type", err)
	}
	data, err := r.bytes()
	if err != nil {
		return fieldError("data", err)
	}
	if len(data) > 0 {
		e.Data = append([]byte(nil), data...)
	}
	if e.Attributes, err = r.attributes(); err != nil {
		return fieldError("attributes", err)
	}
	if e.TraceParent, err = r.optString(); err != nil {
		return fieldError("traceparent", err)
	}
	if e.TraceState, err = r.optString(); err != nil {
		return fieldError("tracestate", err)
	}
	if len(r.b) > 0 {
		return fmt.Errorf("event: decode: %w: %d bytes after the end of the record", ErrMalformed, len(r.b))
	}
	return nil
}

func fieldError(field string, err error) error {
	return fmt.Errorf("event: decode: field %s: %w", field, err)
}

// reader consumes an Avro binary body from the front of b. Its errors wrap
// ErrTruncated or ErrMalformed and are given the field's name by the caller.
type reader struct {
	b []byte
}

// long reads an Avro long: a zig-zag encoded varint of at most 10 bytes.
func (r *reader) long() (int64, error) {
	if len(r.b) > 0 && r.b[0] < 0x80 { // one byte: lengths under 64, union branches
		u := uint64(r.b[0])
		r.b = r.b[1:]
		return int64(u>>1) ^ -int64(u&1), nil
	}
	u, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		return 0, fmt.Errorf("%w: varint cut off after %d bytes", ErrTruncated, len(r.b))
	case n < 0:
		return 0, fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed)
	}
	r.b = r.b[n:]
	return int64(u>>1) ^ -int64(u&1), nil
}

// bytes reads an Avro bytes value and returns it as a slice of the input,
// after checking its length against what is left of the input.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: negative length %d", ErrMalformed, n)
	}
	if n > int64(len(r.b)) {
		return nil, fmt.Errorf("%w: length %d, %d bytes left", ErrTruncated, n, len(r.b))
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, nil
}

// string reads an Avro string, which must be valid UTF-8.
func (r *reader) string() (string, error) {
	b, err := r.bytes()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: %.64q is not valid UTF-8", ErrMalformed, b)
	}
	return string(b), nil
}

// optString reads the union ["null", "string"], returning "" for null.
func (r *reader) optString() (string, error) {
	branch, err := r.long()
	if err != nil {
		return "", err
	}
	switch branch {
	case 0:
		return "", nil
	case 1:
		return r.string()
	default:
		return "", fmt.Errorf("%w: union branch %d, want 0 (null) or 1 (string)", ErrMalformed, branch)
	}
}

// contentType reads content_type like string, but returns the common media
// types without allocating: nearly every event carries one of them.
func (r *reader) contentType() (string, error) {
	b, err := r.bytes()
	if err != nil {
		return "", err
	}
	// The compiler compares string(b) without converting b.
	switch string(b) {
	case "application/json":
		return "application/json", nil
	case "application/octet-stream":
		return "application/octet-stream", nil
	case "text/plain":
		return "text/plain", nil
	case "application/json; charset=utf-8":
		return "application/json; charset=utf-8", nil
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: %.64q is not valid UTF-8", ErrMalformed, b)
	}
	return string(b), nil
}

// attributes reads an Avro map of strings. A map is a series of blocks, each
// a count of entries and the entries, ended by an empty block; a block may
// give its count negated, followed by its size in bytes.
func (r *reader) attributes() (map[string]string, error) {
	var m map[string]string
	for {
		count, err := r.long()
		if err != nil {
			return nil, err
		}
		if count == 0 {
			break
		}
		size := int64(-1) // unknown, unless the count is negative
		if count < 0 {
			if count == math.MinInt64 {
				return nil, fmt.Errorf("%w: block count %d", ErrMalformed, count)
			}
			count = -count
			if size, err = r.long(); err != nil {
				return nil, err
			}
			if size < 0 {
				return nil, fmt.Errorf("%w: negative block size %d", ErrMalformed, size)
			}
			if size > int64(len(r.b)) {
				return nil, fmt.Errorf("%w: block size %d, %d bytes left", ErrTruncated, size, len(r.b))
			}
		}
		// Every entry takes at least two bytes, the lengths of its key and
		// value.
		if count > int64(len(r.b)/2) {
			return nil, fmt.Errorf("%w: block of %d entries, %d bytes left", ErrTruncated, count, len(r.b))
		}
		if m == nil {
			m = make(map[string]string, min(count, maxAttributesHint))
		}
		left := len(r.b)
		for range count {
			k, err := r.string()
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("%w: duplicate key %.64q", ErrMalformed, k)
			}
			v, err := r.string()
			if err != nil {
				return nil, fmt.Errorf("value of %.64q: %w", k, err)
			}
			m[k] = v
		}
		if size >= 0 && int64(left-len(r.b)) != size {
			return nil, fmt.Errorf("%w: block of %d bytes holds %d bytes of entries", ErrMalformed, size, left-len(r.b))
		}
	}
	if m == nil {
		m = make(map[string]string)
	}
	return m, nil
}
