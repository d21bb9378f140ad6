package event

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// Two goavro codecs serve as the independent implementation the hand-written
// codec is checked against.
//
// plainCodec has the envelope schema with the time field as a plain long.
// The Parsing Canonical Form drops logical types, so its fingerprint must be
// the envelope's, and goavro computes it correctly for a schema without
// logical types (it does not for one with them, see canonical.go). It is
// used for single-object encoding (SingleFromNative, NativeFromSingle).
//
// logicalCodec has the schema exactly as embedded, with timestamp-micros.
// Its fingerprint is wrong, so only its binary body functions are used, to
// check that time means what goavro, and the logical type, say it means.
var plainCodec, logicalCodec *goavro.Codec

const timeField = `{"type": "long", "logicalType": "timestamp-micros"}`

func init() {
	var err error
	if logicalCodec, err = goavro.NewCodec(Schema); err != nil {
		panic(fmt.Sprintf("goavro rejects envelope.avsc: %v", err))
	}
	if !strings.Contains(Schema, timeField) {
		panic("envelope.avsc: time field not found; update timeField in the tests")
	}
	if plainCodec, err = goavro.NewCodec(strings.Replace(Schema, timeField, `"long"`, 1)); err != nil {
		panic(fmt.Sprintf("goavro rejects envelope.avsc without logical type: %v", err))
	}
}

// normalize returns e as Decode returns it after Encode: time in UTC at
// microsecond precision, nil for empty data, a non-nil attributes map.
func normalize(e *Event) *Event {
	n := *e
	n.Time = time.UnixMicro(e.Time.UnixMicro()).UTC()
	if len(n.Data) == 0 {
		n.Data = nil
	}
	n.Attributes = maps.Clone(e.Attributes)
	if n.Attributes == nil {
		n.Attributes = map[string]string{}
	}
	return &n
}

// checkEqual fails the test unless got is exactly want after normalization.
func checkEqual(t testing.TB, got, want *Event) {
	t.Helper()
	want = normalize(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events differ:\n got %s\nwant %s", describe(got), describe(want))
	}
}

func describe(e *Event) string {
	if e == nil {
		return "<nil>"
	}
	data := e.Data
	if len(data) > 64 {
		data = data[:64]
	}
	return fmt.Sprintf("{ID:%q Source:%q Type:%q Subject:%q Time:%s (%#v) Key:%q ContentType:%q Data(%d):%q Attributes:%q TraceParent:%q TraceState:%q}",
		e.ID, e.Source, e.Type, e.Subject, e.Time.Format(time.RFC3339Nano), e.Time.Location(), e.Key, e.ContentType,
		len(e.Data), data, e.Attributes, e.TraceParent, e.TraceState)
}

// toNative returns e as goavro's native form of the envelope. Empty
// optional strings become null, or, if emptyAsString, the string branch
// with an empty string. Time is an int64 for plainCodec (micros), a
// time.Time for logicalCodec.
func toNative(e *Event, emptyAsString, micros bool) map[string]any {
	opt := func(s string) any {
		if s == "" && !emptyAsString {
			return nil
		}
		return goavro.Union("string", s)
	}
	attrs := make(map[string]any, len(e.Attributes))
	for k, v := range e.Attributes {
		attrs[k] = v
	}
	var tm any = e.Time
	if micros {
		tm = e.Time.UnixMicro()
	}
	data := e.Data
	if data == nil {
		data = []byte{}
	}
	return map[string]any{
		"id":           e.ID,
		"source":       e.Source,
		"type":         e.Type,
		"subject":      opt(e.Subject),
		"time":         tm,
		"key":          opt(e.Key),
		"content_type": e.ContentType,
		"data":         data,
		"attributes":   attrs,
		"traceparent":  opt(e.TraceParent),
		"tracestate":   opt(e.TraceState),
	}
}

// fromNative converts goavro's native form of an envelope to an Event, in
// the normalized form Decode returns.
func fromNative(t testing.TB, native any) *Event {
	t.Helper()
	m, ok := native.(map[string]any)
	if !ok {
		t.Fatalf("goavro returned %T, want a map", native)
	}
	str := func(name string) string {
		s, ok := m[name].(string)
		if !ok {
			t.Fatalf("goavro: field %s is %T", name, m[name])
		}
		return s
	}
	opt := func(name string) string {
		switch v := m[name].(type) {
		case nil:
			return ""
		case map[string]any:
			s, ok := v["string"].(string)
			if !ok || len(v) != 1 {
				t.Fatalf("goavro: field %s is %#v", name, v)
			}
			return s
		default:
			t.Fatalf("goavro: field %s is %T", name, v)
			return ""
		}
	}
	e := &Event{
		ID:          str("id"),
		Source:      str("source"),
		Type:        str("type"),
		Subject:     opt("subject"),
		Key:         opt("key"),
		ContentType: str("content_type"),
		TraceParent: opt("traceparent"),
		TraceState:  opt("tracestate"),
	}
	switch tm := m["time"].(type) {
	case int64:
		e.Time = time.UnixMicro(tm).UTC()
	case time.Time:
		e.Time = tm.UTC()
	default:
		t.Fatalf("goavro: field time is %T", tm)
	}
	data, ok := m["data"].([]byte)
	if !ok {
		t.Fatalf("goavro: field data is %T", m["data"])
	}
	if len(data) > 0 {
		e.Data = bytes.Clone(data)
	}
	attrs, ok := m["attributes"].(map[string]any)
	if !ok {
		t.Fatalf("goavro: field attributes is %T", m["attributes"])
	}
	e.Attributes = make(map[string]string, len(attrs))
	for k, v := range attrs {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("goavro: attribute %q is %T", k, v)
		}
		e.Attributes[k] = s
	}
	return e
}

// Pieces that random strings are made of: ASCII, multi-byte UTF-8, a
// four-byte emoji, NUL and other control characters, line separators.
var stringPieces = []string{
	"a", "Z", "0", "-", ".", " ", "/", "\"", "\\", "é", "ß", "Ω", "日本語", "中", "🙂", "🎉",
	"\x00", "\n", "\t", "\u2028", "\uFEFF", "\U0010FFFF",
}

func randString(r *rand.Rand) string {
	var n int
	switch r.IntN(10) {
	case 0, 1:
		return ""
	case 2:
		n = 200 + r.IntN(2000) // long
	default:
		n = 1 + r.IntN(30)
	}
	var b strings.Builder
	for range n {
		b.WriteString(stringPieces[r.IntN(len(stringPieces))])
	}
	return b.String()
}

// randEvent returns a random event, with every field empty or nil now and
// then, unicode in every string, and now and then a megabyte of data.
// wideTime allows any time timestamp-micros can hold; otherwise times are
// within years 1 to 9999, which goavro's time.Time conversion handles.
func randEvent(r *rand.Rand, wideTime bool) *Event {
	e := &Event{
		ID:          randString(r),
		Source:      randString(r),
		Type:        randString(r),
		Subject:     randString(r),
		Key:         randString(r),
		ContentType: randString(r),
		TraceParent: randString(r),
		TraceState:  randString(r),
	}
	const year1, year9999 = -62135596800_000000, 253402300799_999999
	switch r.IntN(8) {
	case 0: // the zero time.Time
	case 1:
		if wideTime {
			e.Time = time.UnixMicro(r.Int64() - r.Int64()).In(time.FixedZone("X", 3600))
			break
		}
		fallthrough
	default:
		e.Time = time.UnixMicro(year1 + r.Int64N(year9999-year1)).Add(time.Duration(r.IntN(1000)))
	}
	switch r.IntN(50) {
	case 0, 1, 2, 3, 4: // nil
	case 5, 6, 7, 8, 9:
		e.Data = []byte{}
	case 10:
		e.Data = make([]byte, 1<<20+r.IntN(1000))
		fillRandom(r, e.Data)
	default:
		e.Data = make([]byte, r.IntN(600))
		fillRandom(r, e.Data)
	}
	switch r.IntN(4) {
	case 0: // nil
	case 1:
		e.Attributes = map[string]string{}
	default:
		n := 1 + r.IntN(25)
		e.Attributes = make(map[string]string, n)
		for range n {
			e.Attributes[randString(r)] = randString(r)
		}
	}
	return e
}

func fillRandom(r *rand.Rand, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
