package event

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// body builds a record: the envelope's header followed by parts.
func body(parts ...[]byte) []byte {
	b := append([]byte(nil), header[:]...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func long(v int64) []byte    { return appendLong(nil, v) }
func str(s string) []byte    { return appendString(nil, s) }
func raw(b ...byte) []byte   { return b }
func null() []byte           { return long(0) }
func some(s string) []byte   { return append(long(1), str(s)...) }
func timeNow() []byte        { return long(1714566896789012) }
func noAttributes() []byte   { return long(0) }
func cat(p ...[]byte) []byte { return body(p...)[headerLen:] }

// fieldsBefore returns valid encodings of the fields before name, so that a
// test can corrupt that field.
func fieldsBefore(name string) []byte {
	fields := []struct {
		name string
		b    []byte
	}{
		{"id", str("id-1")},
		{"source", str("orders")},
		{"type", str("t")},
		{"subject", null()},
		{"time", timeNow()},
		{"key", some("k")},
		{"content_type", str("application/json")},
		{"data", str(`{"a":1}`)},
		{"attributes", noAttributes()},
		{"traceparent", null()},
		{"tracestate", null()},
	}
	var b []byte
	for _, f := range fields {
		if f.name == name {
			return b
		}
		b = append(b, f.b...)
	}
	return b
}

// valid returns a complete, valid record.
func valid() []byte { return body(fieldsBefore("")) }

func TestDecodeErrors(t *testing.T) {
	withFingerprint := func(fp uint64) []byte {
		b := body(fieldsBefore(""))
		binary.LittleEndian.PutUint64(b[2:], fp)
		return b
	}
	twoGB := long(2 << 30)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
		msg  string // a part of the error message
	}{
		{"nil", nil, ErrNotSingleObject, "C3 01"},
		{"empty", []byte{}, ErrNotSingleObject, ""},
		{"one byte of the marker", raw(0xC3), ErrNotSingleObject, ""},
		{"wrong second marker byte", raw(0xC3, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 0), ErrNotSingleObject, ""},
		{"marker bytes swapped", raw(0x01, 0xC3, 1, 2, 3, 4, 5, 6, 7, 8, 0), ErrNotSingleObject, ""},
		{"JSON", []byte(`{"id":"1"}`), ErrNotSingleObject, ""},
		{"Confluent wire format", raw(0x00, 0, 0, 0, 42, 2, 'a'), ErrNotSingleObject, ""},
		{"marker only", raw(0xC3, 0x01), ErrTruncated, "header"},
		{"fingerprint cut off", raw(0xC3, 0x01, 1, 2, 3, 4, 5), ErrTruncated, "header"},
		{"unknown fingerprint", withFingerprint(0x0123456789abcdef), ErrUnknownSchema, "0x0123456789abcdef"},
		{"fingerprint of goavro's form", withFingerprint(logicalCodec.Rabin), ErrUnknownSchema, "fingerprint"},
		{"header only", body(), ErrTruncated, "field id"},
		{"id length 2 GB", body(twoGB, raw('a', 'b', 'c')), ErrTruncated, "field id: truncated record: length 2147483648, 3 bytes left"},
		{"id length MaxInt64", body(long(math.MaxInt64), raw('a')), ErrTruncated, "field id"},
		{"id length negative", body(long(-1), raw('a')), ErrMalformed, "field id: malformed record: negative length -1"},
		{"id length MinInt64", body(long(math.MinInt64), raw('a')), ErrMalformed, "field id"},
		{"id cut off", body(str("abcdef")[:4]), ErrTruncated, "field id"},
		{"id not UTF-8", body(str("a\xff")), ErrMalformed, "field id"},
		{"id UTF-16 surrogate", body(str("\xed\xa0\x80")), ErrMalformed, "UTF-8"},
		{"varint cut off", body(raw(0x80)), ErrTruncated, "field id"},
		{"varint of 11 bytes", body(raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), ErrMalformed, "varint"},
		{"varint over 64 bits", body(raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)), ErrMalformed, "varint"},
		{"source length 2 GB", body(fieldsBefore("source"), twoGB), ErrTruncated, "field source"},
		{"type not UTF-8", body(fieldsBefore("type"), str("\xc3")), ErrMalformed, "field type"},
		{"subject union branch 2", body(fieldsBefore("subject"), long(2), str("x")), ErrMalformed, "field subject: malformed record: union branch 2"},
		{"subject union branch -1", body(fieldsBefore("subject"), long(-1)), ErrMalformed, "field subject"},
		{"subject string cut off", body(fieldsBefore("subject"), long(1), long(10), raw('a')), ErrTruncated, "field subject"},
		{"time cut off", body(fieldsBefore("time"), raw(0xff, 0xff)), ErrTruncated, "field time"},
		{"time over 64 bits", body(fieldsBefore("time"), raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), ErrMalformed, "field time"},
		{"key union branch 7", body(fieldsBefore("key"), long(7)), ErrMalformed, "field key"},
		{"content_type not UTF-8", body(fieldsBefore("content_type"), str("\xfe")), ErrMalformed, "field content_type"},
		{"data length 2 GB", body(fieldsBefore("data"), twoGB, raw(1, 2, 3, 4, 5, 6, 7)), ErrTruncated, "field data: truncated record: length 2147483648, 7 bytes left"},
		{"data length negative", body(fieldsBefore("data"), long(-5), raw(1, 2, 3, 4, 5)), ErrMalformed, "field data: malformed record: negative length -5"},
		{"attributes count 2 G", body(fieldsBefore("attributes"), long(2<<30), str("k"), str("v")), ErrTruncated, "field attributes: truncated record: block of 2147483648 entries"},
		{"attributes count MaxInt64", body(fieldsBefore("attributes"), long(math.MaxInt64)), ErrTruncated, "field attributes"},
		{"attributes count MinInt64", body(fieldsBefore("attributes"), long(math.MinInt64), long(0)), ErrMalformed, "field attributes"},
		{"attributes negative block size", body(fieldsBefore("attributes"), long(-1), long(-4), str("k"), str("v"), long(0)), ErrMalformed, "negative block size"},
		{"attributes block size 2 GB", body(fieldsBefore("attributes"), long(-1), twoGB, str("k"), str("v"), long(0)), ErrTruncated, "block size"},
		{"attributes block size wrong", body(fieldsBefore("attributes"), long(-1), long(3), str("k"), str("v"), long(0), null(), null()), ErrMalformed, "block of 3 bytes"},
		{"attributes end missing", body(fieldsBefore("attributes"), long(1), str("k"), str("v")), ErrTruncated, "field attributes"},
		{"attribute key cut off", body(fieldsBefore("attributes"), long(1), long(100), raw('k', 'v')), ErrTruncated, "field attributes: key"},
		{"attribute key not UTF-8", body(fieldsBefore("attributes"), long(1), str("\xff"), str("v"), long(0)), ErrMalformed, "field attributes: key"},
		{"attribute value not UTF-8", body(fieldsBefore("attributes"), long(1), str("k"), str("\xff"), long(0)), ErrMalformed, `field attributes: value of "k"`},
		{"attribute value negative length", body(fieldsBefore("attributes"), long(1), str("k"), long(-2), long(0)), ErrMalformed, `value of "k"`},
		{"duplicate attribute key", body(fieldsBefore("attributes"), long(2), str("k"), str("v"), str("k"), str("w"), long(0), null(), null()), ErrMalformed, `duplicate key "k"`},
		{"duplicate key across blocks", body(fieldsBefore("attributes"), long(1), str("k"), str("v"), long(1), str("k"), str("w"), long(0), null(), null()), ErrMalformed, "field attributes: malformed record: duplicate key"},
		{"traceparent union branch 3", body(fieldsBefore("traceparent"), long(3)), ErrMalformed, "field traceparent"},
		{"tracestate missing", body(fieldsBefore("tracestate")), ErrTruncated, "field tracestate"},
		{"trailing byte", body(fieldsBefore(""), raw(0)), ErrMalformed, "1 bytes after the end of the record"},
		{"two records", append(valid(), valid()...), ErrMalformed, "after the end of the record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if got != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, %v; want nil, %v", got, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "event: decode: ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			for _, other := range []error{ErrNotSingleObject, ErrUnknownSchema, ErrTruncated, ErrMalformed} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %q is also %v", err, other)
				}
			}
		})
	}
}

func TestUnknownSchemaError(t *testing.T) {
	b := valid()
	binary.LittleEndian.PutUint64(b[2:], 0xfeedfacecafebeef)
	_, err := Decode(b)
	var use *UnknownSchemaError
	if !errors.As(err, &use) || use.Fingerprint != 0xfeedfacecafebeef {
		t.Fatalf("error %v (%T), want an *UnknownSchemaError with the fingerprint", err, err)
	}
	if !strings.Contains(err.Error(), "0xfeedfacecafebeef") {
		t.Errorf("error %q does not give the fingerprint in hex", err)
	}
}

// TestDecodeValidEncodings decodes encodings that are valid Avro but that
// Encode does not write: the string branch for an empty string, maps in
// several blocks, blocks with a negative count and a size, and overlong
// (non-minimal) varints.
func TestDecodeValidEncodings(t *testing.T) {
	want := &Event{
		ID:          "id-1",
		Source:      "orders",
		Type:        "t",
		Time:        time.UnixMicro(1714566896789012),
		Key:         "k",
		ContentType: "application/json",
		Data:        []byte(`{"a":1}`),
	}
	wantAttrs := func(kv ...string) *Event {
		e := *want
		e.Attributes = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			e.Attributes[kv[i]] = kv[i+1]
		}
		return &e
	}
	entry := cat(str("a"), str("1"))
	for _, tc := range []struct {
		name string
		in   []byte
		want *Event
	}{
		{"minimal record", valid(), want},
		{"empty strings in the string branch", body(fieldsBefore("subject"), some(""), cat(timeNow(), some(""), str("application/json"), str(`{"a":1}`), noAttributes(), some(""), some(""))),
			func() *Event { e := *want; e.Key = ""; return &e }()},
		{"two blocks", body(fieldsBefore("attributes"), long(1), entry, long(1), str("b"), str("2"), long(0), null(), null()), wantAttrs("a", "1", "b", "2")},
		{"negative count with size", body(fieldsBefore("attributes"), long(-1), long(int64(len(entry))), entry, long(0), null(), null()), wantAttrs("a", "1")},
		{"overlong varints", body(raw(0x88, 0x80, 0x80, 0x00), []byte("id-1"), fieldsBefore("subject")[5:], null(), timeNow(), some("k"), str("application/json"), str(`{"a":1}`), raw(0x80, 0x00), null(), null()), want},
		{"content type not interned", body(fieldsBefore("content_type"), str("text/csv"), str(`{"a":1}`), noAttributes(), null(), null()),
			func() *Event { e := *want; e.ContentType = "text/csv"; return &e }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			checkEqual(t, got, tc.want)
		})
	}
}

// TestDecodeTruncated cuts every golden record at every byte: each prefix
// must fail cleanly, as not single-object encoded while the marker is
// incomplete and as truncated after that.
func TestDecodeTruncated(t *testing.T) {
	for _, g := range goldenEvents {
		b, err := Encode(g.event)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			want := ErrTruncated
			if n < 2 {
				want = ErrNotSingleObject
			}
			// A copy with no spare capacity, so that reading past the end
			// is caught.
			in := append([]byte(nil), b[:n]...)
			if got, err := Decode(in); got != nil || !errors.Is(err, want) {
				t.Fatalf("%s cut at %d of %d bytes: Decode = %v, %v; want %v", g.name, n, len(b), got, err, want)
			}
		}
	}
}

// TestDecodeDoesNotRetainInput checks that the decoded event shares no
// memory with the input.
func TestDecodeDoesNotRetainInput(t *testing.T) {
	b, _ := Encode(goldenEvents[1].event)
	e, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	checkEqual(t, e, goldenEvents[1].event)
}

// TestDecodeDataSharesNothing checks that writing to or appending to the
// decoded Data, which may share an allocation with the strings, leaves the
// strings alone, for a small payload and a large one.
func TestDecodeDataSharesNothing(t *testing.T) {
	for _, n := range []int{1, maxSharedData, maxSharedData + 1} {
		want := *goldenEvents[1].event
		want.Data = bytes.Repeat([]byte("x"), n)
		b, _ := Encode(&want)
		e, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if n <= maxSharedData && cap(e.Data) != n {
			t.Errorf("payload of %d bytes: cap(Data) = %d", n, cap(e.Data))
		}
		for i := range e.Data {
			e.Data[i] = 0xff
		}
		grown := append(e.Data, make([]byte, 64)...)
		for i := range grown {
			grown[i] = 0xff
		}
		e.Data = want.Data
		checkEqual(t, e, &want)
	}
}

// TestDecodeBoundsAllocations checks that lengths and counts that claim far
// more than the input holds fail without allocating for them.
func TestDecodeBoundsAllocations(t *testing.T) {
	for _, in := range [][]byte{
		body(long(2<<30), raw('a', 'b', 'c')),
		body(fieldsBefore("data"), long(2<<30), raw(1, 2, 3, 4, 5, 6, 7)),
		body(fieldsBefore("data"), long(math.MaxInt64)),
		body(fieldsBefore("attributes"), long(math.MaxInt64/2)),
		body(fieldsBefore("attributes"), long(1<<30), str("k"), str("v"), long(0)),
		body(fieldsBefore("attributes"), long(-(1 << 30)), long(6), str("k"), str("v"), long(0)),
	} {
		if len(in) > 100 {
			t.Fatalf("test input of %d bytes, want a small one", len(in))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 100
		for range runs {
			if _, err := Decode(in); err == nil {
				t.Fatalf("Decode(% x) succeeded", in)
			}
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4096 {
			t.Errorf("Decode(% x) allocates %d bytes per call", in, perRun)
		}
	}
}
