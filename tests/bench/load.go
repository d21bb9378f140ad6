package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

// loader posts NDJSON batches of order events to a source through the
// receiver's REST front door and waits for every acknowledgement.
type loader struct {
	url, source, apiKey string
	cl                  *http.Client
	seq                 *atomic.Int64 // shared by every loader of a bench: sequence numbers are unique
}

func newLoader(url, source, apiKey string, seq *atomic.Int64, conns int) *loader {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &loader{url: url, source: source, apiKey: apiKey, seq: seq,
		cl: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// payloadSize is the approximate size of one event's JSON payload.
const payloadSize = 300

const noteChars = "abcdefghijklmnopqrstuvwxyz      ,.0123456789"

// appendEvent appends one NDJSON line of about payloadSize bytes: an order
// with a unique seq and its send time ts (Unix nanoseconds).
func appendEvent(b []byte, seq int64, ts time.Time) []byte {
	start := len(b)
	b = append(b, `{"id":"order-`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts.UnixNano(), 10)
	b = append(b, `,"customer":{"email":"customer-`...)
	b = strconv.AppendInt(b, seq%5000, 10)
	b = append(b, `@example.com","tier":"gold"},"amount":`...)
	b = strconv.AppendInt(b, seq%997, 10)
	b = append(b, `,"currency":"eur","note":"`...)
	// Text that compresses about as well as typical JSON does (a run of
	// one letter would compress a hundredfold and flatter every fetch).
	x := uint64(seq)*0x9E3779B97F4A7C15 + 1
	for len(b)-start < payloadSize-3 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = append(b, noteChars[x%uint64(len(noteChars))])
	}
	return append(b, "\"}\n"...)
}

// send posts one batch until it is acknowledged (harness.PostEvents:
// 429, 5xx and 404 retried with the same Idempotency-Key, so a retried
// batch keeps its ids).
func (l *loader) send(ctx context.Context, body []byte, key, idem string) error {
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Authorization", "Bearer "+l.apiKey)
	h.Set("Samsa-Key", key)
	h.Set("Idempotency-Key", idem)
	return harness.PostEvents(ctx, l.cl, func(int) string { return l.url }, l.source, h, body)
}

// batch builds a request of n events stamped ts and returns it with its
// first sequence number.
func (l *loader) batch(n int, ts time.Time) ([]byte, int64) {
	first := l.seq.Add(int64(n)) - int64(n)
	b := make([]byte, 0, n*(payloadSize+1))
	for i := range int64(n) {
		b = appendEvent(b, first+i, ts)
	}
	return b, first
}

func keyOf(first int64, batch int) string {
	return "k" + strconv.FormatInt(first/int64(batch)%1000, 10)
}

// saturate sends n events in batches of size batch over conns connections
// as fast as they are acknowledged. It returns the sequence numbers used
// ([lo, lo+n)), when the first request was sent and when the last was
// acknowledged.
func (l *loader) saturate(ctx context.Context, n, batch, conns int) (lo int64, start, end time.Time, err error) {
	reqs := n / batch
	lo = l.seq.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	start = time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(reqs) {
				body, first := l.batch(batch, time.Now())
				if err := l.send(ctx, body, keyOf(first, batch), "bench-"+strconv.FormatInt(first, 10)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	end = time.Now()
	close(errc)
	if err := <-errc; err != nil {
		return lo, start, end, err
	}
	if got := l.seq.Load() - lo; got != int64(reqs*batch) {
		return lo, start, end, fmt.Errorf("bench: another loader ran concurrently (%d sequence numbers used, %d sent)", got, reqs*batch)
	}
	return lo, start, end, nil
}

// paced sends rate events/s for d, in batches of size batch, each request
// sent at its scheduled time by one of workers goroutines. An event's ts is
// the time its request was due, so a request that waits for a worker counts
// the wait in its latencies (no coordinated omission). It returns the
// sequence numbers used and each request's acknowledgement latency.
func (l *loader) paced(ctx context.Context, rate float64, batch int, d time.Duration, workers int) (lo, hi int64, ack []time.Duration, err error) {
	interval := time.Duration(float64(time.Second) * float64(batch) / rate)
	reqs := int(d / interval)
	due := make(chan time.Time, reqs)
	lo = l.seq.Load()
	var mu sync.Mutex
	ack = make([]time.Duration, 0, reqs)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				body, first := l.batch(batch, at)
				if err := l.send(ctx, body, keyOf(first, batch), "bench-"+strconv.FormatInt(first, 10)); err != nil {
					errc <- err
					return
				}
				lat := time.Since(at)
				mu.Lock()
				ack = append(ack, lat)
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := range reqs {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(w):
			}
		}
		if ctx.Err() != nil {
			break
		}
		due <- at
	}
	close(due)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return lo, l.seq.Load(), ack, err
	}
	return lo, l.seq.Load(), ack, ctx.Err()
}
