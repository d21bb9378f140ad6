package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
)

// recordOverhead approximates the memory a record costs beyond its key and
// value (the kgo.Record, the client's bookkeeping), so that many tiny
// events are bounded as well as a few big ones.
const recordOverhead = 160

// producer encodes events into envelopes and produces them with the
// idempotent producer and acks=all, waiting for every acknowledgement.
// Memory is bounded: the encoded events of all requests in flight stay
// below maxBuffered, and a request that would exceed it is refused at once
// (429) rather than queued.
type producer struct {
	cl            *kgo.Client
	maxBuffered   int64
	maxEventBytes int
	buffered      atomic.Int64
	inflight      atomic.Int64 // requests waiting for acknowledgements
	pool          sync.Pool    // *batch
}

// producerOpts are the client options the producer needs on top of the
// Kafka configuration's.
func producerOpts(cfg *Config) []kgo.Opt {
	return []kgo.Opt{
		// Both are franz-go's defaults; they are the receiver's guarantee,
		// so they are spelled out.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
		kgo.ProduceRequestTimeout(min(cfg.ProduceTimeout, 10*time.Second)),
		kgo.ProducerBatchMaxBytes(int32(max(1_000_012, cfg.MaxEventBytes+16<<10))),
		// The byte budget below is what bounds buffering; the client's own
		// record limit must never be the one that blocks.
		kgo.MaxBufferedRecords(int(cfg.MaxBufferedBytes/recordOverhead) + cfg.MaxEvents + 1),
	}
}

func newProducer(cl *kgo.Client, cfg *Config) *producer {
	return &producer{cl: cl, maxBuffered: cfg.MaxBufferedBytes, maxEventBytes: cfg.MaxEventBytes}
}

// batch is the state of one request's records, pooled between requests.
type batch struct {
	recs []kgo.Record
	buf  []byte // every record's value and key
	offs []int  // value i is buf[offs[2i]:offs[2i+1]], key i up to offs[2i+2]

	remaining atomic.Int64
	mu        sync.Mutex
	err       error
	done      chan struct{}
	promise   func(*kgo.Record, error)
}

func (p *producer) getBatch() *batch {
	if b, ok := p.pool.Get().(*batch); ok {
		return b
	}
	b := &batch{done: make(chan struct{}, 1)}
	b.promise = b.finish
	return b
}

func (p *producer) putBatch(b *batch) {
	if cap(b.buf) > 4<<20 || cap(b.recs) > 4096 {
		return // keep the pool from pinning the rare huge request
	}
	clear(b.recs)
	b.recs, b.buf, b.offs, b.err = b.recs[:0], b.buf[:0], b.offs[:0], nil
	p.pool.Put(b)
}

func (b *batch) finish(_ *kgo.Record, err error) {
	if err != nil {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	if b.remaining.Add(-1) == 0 {
		b.done <- struct{}{}
	}
}

// encode appends the envelopes and keys of events to b.
func (p *producer) encode(b *batch, events []event.Event) error {
	size := 0
	for i := range events {
		e := &events[i]
		size += len(e.Data) + len(e.ID) + len(e.Key)*2 + len(e.Source) + len(e.Type) + len(e.Subject) + 96
	}
	if cap(b.buf) < size {
		b.buf = make([]byte, 0, size)
	}
	buf := b.buf[:0]
	offs := append(b.offs[:0], 0)
	for i := range events {
		e := &events[i]
		start := len(buf)
		var err error
		if buf, err = event.AppendEncode(buf, e); err != nil {
			return errorf(ErrMalformed, "event %d: %v", i+1, err)
		}
		if n := len(buf) - start; n > p.maxEventBytes {
			return errorf(ErrTooLarge, "event %d is %d bytes once encoded, more than the %d bytes a record may hold", i+1, n, p.maxEventBytes)
		}
		offs = append(offs, len(buf))
		buf = append(buf, e.Key...)
		offs = append(offs, len(buf))
	}
	b.buf, b.offs = buf, offs
	return nil
}

// produce encodes events, produces them to topic in order and waits until
// Kafka acknowledged every one, or one failed. On failure some of the
// events may still have been written: the caller retries with the same
// ids, which is why ids are stable.
func (p *producer) produce(topic string, events []event.Event, lat prometheus.Observer) error {
	b := p.getBatch()
	defer p.putBatch(b)
	if err := p.encode(b, events); err != nil {
		return err
	}
	need := int64(len(b.buf)) + int64(len(events))*recordOverhead
	if !p.acquire(need) {
		return &Error{Kind: ErrBufferFull, RetryAfter: time.Second,
			Msg: "the receiver's producer buffer is full (Kafka is slower than the incoming events): retry later"}
	}
	defer p.buffered.Add(-need)
	p.inflight.Add(1)
	defer p.inflight.Add(-1)

	if cap(b.recs) < len(events) {
		b.recs = make([]kgo.Record, len(events))
	}
	b.recs = b.recs[:len(events)]
	b.remaining.Store(int64(len(events)))
	start := time.Now()
	for i := range b.recs {
		r := &b.recs[i]
		r.Topic = topic
		r.Timestamp = start // one clock read per request, not per record
		r.Value = b.buf[b.offs[2*i]:b.offs[2*i+1]:b.offs[2*i+1]]
		if k := b.buf[b.offs[2*i+1]:b.offs[2*i+2]:b.offs[2*i+2]]; len(k) > 0 {
			r.Key = k
		}
		// Trace context also travels in the headers, where Kafka tooling
		// looks for it (the envelope carries it too).
		r.Headers = r.Headers[:0]
		if tp := events[i].TraceParent; tp != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(tp)})
			if ts := events[i].TraceState; ts != "" {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "tracestate", Value: []byte(ts)})
			}
		}
		// The record delivery timeout bounds the wait; a cancelled caller
		// must not cancel records that may already be on their way.
		p.cl.TryProduce(context.Background(), r, b.promise)
	}
	<-b.done
	if b.err != nil {
		return produceError(b.err)
	}
	lat.Observe(time.Since(start).Seconds())
	return nil
}

// acquire reserves n bytes of the buffer budget, without waiting. A request
// larger than the whole budget still goes through when nothing else is
// buffered, so that it is never refused forever.
func (p *producer) acquire(n int64) bool {
	for {
		cur := p.buffered.Load()
		if cur+n > p.maxBuffered && cur > 0 {
			return false
		}
		if p.buffered.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func produceError(err error) error {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return &Error{Kind: ErrTooLarge, Msg: "Kafka refused an event as too large (the topic's max.message.bytes): " + err.Error()}
	case errors.Is(err, kgo.ErrMaxBuffered):
		return &Error{Kind: ErrBufferFull, RetryAfter: time.Second, Msg: "the receiver's producer buffer is full: retry later"}
	}
	return &Error{Kind: ErrUnavailable, Msg: "Kafka did not acknowledge the events (" + err.Error() + "): the request was not accepted; retry it with the same ids"}
}
