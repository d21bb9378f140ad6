package event

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// seed returns the seed of a randomized test, logged so that a failure can
// be reproduced.
func seed(t *testing.T) *rand.Rand {
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d", s)
	return rand.New(rand.NewPCG(s, s>>32))
}

func randomRuns() int {
	if testing.Short() {
		return 200
	}
	return 2000
}

// TestRoundTrip checks that every event survives Encode then Decode, in its
// normalized form, and that encoding is deterministic.
func TestRoundTrip(t *testing.T) {
	r := seed(t)
	for i := range randomRuns() {
		e := randEvent(r, true)
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("event %d: Encode: %v", i, err)
		}
		if n, _, _ := measure(e, nil); n != len(b) || cap(b) != len(b) {
			t.Fatalf("event %d: measure says %d, encoded %d bytes, capacity %d", i, n, len(b), cap(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("event %d: Decode: %v", i, err)
		}
		checkEqual(t, got, e)

		again, err := Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("event %d: re-encoding the decoded event gives other bytes", i)
		}
	}
}

// TestGoavroReadsEncode checks what Encode writes against goavro, an
// independent implementation: NativeFromSingle must accept the header and
// decode the body to the same event, and the time must decode as the same
// instant through the timestamp-micros logical type.
func TestGoavroReadsEncode(t *testing.T) {
	r := seed(t)
	for i := range randomRuns() {
		e := randEvent(r, false)
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("event %d: Encode: %v", i, err)
		}
		native, rest, err := plainCodec.NativeFromSingle(b)
		if err != nil {
			t.Fatalf("event %d: goavro NativeFromSingle: %v\nevent %s", i, err, describe(e))
		}
		if len(rest) != 0 {
			t.Fatalf("event %d: goavro left %d bytes", i, len(rest))
		}
		checkEqual(t, fromNative(t, native), e)

		native, rest, err = logicalCodec.NativeFromBinary(b[headerLen:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("event %d: goavro NativeFromBinary: %v, %d bytes left", i, err, len(rest))
		}
		checkEqual(t, fromNative(t, native), e)
	}
}

// TestDecodeReadsGoavro checks that Decode reads what goavro writes,
// including the string branch of a union holding an empty string (which
// Encode never writes) and goavro's map encoding.
func TestDecodeReadsGoavro(t *testing.T) {
	r := seed(t)
	for i := range randomRuns() {
		e := randEvent(r, false)
		emptyAsString := r.IntN(2) == 0

		b, err := plainCodec.SingleFromNative(nil, toNative(e, emptyAsString, true))
		if err != nil {
			t.Fatalf("event %d: goavro SingleFromNative: %v", i, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("event %d: Decode(goavro): %v\nevent %s", i, err, describe(e))
		}
		checkEqual(t, got, e)

		body, err := logicalCodec.BinaryFromNative(nil, toNative(e, emptyAsString, false))
		if err != nil {
			t.Fatalf("event %d: goavro BinaryFromNative: %v", i, err)
		}
		got, err = Decode(append(header[:len(header):len(header)], body...))
		if err != nil {
			t.Fatalf("event %d: Decode(goavro, logical time): %v", i, err)
		}
		checkEqual(t, got, e)
	}
}

// TestNormalization documents how Encode and Decode treat empty values,
// time zones and precision.
func TestNormalization(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	in := &Event{
		ID:          "1",
		Time:        time.Date(2024, 5, 1, 14, 34, 56, 789012345, paris),
		Data:        []byte{},
		Attributes:  nil,
		Subject:     "",
		TraceParent: "",
	}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 5, 1, 12, 34, 56, 789012000, time.UTC); got.Time != want {
		t.Errorf("time %v (%v), want %v: UTC, microseconds", got.Time, got.Time.Location(), want)
	}
	if got.Data != nil {
		t.Errorf("empty data decodes as %#v, want nil", got.Data)
	}
	if got.Attributes == nil || len(got.Attributes) != 0 {
		t.Errorf("nil attributes decode as %#v, want an empty map", got.Attributes)
	}
	got.Attributes["added"] = "ok" // must not panic

	// nil and empty attributes encode the same.
	in.Attributes = map[string]string{}
	if b2, _ := Encode(in); !bytes.Equal(b, b2) {
		t.Errorf("nil and empty attributes encode differently")
	}

	// Before the epoch, time rounds down, not toward zero.
	in.Time = time.Unix(-1, 999_999_500)
	b, _ = Encode(in)
	if got, _ := Decode(b); !got.Time.Equal(time.Unix(-1, 999_999_000)) {
		t.Errorf("time %v, want 1969-12-31T23:59:59.999999Z", got.Time)
	}

	// The zero time survives as the zero time.
	in.Time = time.Time{}
	b, _ = Encode(in)
	if got, _ := Decode(b); !got.Time.IsZero() {
		t.Errorf("zero time decodes as %v", got.Time)
	}
}

// TestTimeRange checks both ends of timestamp-micros, and that Encode
// refuses times beyond them instead of overflowing.
func TestTimeRange(t *testing.T) {
	for _, tm := range []time.Time{
		time.UnixMicro(math.MinInt64),
		time.UnixMicro(math.MaxInt64),
		time.UnixMicro(math.MaxInt64).Add(999 * time.Nanosecond),
		time.UnixMicro(0),
		time.UnixMicro(-1),
	} {
		b, err := Encode(&Event{Time: tm})
		if err != nil {
			t.Errorf("Encode(time %v): %v", tm, err)
			continue
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Time.UnixMicro() != tm.UnixMicro() {
			t.Errorf("time %v decodes as %v", tm, got.Time)
		}
	}
	for _, tm := range []time.Time{
		time.UnixMicro(math.MinInt64).Add(-time.Nanosecond),
		time.UnixMicro(math.MaxInt64).Add(time.Microsecond),
		time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if _, err := Encode(&Event{Time: tm}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "field time") {
			t.Errorf("Encode(time %v): %v, want ErrInvalid for field time", tm, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	const bad = "ok\xffnot utf-8"
	for _, tc := range []struct {
		field string
		event *Event
	}{
		{"nil *Event", nil},
		{"field id", &Event{ID: bad}},
		{"field source", &Event{Source: bad}},
		{"field type", &Event{Type: bad}},
		{"field subject", &Event{Subject: bad}},
		{"field key", &Event{Key: bad}},
		{"field content_type", &Event{ContentType: bad}},
		{"field traceparent", &Event{TraceParent: bad}},
		{"field tracestate", &Event{TraceState: bad}},
		{"field attributes", &Event{Attributes: map[string]string{bad: "v"}}},
		{"field attributes[k]", &Event{Attributes: map[string]string{"k": bad}}},
	} {
		b, err := Encode(tc.event)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field) || b != nil {
			t.Errorf("%s: Encode = %x, %v; want ErrInvalid naming the field", tc.field, b, err)
		}
		dst := []byte("keep")
		out, err := AppendEncode(dst, tc.event)
		if err == nil || string(out) != "keep" {
			t.Errorf("%s: AppendEncode changed dst to %q (error %v)", tc.field, out, err)
		}
	}
}

// TestEncodeDeterministic checks that attributes are written sorted, so that
// the encoding does not depend on map iteration order.
func TestEncodeDeterministic(t *testing.T) {
	for _, n := range []int{2, attrsOnStack, attrsOnStack + 1, 100} {
		e := &Event{ID: "x", Attributes: map[string]string{}}
		for i := range n {
			e.Attributes[string(rune('a'+i%26))+strings.Repeat("z", i/26)] = "v"
		}
		first, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if b, _ := Encode(e); !bytes.Equal(b, first) {
				t.Fatalf("%d attributes: encoding varies between calls", n)
			}
		}
	}
}

// TestAppendEncode checks that AppendEncode appends, and does not allocate
// when dst is large enough.
func TestAppendEncode(t *testing.T) {
	e := goldenEvents[1].event
	want, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendEncode([]byte("prefix"), e)
	if err != nil || !bytes.Equal(b, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendEncode = %q, %v", b, err)
	}

	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendEncode(buf[:0], e)
	})
	if allocs != 0 {
		t.Errorf("AppendEncode into a large enough buffer: %v allocations, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = Encode(e) }); allocs != 1 {
		t.Errorf("Encode: %v allocations, want 1", allocs)
	}
}

// TestConcurrent encodes and decodes from many goroutines at once, for the
// race detector.
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var buf []byte
			for j := range 200 {
				g := goldenEvents[(i+j)%len(goldenEvents)]
				var err error
				if buf, err = AppendEncode(buf[:0], g.event); err != nil {
					t.Error(err)
					return
				}
				got, err := Decode(buf)
				if err != nil {
					t.Error(err)
					return
				}
				if got.ID != g.event.ID || Fingerprint() != fingerprint {
					t.Errorf("got event %q, want %q", got.ID, g.event.ID)
					return
				}
			}
		})
	}
	wg.Wait()
}
