package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
)

// arrivals records what reaches a destination: which sequence numbers
// arrived (each event of a bench run carries a unique "seq" and its send
// time "ts", in Unix nanoseconds, through the transform), duplicates, and
// end-to-end latencies.
type arrivals struct {
	mu        sync.Mutex
	seen      []uint64 // bit set of sequence numbers
	lo, hi    int64    // the current run's sequence numbers: [lo, hi)
	got       int64    // distinct arrivals in [lo, hi)
	dups      int64
	malformed int64
	first     time.Time
	last      time.Time
	latFrom   int64 // latencies of events sent at or after this time (Unix ns)
	latTo     int64
	lat       []time.Duration
}

// expect starts a run: sequence numbers [lo, hi), latencies of events sent
// in [latFrom, latTo) (zero: none).
func (a *arrivals) expect(lo, hi int64, latFrom, latTo time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lo, a.hi, a.got, a.dups, a.malformed = lo, hi, 0, 0, 0
	a.first, a.last = time.Time{}, time.Time{}
	a.latFrom, a.latTo, a.lat = 0, 0, a.lat[:0]
	if !latFrom.IsZero() {
		a.latFrom, a.latTo = latFrom.UnixNano(), latTo.UnixNano()
	}
	if need := int(hi/64) + 1; need > len(a.seen) {
		a.seen = append(a.seen, make([]uint64, need-len(a.seen))...)
	}
}

// record notes one delivered payload, received at now.
func (a *arrivals) record(payload []byte, now time.Time) {
	seq, ok1 := jsonInt(payload, `"seq"`)
	ts, ok2 := jsonInt(payload, `"ts"`)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !ok1 || !ok2 {
		a.malformed++
		return
	}
	if seq < a.lo || seq >= a.hi {
		return // an earlier run's redelivery or a warm-up event
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	if a.seen[w]&bit != 0 {
		a.dups++
		return
	}
	a.seen[w] |= bit
	a.got++
	if a.first.IsZero() {
		a.first = now
	}
	a.last = now
	if a.latTo != 0 && ts >= a.latFrom && ts < a.latTo {
		a.lat = append(a.lat, now.Sub(time.Unix(0, ts)))
	}
}

// snapshot is the state of the current run.
type snapshot struct {
	Got, Dups, Malformed int64
	First, Last          time.Time
}

func (a *arrivals) snapshot() snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return snapshot{Got: a.got, Dups: a.dups, Malformed: a.malformed, First: a.first, Last: a.last}
}

func (a *arrivals) latencies() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.lat)
}

// wait polls until n events of the run have arrived.
func (a *arrivals) wait(ctx context.Context, n int64, timeout time.Duration) (snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s := a.snapshot()
		if s.Got >= n {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("bench: %d of %d events arrived: %w", s.Got, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// jsonInt finds "key": <integer> in a flat JSON object. The bench's own
// payloads are the only input, so a scan is enough and costs the sink
// little CPU.
func jsonInt(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	for len(b) > 0 && (b[0] == ' ' || b[0] == ':') {
		b = b[1:]
	}
	var n int64
	digits := 0
	for ; digits < len(b) && b[digits] >= '0' && b[digits] <= '9'; digits++ {
		n = n*10 + int64(b[digits]-'0')
	}
	return n, digits > 0
}

// httpSink is the webhook endpoint of the HTTP runs: fasthttp, so that the
// endpoint takes as little as possible of the CPU the deliverer shares
// with it (a destination would be on another machine). It answers 204.
type httpSink struct {
	ln  net.Listener
	srv *fasthttp.Server
	arr *arrivals
}

func startHTTPSink(arr *arrivals) (*httpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &httpSink{ln: ln, arr: arr}
	s.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			arr.record(ctx.PostBody(), time.Now())
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		},
		Name:               "bench-sink",
		MaxRequestBodySize: 1 << 20,
		Concurrency:        4096,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *httpSink) URL() string { return "http://" + s.ln.Addr().String() + "/hook" }

func (s *httpSink) Close() { _ = s.srv.Shutdown() }

// kafkaReader consumes a Kafka destination topic (read_committed) into
// arrivals.
type kafkaReader struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startKafkaReader(brokers, topic string, arr *arrivals) (*kafkaReader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &kafkaReader{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			fs.EachRecord(func(rec *kgo.Record) { arr.record(rec.Value, now) })
			fs.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.Canceled) {
					time.Sleep(100 * time.Millisecond) // a broker hiccup; the client retries
				}
			})
		}
	}()
	return r, nil
}

func (r *kafkaReader) Close() {
	r.cancel()
	<-r.done
	r.cl.Close()
}
