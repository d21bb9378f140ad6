package event

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
	"unsafe"
)

// maxAttributesHint caps the size hint Decode gives the attributes map, so
// that a block count read from the input can make Decode allocate at most a
// small map up front; a map with more entries grows as they are decoded.
const maxAttributesHint = 64

// maxSharedData is the largest payload that Decode copies into the same
// allocation as the strings. Any of the strings keeps the whole allocation
// in memory, so a large payload gets one of its own.
const maxSharedData = 1024

// Decode decodes an envelope that Encode, or any Avro implementation writing
// single-object encoding with the envelope schema, produced.
//
// The input must be exactly one record: the C3 01 marker, the envelope's
// fingerprint, and the Avro binary body, with nothing after it. Decode does
// not retain b: Data and the strings are copied out of it. To save
// allocations, the strings of an event (its string fields, attribute keys
// and values) are cut from one allocation, which stays in memory as long as
// any of them does; a payload of at most 1 KiB is copied into the same
// allocation, after them.
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
	var stack [attrsOnStack]rawAttr
	v, err := parse(b[headerLen:], stack[:0])
	if err != nil {
		return nil, err
	}
	return v.event()
}

// views is a parsed record body: every field checked, and the variable
// length ones still slices of the input. Decode parses the whole record
// before it allocates anything, then copies the strings out in one go.
type views struct {
	id, source, typ, subject, key, contentType, traceParent, traceState []byte
	micros                                                              int64
	data                                                                []byte
	attrs                                                               []rawAttr
}

// rawAttr is one attribute as parsed, before it is copied out.
type rawAttr struct{ k, v []byte }

// parse parses and checks the Avro binary body of an envelope, reading the
// fields in the order of the schema. The attributes are appended to attrs.
// (It returns views by value, rather than filling in a *views, so that
// attrs can stay on the caller's stack.)
func parse(b []byte, attrs []rawAttr) (v views, err error) {
	r := reader{b: b}
	if v.id, err = r.string(); err != nil {
		return v, fieldError("id", err)
	}
	if v.source, err = r.string(); err != nil {
		return v, fieldError("source", err)
	}
	if v.typ, err = r.string(); err != nil {
		return v, fieldError("type", err)
	}
	if v.subject, err = r.optString(); err != nil {
		return v, fieldError("subject", err)
	}
	if v.micros, err = r.long(); err != nil {
		return v, fieldError("time", err)
	}
	if v.key, err = r.optString(); err != nil {
		return v, fieldError("key", err)
	}
	if v.contentType, err = r.string(); err != nil {
		return v, fieldError("content_type", err)
	}
	if v.data, err = r.bytes(); err != nil {
		return v, fieldError("data", err)
	}
	if v.attrs, err = r.attributes(attrs); err != nil {
		return v, fieldError("attributes", err)
	}
	if v.traceParent, err = r.optString(); err != nil {
		return v, fieldError("traceparent", err)
	}
	if v.traceState, err = r.optString(); err != nil {
		return v, fieldError("tracestate", err)
	}
	if len(r.b) > 0 {
		return v, fmt.Errorf("event: decode: %w: %d bytes after the end of the record", ErrMalformed, len(r.b))
	}
	return v, nil
}

// event copies the parsed record out of the input into a new Event: the
// data into its own slice, and all strings into one string that the fields
// are substrings of.
func (v *views) event() (*Event, error) {
	contentType, interned := internContentType(v.contentType)
	if interned {
		v.contentType = nil // nothing to copy
	}
	strs := [...][]byte{v.id, v.source, v.typ, v.subject, v.key, v.contentType, v.traceParent, v.traceState}
	n := 0
	for _, s := range strs {
		n += len(s)
	}
	for _, a := range v.attrs {
		n += len(a.k) + len(a.v)
	}
	// A small payload shares the allocation of the strings: it lies after
	// them, and Data's capacity ends with it, so the strings' bytes are
	// never written once copied.
	shared := len(v.data) > 0 && len(v.data) <= maxSharedData
	size := n
	if shared {
		size += len(v.data)
	}
	var all string
	var data []byte
	if size > 0 {
		buf := make([]byte, 0, size)
		for _, s := range strs {
			buf = append(buf, s...)
		}
		for _, a := range v.attrs {
			buf = append(buf, a.k...)
			buf = append(buf, a.v...)
		}
		if shared {
			buf = append(buf, v.data...)
			data = buf[n:size:size]
		}
		all = unsafe.String(unsafe.SliceData(buf), n)
	}
	// next returns the next string, in the order they were written.
	next := func(b []byte) string {
		s := all[:len(b)]
		all = all[len(b):]
		return s
	}

	e := new(Event)
	e.ID = next(v.id)
	e.Source = next(v.source)
	e.Type = next(v.typ)
	e.Subject = next(v.subject)
	e.Key = next(v.key)
	e.ContentType = next(v.contentType)
	if interned {
		e.ContentType = contentType
	}
	e.TraceParent = next(v.traceParent)
	e.TraceState = next(v.traceState)
	e.Time = time.UnixMicro(v.micros).UTC()
	switch {
	case shared:
		e.Data = data
	case len(v.data) > 0:
		e.Data = append([]byte(nil), v.data...)
	}
	e.Attributes = make(map[string]string, min(len(v.attrs), maxAttributesHint))
	for _, a := range v.attrs {
		k := next(a.k)
		if _, dup := e.Attributes[k]; dup {
			return nil, fieldError("attributes", fmt.Errorf("%w: duplicate key %.64q", ErrMalformed, k))
		}
		e.Attributes[k] = next(a.v)
	}
	return e, nil
}

// internContentType returns the common media types as constants, so that
// nearly every event's content type costs no memory of its own.
func internContentType(b []byte) (string, bool) {
	// The compiler compares string(b) without converting b.
	switch string(b) {
	case "application/json":
		return "application/json", true
	case "application/octet-stream":
		return "application/octet-stream", true
	case "text/plain":
		return "text/plain", true
	case "application/json; charset=utf-8":
		return "application/json; charset=utf-8", true
	}
	return "", false
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

// string reads an Avro string, which must be valid UTF-8, as a slice of
// the input.
func (r *reader) string() ([]byte, error) {
	b, err := r.bytes()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: %.64q is not valid UTF-8", ErrMalformed, b)
	}
	return b, nil
}

// optString reads the union ["null", "string"], returning nil for null.
func (r *reader) optString() ([]byte, error) {
	branch, err := r.long()
	if err != nil {
		return nil, err
	}
	switch branch {
	case 0:
		return nil, nil
	case 1:
		return r.string()
	default:
		return nil, fmt.Errorf("%w: union branch %d, want 0 (null) or 1 (string)", ErrMalformed, branch)
	}
}

// attributes reads an Avro map of strings, appending its entries to attrs.
// A map is a series of blocks, each a count of entries and the entries,
// ended by an empty block; a block may give its count negated, followed by
// its size in bytes. Duplicate keys are found when the map is built.
func (r *reader) attributes(attrs []rawAttr) ([]rawAttr, error) {
	for {
		count, err := r.long()
		if err != nil {
			return nil, err
		}
		if count == 0 {
			return attrs, nil
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
		// value, so the count cannot make attrs grow beyond the input.
		if count > int64(len(r.b)/2) {
			return nil, fmt.Errorf("%w: block of %d entries, %d bytes left", ErrTruncated, count, len(r.b))
		}
		left := len(r.b)
		for range count {
			k, err := r.string()
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			v, err := r.string()
			if err != nil {
				return nil, fmt.Errorf("value of %.64q: %w", k, err)
			}
			attrs = append(attrs, rawAttr{k, v})
		}
		if size >= 0 && int64(left-len(r.b)) != size {
			return nil, fmt.Errorf("%w: block of %d bytes holds %d bytes of entries", ErrMalformed, size, left-len(r.b))
		}
	}
}
