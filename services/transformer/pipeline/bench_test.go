package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/internal/procstat"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// The benchmark flow: the filter and 3-line transform of pkg/script's
// BenchmarkFilterAndTransform, on events of about 300 bytes.
const (
	benchFilter    = `event.type == "order.created" and event.data["amount"] >= 10`
	benchTransform = `
def transform(event):
    d = event.data
    return {"order": d["id"], "customer": d["customer"]["email"],
            "total": d["amount"] * 2, "currency": d["currency"].upper()}
`
)

var benchFlows = []struct {
	name, filter, transform string
}{
	{"passthrough", "", ""},
	{"filter", benchFilter, ""},
	{"filter+transform", benchFilter, benchTransform},
}

func benchEvents(n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	now := time.Now()
	for i := range recs {
		data := fmt.Sprintf(`{"id":"ord_%010d","customer":{"id":"cus_%d","email":"jane%d@example.com","name":"Jane Doe"},"amount":%d,"currency":"eur","items":[{"sku":"A-1","qty":2,"price":25.5}],"paid":true,"note":null}`,
			i, i%1000, i%1000, 10+i%500)
		key := "cus_" + strconv.Itoa(i%1000)
		v, err := event.Encode(&event.Event{
			ID: fmt.Sprintf("01J%023d", i), Source: "orders", Type: "order.created", Time: now, Key: key,
			ContentType: "application/json", Data: []byte(data),
		})
		if err != nil {
			panic(err)
		}
		recs[i] = &kgo.Record{Key: []byte(key), Value: v}
	}
	return recs
}

// BenchmarkBatch is the transformer's CPU cost per event without Kafka:
// decoding the envelope, the flow's filter and transform, encoding the
// output envelope and building its record, on all workers.
func BenchmarkBatch(b *testing.B) {
	for _, bf := range benchFlows {
		b.Run(bf.name, func(b *testing.B) {
			p, tbl := offline(b, []*samsav1.Source{{Name: "orders", Topic: "src"}},
				[]*samsav1.Flow{{Name: "f", Source: "orders", Filter: bf.filter, Transform: bf.transform}})
			recs := benchEvents(2000)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += len(recs) {
				n := min(len(recs), b.N-done)
				out, bt := runOffline(p, tbl, "src", recs[:n])
				if bt.err() != nil || len(out["samsa.out.f"]) != n {
					b.Fatalf("%d outputs, %v", len(out["samsa.out.f"]), bt.err())
				}
			}
		})
	}
}

// benchN is the number of events of the end-to-end benchmarks.
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("SAMSA_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// progress measures a drain: the time from the end of the first
// transaction to the end of the last, and the events in between.
type progress struct {
	mu       sync.Mutex
	total    int64
	first    time.Time
	firstN   int64
	firstCPU time.Duration
	last     time.Time
	lastCPU  time.Duration
	// The broker's CPU time, when SAMSA_BENCH_BROKER_PID names its process.
	brokerPID               int
	firstBroker, lastBroker time.Duration
	finished                chan struct{}
	want                    int64
}

func newProgress(want int) *progress {
	pid, _ := strconv.Atoi(os.Getenv("SAMSA_BENCH_BROKER_PID"))
	return &progress{want: int64(want), finished: make(chan struct{}), brokerPID: pid}
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total >= p.want {
		return
	}
	now, cpu, broker := time.Now(), procCPUTime(os.Getpid()), procCPUTime(p.brokerPID)
	if p.first.IsZero() {
		p.first, p.firstN, p.firstCPU, p.firstBroker = now, n, cpu, broker
	}
	p.total += n
	p.last, p.lastCPU, p.lastBroker = now, cpu, broker
	if p.total >= p.want {
		close(p.finished)
	}
}

func (p *progress) Add(_ string, c stats.Counts)                    { p.add(c.Received) }
func (p *progress) Error(string, string, string, string, time.Time) {}

// procCPUTime is the CPU time of process pid (user and system); 0 when
// pid is 0 or unknown.
func procCPUTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	u, _ := procstat.Process(pid)
	return u.CPU
}

// cpuPerEvent is the CPU time this process and (if known) the broker spent
// per event of the drain.
func (p *progress) cpuPerEvent() (self, broker time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := time.Duration(p.total - p.firstN); n > 0 {
		return (p.lastCPU - p.firstCPU) / n, (p.lastBroker - p.firstBroker) / n
	}
	return 0, 0
}

func (p *progress) wait(b *testing.B) (events int64, d time.Duration) {
	select {
	case <-p.finished:
	case <-time.After(10 * time.Minute):
		b.Fatalf("drained %d of %d events in 10 minutes", p.total, p.want)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total - p.firstN, p.last.Sub(p.first)
}

// benchSource fills a new 6-partition topic with n benchmark events and
// returns it and the mean record size.
func (e *env) benchSource(n int) (string, float64) {
	src := e.topic(6)
	recs := benchEvents(n)
	var size int
	for _, r := range recs {
		size += len(r.Value) + len(r.Key)
	}
	for i := 0; i < n; i += 20000 {
		e.produce(src, recs[i:min(i+20000, n)])
	}
	return src, float64(size) / float64(n)
}

// BenchmarkTopicToTopic drains a source topic of N (SAMSA_BENCH_EVENTS,
// default 200,000) events of about 300 bytes through one transformer with
// transactions on, on the real broker. One op is one drain; events/s is
// measured from the end of the first transaction to the end of the last
// (so that joining the group is not counted).
func BenchmarkTopicToTopic(b *testing.B) {
	n := benchN()
	for _, bf := range benchFlows {
		b.Run(bf.name, func(b *testing.B) {
			b.ReportAllocs()
			var rate float64
			var cpu, bcpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e := newEnv(b)
				src, size := e.benchSource(n)
				e.putSource(&samsav1.Source{Name: "orders", Topic: src})
				fl := flowName("bench")
				e.flowTopics(fl, 6)
				e.putFlow(&samsav1.Flow{Name: fl, Source: "orders", Filter: bf.filter, Transform: bf.transform})
				st := e.store()
				pr := newProgress(n)
				cfg := e.config("bench")
				cfg.MaxBatch = 10000
				p, err := New(cfg, e.cfg, st, zap.NewNop(), nil, WithCounters(pr))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				b.StartTimer()
				go func() { defer close(done); _ = p.Run(ctx) }()
				events, d := pr.wait(b)
				b.StopTimer()
				cancel()
				<-done
				rate = float64(events) / d.Seconds()
				cpu, bcpu = pr.cpuPerEvent()
				b.Logf("%s: %d events of %.0f bytes in %s after the first transaction: %.0f events/s, CPU per event %.1f µs (transformer), %.1f µs (broker)",
					bf.name, events, size, d.Round(time.Millisecond), rate, float64(cpu)/1e3, float64(bcpu)/1e3)
			}
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(float64(cpu)/1e3, "cpu-µs/event")
			if bcpu > 0 {
				b.ReportMetric(float64(bcpu)/1e3, "broker-cpu-µs/event")
			}
		})
	}
}

// BenchmarkRawTransactLoop is the ceiling: the simplest franz-go
// consume-produce loop in transactions (GroupTransactSession, records
// copied unchanged), on the same broker, data and batch size.
func BenchmarkRawTransactLoop(b *testing.B) {
	n := benchN()
	b.ReportAllocs()
	var rate float64
	var cpu, bcpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b)
		src, _ := e.benchSource(n)
		out := e.topic(6)
		opts, err := e.cfg.Options(nil)
		if err != nil {
			b.Fatal(err)
		}
		sess, err := kgo.NewGroupTransactSession(append(opts,
			kgo.ConsumerGroup(e.group), kgo.ConsumeTopics(src),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.TransactionalID(e.txnPrefix+"-raw"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)...)
		if err != nil {
			b.Fatal(err)
		}
		pr := newProgress(n)
		ctx := context.Background()
		b.StartTimer()
		for {
			fs := sess.PollRecords(ctx, 10000)
			if fs.NumRecords() == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				b.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, nil)
			})
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				b.Fatal(err)
			}
			if committed {
				pr.add(int64(fs.NumRecords()))
			}
			select {
			case <-pr.finished:
			default:
				continue
			}
			break
		}
		events, d := pr.wait(b)
		b.StopTimer()
		sess.Close()
		rate = float64(events) / d.Seconds()
		cpu, bcpu = pr.cpuPerEvent()
		b.Logf("raw loop: %d events in %s after the first transaction: %.0f events/s, CPU per event %.1f µs (loop), %.1f µs (broker)",
			events, d.Round(time.Millisecond), rate, float64(cpu)/1e3, float64(bcpu)/1e3)
	}
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(float64(cpu)/1e3, "cpu-µs/event")
	if bcpu > 0 {
		b.ReportMetric(float64(bcpu)/1e3, "broker-cpu-µs/event")
	}
}
