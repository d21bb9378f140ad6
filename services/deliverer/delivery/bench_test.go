package delivery

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/samsa-dev/samsa/internal/procstat"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// preload produces n events over keys keys to the flow's delivery topic,
// in large batches, before the clock starts.
func preload(b *testing.B, e *env, name string, n, keys int) {
	b.Helper()
	const batch = 5000
	payload := []byte(`{"order":"o-123456","amount":42.5,"currency":"EUR","customer":{"id":1234,"tier":"gold"}}`)
	now := time.Now()
	for from := 0; from < n; from += batch {
		recs := make([]*kgo.Record, 0, batch)
		for i := from; i < min(n, from+batch); i++ {
			k := fmt.Sprintf("key-%d", i%keys)
			v, err := event.Encode(&event.Event{ID: fmt.Sprintf("%s-%d", name, i), Source: "bench", Type: "order.created",
				Key: k, Time: now, ContentType: "application/json", Data: payload})
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: kafka.DeliveryTopic(name), Key: []byte(k), Value: v})
		}
		if err := e.cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
}

// measure starts a deliverer and reports the steady throughput: events/s
// from the first delivery to the last (the group join before the first
// delivery, a second or two, is left out and reported as startup-s).
func measure(b *testing.B, e *env, n int, done func(*Deliverer) int) {
	b.Helper()
	b.ReportAllocs()
	// The peak resident set from here on.
	procstat.ResetPeak(os.Getpid())
	live := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peakLive uint64
	b.ResetTimer()
	start := time.Now()
	u0, _ := procstat.Process(os.Getpid())
	d := e.start()
	deadline := start.Add(5 * time.Minute)
	var first time.Time
	var inflight, buffered, samples int
	for {
		c := done(d)
		if c > 0 && first.IsZero() {
			first = time.Now()
		}
		if c >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d delivered after 5 minutes", c, n)
		}
		for _, s := range d.Stats() {
			inflight += s.InFlight
			buffered += s.Buffered
		}
		samples++
		rtmetrics.Read(live)
		peakLive = max(peakLive, live[0].Value.Uint64())
		time.Sleep(20 * time.Millisecond)
	}
	end := time.Now()
	u1, _ := procstat.Process(os.Getpid())
	cpu := u1.CPU - u0.CPU
	b.StopTimer()
	// CPU time of this process (the deliverer; the HTTP endpoint runs in
	// a process of its own) per event.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
	b.ReportMetric(float64(n)/end.Sub(first).Seconds(), "events/s")
	b.ReportMetric(first.Sub(start).Seconds(), "startup-s")
	b.ReportMetric(float64(inflight)/float64(max(samples, 1)), "in-flight")
	b.ReportMetric(float64(buffered)/float64(max(samples, 1)), "buffered")
	// Memory of this process (the deliverer and the benchmark's idle
	// producer): the live heap after a GC, and the peak RSS.
	b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(u1.PeakRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(0, "ns/op")
}

// sink is a minimal HTTP destination: it counts requests and answers 204,
// or 503 for the share of attempts the benchmark wants to fail. It runs in
// a process of its own (this test binary, re-executed; see TestMain), so
// that the deliverer's CPU time is measured alone; GET /count returns the
// number of 204s.
type sink struct {
	ok       atomic.Int64
	failRate float64
}

// serve is a fasthttp handler: the endpoint shares the machine with the
// deliverer, and fasthttp needs a fraction of net/http's CPU per request,
// which is closer to an endpoint on another machine.
func (s *sink) serve(ctx *fasthttp.RequestCtx) {
	if ctx.IsGet() {
		fmt.Fprint(ctx, s.ok.Load())
		return
	}
	if s.failRate > 0 && rand.Float64() < s.failRate {
		ctx.SetStatusCode(503)
		return
	}
	s.ok.Add(1)
	ctx.SetStatusCode(204)
}

// envSink makes the test binary run a sink instead of the tests: the value
// is the failure rate.
const envSink = "SAMSA_BENCH_SINK"

// runSink serves a sink on a loopback port, printed on stdout, until stdin
// closes.
func runSink(failRate string) {
	s := &sink{}
	_, _ = fmt.Sscan(failRate, &s.failRate)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	go func() { _ = (&fasthttp.Server{Handler: s.serve, ReadTimeout: time.Minute}).Serve(ln) }()
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startSink runs a sink process; count returns its 204s so far.
func startSink(b *testing.B, failRate float64) (addr string, count func() int) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%v", envSink, failRate))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	if _, err := fmt.Fscanln(out, &addr); err != nil {
		b.Fatalf("sink address: %v", err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	return addr, func() int {
		resp, err := client.Get("http://" + addr + "/count")
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var n int
		_, _ = fmt.Fscan(resp.Body, &n)
		return n
	}
}

func benchHTTP(b *testing.B, failRate float64) {
	inFlight := 0
	if v := os.Getenv("SAMSA_BENCH_IN_FLIGHT"); v != "" {
		_, _ = fmt.Sscan(v, &inFlight)
	}
	e := newEnv(b)
	name := flowName()
	const parts = 6
	e.createTopics(name, parts)
	n := b.N
	preload(b, e, name, n, 10000)
	addr, count := startSink(b, failRate)
	f := &samsav1.Flow{
		Name: name, Source: "bench",
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url: "http://" + addr + "/hook", SigningSecret: testSecret, AllowPrivateNetwork: true,
		}}},
		Delivery: &samsav1.Delivery{
			Retry:          &samsav1.Retry{InitialBackoff: "10ms", MaxBackoff: "50ms"},
			CircuitBreaker: &samsav1.CircuitBreaker{FailureThreshold: -1},
			MaxInFlight:    int32(inFlight), // SAMSA_BENCH_IN_FLIGHT; default 64
		},
	}
	e.putFlow(f)
	measure(b, e, n, func(*Deliverer) int { return count() })
}

// BenchmarkHTTP delivers b.N events to a local HTTP endpoint (keep-alive,
// 64 requests in flight, signed). Run with -benchtime=200000x.
func BenchmarkHTTP(b *testing.B) { benchHTTP(b, 0) }

// BenchmarkHTTPRetries is BenchmarkHTTP with 5% of attempts answered 503
// and retried after 10-50ms: compare its events/s with BenchmarkHTTP's.
func BenchmarkHTTPRetries(b *testing.B) { benchHTTP(b, 0.05) }

// BenchmarkKafka delivers b.N events to a Kafka topic on the same cluster,
// exactly-once (transactions). Run with -benchtime=500000x.
func BenchmarkKafka(b *testing.B) {
	e := newEnv(b)
	name := flowName()
	const parts = 6
	e.createTopics(name, parts)
	dest := "bench-dest-" + name
	if err := e.kcfg.EnsureTopics(e.ctx, e.cl, kafka.TopicSpec{Name: dest, Partitions: parts, Replication: 1}); err != nil {
		b.Fatal(err)
	}
	n := b.N
	preload(b, e, name, n, 10000)
	e.putFlow(kafkaFlow(name, dest, "envelope"))
	// Delivered counts events whose transaction committed.
	measure(b, e, n, func(d *Deliverer) int {
		for _, s := range d.Stats() {
			if s.Flow == name {
				return int(s.Delivered)
			}
		}
		return 0
	})
}
