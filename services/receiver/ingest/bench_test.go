package ingest

import (
	"net/http"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/ulid"
)

// benchIngestPath is the CPU work of one request without the network and
// Kafka: parse and validate the body, check the events, assign ids and
// encode the envelopes into the record buffer.
func benchIngestPath(b *testing.B, md media, body []byte, wantEvents int) {
	b.Helper()
	p := &producer{maxEventBytes: 1 << 20}
	var gen ulid.Generator
	h := http.Header{}
	h.Set("Ce-Type", "order.created")
	h.Set("Samsa-Key", "customer-42")
	evs := make([]event.Event, 0, 128)
	ids := make([]string, 0, 128)
	bt := &batch{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		var err error
		evs, err = parseBody(md, ContentTypeJSON, h, body, now, "", testLimits, evs[:0])
		if err != nil || len(evs) != wantEvents {
			b.Fatal(err, len(evs))
		}
		ids = ids[:len(evs)]
		gen.Fill(now, ids)
		for i := range evs {
			if err := checkEvent(&evs[i]); err != nil {
				b.Fatal(err)
			}
			evs[i].Source, evs[i].ID = "orders", ids[i]
		}
		if err := p.encode(bt, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*wantEvents)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkIngestPathNDJSON100x300(b *testing.B) {
	benchIngestPath(b, mediaNDJSON, ndjsonBody(100, 300), 100)
}

func BenchmarkIngestPathSingle300(b *testing.B) {
	body := ndjsonBody(1, 300)
	benchIngestPath(b, mediaJSON, body[:len(body)-1], 1)
}

func BenchmarkIngestPathCEBatch100(b *testing.B) {
	var body []byte
	body = append(body, '[')
	line := ndjsonBody(1, 300)
	for i := 0; i < 100; i++ {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"specversion":"1.0","id":"evt-`...)
		body = append(body, byte('0'+i/10), byte('0'+i%10))
		body = append(body, `","type":"order.created","source":"/shop","data":`...)
		body = append(body, line[:len(line)-1]...)
		body = append(body, '}')
	}
	body = append(body, ']')
	benchIngestPath(b, mediaCEBatch, body, 100)
}
