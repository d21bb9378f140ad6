package event

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The range of time.Time that timestamp-micros (an int64 count of
// microseconds since the Unix epoch) can hold: about 292,000 years either
// side of 1970. maxTime is exclusive, so that the sub-microsecond remainder
// of the last representable microsecond is accepted (and truncated).
var (
	minTime = time.UnixMicro(math.MinInt64)
	maxTime = time.UnixMicro(math.MaxInt64).Add(time.Microsecond)
)

// attrsOnStack is how many attributes Encode sorts, and Decode parses,
// in an array on the stack, without allocating for them. Events rarely
// carry more.
const attrsOnStack = 16

// attr is one attribute, as Encode collects them to sort them.
type attr struct{ k, v string }

// Encode returns e in Avro single-object encoding: the C3 01 marker, the
// schema's fingerprint (see Fingerprint) and the Avro binary encoding of e
// as a dev.samsa.Envelope record. The result is a complete Kafka record
// value.
//
// The encoding is deterministic: attributes are written sorted by key, so
// equal events encode to equal bytes. Time is written with microsecond
// precision, rounded down. An empty Subject, Key, TraceParent or TraceState
// is written as null, and a nil Attributes map as an empty map.
//
// Encode fails, with an error wrapping ErrInvalid, if e is nil, if a string
// field, attribute key or attribute value is not valid UTF-8, or if Time is
// outside the range of timestamp-micros. It allocates the result once, at
// its exact size; use AppendEncode to reuse a buffer instead.
func Encode(e *Event) ([]byte, error) {
	var stack [attrsOnStack]attr
	n, attrs, err := measure(e, stack[:0])
	if err != nil {
		return nil, err
	}
	return appendEvent(make([]byte, 0, n), e, attrs), nil
}

// AppendEncode appends the encoding of e (see Encode) to dst and returns the
// extended buffer. It grows dst at most once, so a producer that reuses its
// buffer (dst[:0]) encodes without allocating once the buffer is large
// enough. On error, dst is returned unchanged.
func AppendEncode(dst []byte, e *Event) ([]byte, error) {
	var stack [attrsOnStack]attr
	n, attrs, err := measure(e, stack[:0])
	if err != nil {
		return dst, err
	}
	return appendEvent(slices.Grow(dst, n), e, attrs), nil
}

// measure validates e and returns the exact length of its encoding, so that
// the encoders can size their buffer once and appendEvent cannot fail, and
// its attributes appended to attrs, sorted by key.
func measure(e *Event, attrs []attr) (int, []attr, error) {
	if e == nil {
		return 0, nil, fmt.Errorf("event: encode: %w: nil *Event", ErrInvalid)
	}
	if e.Time.Before(minTime) || !e.Time.Before(maxTime) {
		return 0, nil, fmt.Errorf("event: encode: field time: %w: %v is out of the range of timestamp-micros",
			ErrInvalid, e.Time)
	}
	n := headerLen + longLen(e.Time.UnixMicro())
	for _, f := range [...]struct {
		name     string
		s        string
		nullable bool
	}{
		{"id", e.ID, false},
		{"source", e.Source, false},
		{"type", e.Type, false},
		{"subject", e.Subject, true},
		{"key", e.Key, true},
		{"content_type", e.ContentType, false},
		{"traceparent", e.TraceParent, true},
		{"tracestate", e.TraceState, true},
	} {
		if !utf8.ValidString(f.s) {
			return 0, nil, invalidUTF8(f.name, f.s)
		}
		switch {
		case !f.nullable:
			n += stringLen(f.s)
		case f.s == "":
			n++ // union branch 0, null
		default:
			n += 1 + stringLen(f.s) // union branch 1, string
		}
	}
	n += longLen(int64(len(e.Data))) + len(e.Data)

	n++ // the map's terminating empty block
	if len(e.Attributes) > 0 {
		n += longLen(int64(len(e.Attributes)))
		for k, v := range e.Attributes {
			if !utf8.ValidString(k) {
				return 0, nil, invalidUTF8("attributes", k)
			}
			if !utf8.ValidString(v) {
				return 0, nil, invalidUTF8("attributes["+k+"]", v)
			}
			n += stringLen(k) + stringLen(v)
			attrs = append(attrs, attr{k, v})
		}
		// Go randomizes map order; sorting makes the encoding
		// deterministic. Keys are unique, so the order is total.
		slices.SortFunc(attrs, func(a, b attr) int { return strings.Compare(a.k, b.k) })
	}
	return n, attrs, nil
}

func invalidUTF8(field, s string) error {
	return fmt.Errorf("event: encode: field %s: %w: %.64q is not valid UTF-8", field, ErrInvalid, s)
}

// appendEvent appends the encoding of e, which measure validated, to dst,
// with e's attributes as measure sorted them. The fields are written in the
// order of the schema.
func appendEvent(dst []byte, e *Event, attrs []attr) []byte {
	dst = append(dst, header[:]...)
	dst = appendString(dst, e.ID)
	dst = appendString(dst, e.Source)
	dst = appendString(dst, e.Type)
	dst = appendOptString(dst, e.Subject)
	dst = appendLong(dst, e.Time.UnixMicro())
	dst = appendOptString(dst, e.Key)
	dst = appendString(dst, e.ContentType)
	dst = appendLong(dst, int64(len(e.Data)))
	dst = append(dst, e.Data...)
	// The attributes map: one block holding every entry, then the empty
	// block that ends the map.
	if len(attrs) > 0 {
		dst = appendLong(dst, int64(len(attrs)))
		for _, a := range attrs {
			dst = appendString(dst, a.k)
			dst = appendString(dst, a.v)
		}
	}
	dst = append(dst, 0) // zig-zag 0: the end of the map
	dst = appendOptString(dst, e.TraceParent)
	dst = appendOptString(dst, e.TraceState)
	return dst
}

// appendOptString writes s as the union ["null", "string"]: branch 0 (null)
// if s is empty, else branch 1 and the string.
func appendOptString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, 0) // zig-zag 0: branch 0
	}
	return appendString(append(dst, 2), s) // zig-zag 2: branch 1
}

// appendString writes s as an Avro string or bytes: its length, then its
// bytes.
func appendString(dst []byte, s string) []byte {
	return append(appendLong(dst, int64(len(s))), s...)
}

// appendLong writes v as an Avro long: zig-zag encoded, then as a
// little-endian base-128 varint.
func appendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, zigzag(v))
}

// stringLen is the encoded length of an Avro string or bytes of len(s).
func stringLen(s string) int { return longLen(int64(len(s))) + len(s) }

// longLen is the encoded length of the Avro long v.
func longLen(v int64) int { return (bits.Len64(zigzag(v)|1) + 6) / 7 }

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }
