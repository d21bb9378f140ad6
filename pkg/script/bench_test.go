package script

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/samsa-dev/samsa/pkg/event"
)

// benchPayload is a typical ~300-byte order event.
var benchPayload = []byte(`{"id":"ord_1234567890","customer":{"id":"cus_42","email":"jane@example.com","name":"Jane Doe"},"amount":125,"currency":"eur","items":[{"sku":"A-1","qty":2,"price":25.5},{"sku":"B-2","qty":1,"price":74}],"created_at":"2024-05-01T12:00:00Z","paid":true,"note":null}`)

const (
	benchFilter    = `event.type == "order.created" and event.data["amount"] >= 10`
	benchTransform = `
def transform(event):
    d = event.data
    return {"order": d["id"], "customer": d["customer"]["email"],
            "total": d["amount"] * 2, "currency": d["currency"].upper()}
`
)

func benchEvent() *event.Event {
	ev := testEvent(string(benchPayload))
	return ev
}

func benchRun(b *testing.B, p *Program, ev *event.Event) {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Data)))
	for b.Loop() {
		res, err := p.Run(ctx, ev)
		if err != nil || !res.Kept || len(res.Outputs) != 1 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkFilterAndTransform measures a typical flow: a filter reading the
// type and one field, and a 3-line transform building a new payload.
func BenchmarkFilterAndTransform(b *testing.B) {
	benchRun(b, mustCompile(b, benchFilter, benchTransform), benchEvent())
}

// BenchmarkFilterOnly measures a filter on the payload, with no transform
// (the payload is passed through without re-encoding).
func BenchmarkFilterOnly(b *testing.B) {
	benchRun(b, mustCompile(b, benchFilter, ""), benchEvent())
}

// BenchmarkIdentity measures the identity: no script at all, and a
// transform decoding and re-encoding the whole payload.
func BenchmarkIdentity(b *testing.B) {
	b.Run("none", func(b *testing.B) {
		benchRun(b, mustCompile(b, "", ""), benchEvent())
	})
	b.Run("reencode", func(b *testing.B) {
		benchRun(b, mustCompile(b, "", "def transform(event):\n    return event.data\n"), benchEvent())
	})
}

// BenchmarkJSON compares the payload codec with encoding/json into a map.
func BenchmarkJSON(b *testing.B) {
	b.Run("decode", func(b *testing.B) {
		keys := keyCache{}
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		for b.Loop() {
			if _, _, err := decodeJSON(string(benchPayload), 1<<30, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		v, _, _ := decodeJSON(string(benchPayload), 1<<30, nil)
		var buf []byte
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		for b.Loop() {
			e := jsonEncoder{buf: buf[:0], limit: 1 << 30}
			if err := e.encode(v); err != nil {
				b.Fatal(err)
			}
			buf = e.buf
		}
	})
	b.Run("encoding-json-roundtrip", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchPayload)))
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(benchPayload, &m); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLazyLoad measures the validation of a payload on the first use
// of event.data (lazyjson.go), which replaces decoding it whole.
func BenchmarkLazyLoad(b *testing.B) {
	var doc jsonDoc
	doc.keys = keyCache{}
	s := string(benchPayload)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		doc.reset()
		if _, _, err := doc.load(s, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonical measures the check that lets an unmodified payload
// be copied instead of encoded.
func BenchmarkCanonical(b *testing.B) {
	s := string(benchPayload)
	var keys []keySpan
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if ok, _ := canonicalJSONKeys(s, &keys); !ok {
			b.Fatal("not canonical")
		}
	}
}

// BenchmarkRunParallel runs the filter and transform from all CPUs at once.
func BenchmarkRunParallel(b *testing.B) {
	p := mustCompile(b, benchFilter, benchTransform)
	ev := benchEvent()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := p.Run(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
