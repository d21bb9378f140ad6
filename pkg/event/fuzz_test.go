package event

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds Decode arbitrary input, starting from the golden files.
// Decode must never panic, and whatever it accepts must survive a round
// trip: it re-encodes (Decode only returns events Encode can write), the
// re-encoding decodes to the same event and encodes to the same bytes, and
// goavro reads the re-encoding as the same event.
//
//	go test ./pkg/event -run '^$' -fuzz FuzzDecode -fuzztime 30s
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil {
		f.Fatal(err)
	}
	if len(seeds) == 0 {
		f.Fatal("no golden files in testdata")
	}
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xC3, 0x01})
	f.Add(header[:])
	f.Add(valid())
	f.Add(body(fieldsBefore("attributes"), long(-1), long(4), str("k"), str("v"), long(0), null(), null()))

	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned an event and the error %v", err)
			}
			return
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("Encode(decoded event): %v\nevent %s", err, describe(e))
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(re-encoded): %v", err)
		}
		checkEqual(t, again, e)
		if b2, _ := Encode(again); !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable:\n% x\n% x", b, b2)
		}
		native, rest, err := plainCodec.NativeFromSingle(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("goavro NativeFromSingle(re-encoded): %v, %d bytes left", err, len(rest))
		}
		checkEqual(t, fromNative(t, native), e)
	})
}
