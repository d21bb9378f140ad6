package event

import (
	"testing"
)

// The benchmarks use the "full" golden event: every field set, three
// attributes and a JSON payload of about 300 bytes, like a typical webhook.
// The goavro sub-benchmarks, the generic map[string]any path, are there for
// comparison.

func BenchmarkEncode(b *testing.B) {
	e := goldenEvents[1].event
	size := len(must(Encode(e)))

	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := Encode(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendEncode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = AppendEncode(buf[:0], e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goavro", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := plainCodec.SingleFromNative(nil, toNative(e, false, true)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	in := must(Encode(goldenEvents[1].event))

	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := Decode(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goavro", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, _, err := plainCodec.NativeFromSingle(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
