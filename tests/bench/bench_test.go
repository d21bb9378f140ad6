package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-dev/samsa/internal/procstat"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunMain(m)) }

const apiKey = "sk_bench_load_generator_key"

// partitions of every topic of the bench.
const partitions = 6

// transform is a flow of the kind the targets describe: a filter and a
// small transform (it keeps seq and ts, which the destinations measure).
const (
	filter    = `event.type != "test.ignore" and event.data["amount"] >= 0`
	transform = `def transform(event):
    d = event.data
    return {"order": d["id"], "seq": d["seq"], "ts": d["ts"], "customer": d["customer"]["email"],
            "total": d["amount"] * 2, "currency": d["currency"].upper()}
`
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// bench is one run of TestBench: a cluster, its meters and the report.
type bench struct {
	t      *testing.T
	ctx    context.Context
	c      *harness.Cluster
	ctl    *harness.Control
	adm    *kadm.Client
	procs  []*harness.Proc
	seq    atomic.Int64
	rep    report
	stages map[string]bool
}

// TestBench is `make bench`: a real broker and the four services as
// separate processes, driven through the REST front door. It measures, in
// one run: the raw franz-go ceiling; each stage alone (ingest, transform,
// delivery to Kafka and to HTTP); end to end at saturation to a Kafka
// destination and to an HTTP sink, with CPU and peak RSS per service;
// latencies at 25/50/75% of saturation and at 2,000 events/s; and, with
// SAMSA_BENCH_SOAK, a long run watching memory. It fails when an
// acknowledged event does not arrive.
//
// Environment: SAMSA_BENCH=1 to run; SAMSA_BENCH_STAGES (comma list of
// ceiling, ingest, transform, deliver, e2e, latency, soak; default all but
// soak), SAMSA_BENCH_EVENTS (saturation runs, default 300000; HTTP runs use
// half), SAMSA_BENCH_POINT (each latency point, default 15s),
// SAMSA_BENCH_SOAK (e.g. 10m), SAMSA_BENCH_OUT (a file with the markers of
// docs/benchmarks.md to write the results into).
func TestBench(t *testing.T) {
	if os.Getenv("SAMSA_BENCH") != "1" {
		t.Skip("the end-to-end benchmark runs with SAMSA_BENCH=1 (make bench)")
	}
	b := &bench{t: t, stages: map[string]bool{}}
	stages := os.Getenv("SAMSA_BENCH_STAGES")
	if stages == "" {
		stages = "ceiling,ingest,transform,deliver,e2e,latency"
		if os.Getenv("SAMSA_BENCH_SOAK") != "" {
			stages += ",soak"
		}
	}
	for _, s := range strings.Split(stages, ",") {
		b.stages[strings.TrimSpace(s)] = true
	}
	n := envInt("SAMSA_BENCH_EVENTS", 300000)
	nHTTP := n / 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	b.ctx = ctx
	b.rep.Started, b.rep.Machine, b.rep.LoadAvg = time.Now(), procstat.Machine()+", the broker and every service on the same machine", procstat.LoadAvg()

	b.c = harness.NewCluster(t)
	b.procs = []*harness.Proc{
		b.c.Start("control", "control-1"),
		b.c.Start("receiver", "receiver-1"),
		// Stage runs fill a source before its flow exists: the flow must
		// start from the beginning of the topic.
		b.c.Start("transformer", "transformer-1", "--start-lookback", "3h"),
		b.c.Start("deliverer", "deliverer-1"),
	}
	b.rep.services = []string{"control", "receiver", "transformer", "deliverer", "broker", "bench"}
	b.ctl = b.c.Control()
	b.adm = kadm.NewClient(b.c.KafkaClient())

	if b.stages["ceiling"] {
		b.ceiling(n)
	}
	if b.stages["ingest"] || b.stages["transform"] || b.stages["deliver"] {
		b.stageRuns(n, nHTTP)
	}
	var satKafka, satHTTP float64
	if b.stages["e2e"] || b.stages["soak"] {
		satKafka, satHTTP = b.endToEnd(n, nHTTP)
	}
	if b.stages["latency"] {
		b.latency(satKafka, satHTTP)
	}
	if b.stages["soak"] {
		b.soak(envDuration("SAMSA_BENCH_SOAK", 10*time.Minute), satHTTP/2)
	}
	for _, p := range b.procs {
		if !p.Running() {
			t.Errorf("%s exited during the bench:\n%s", p.Name, p.LogTail(20))
		}
	}
	b.rep.Took = time.Since(b.rep.Started)
	md := b.rep.markdown()
	t.Log("\n" + md)
	if b.rep.Soak != nil {
		t.Log("\n" + b.rep.soakMarkdown())
	}
	// Only a full run replaces the results in the document; the soak has
	// a section of its own.
	if out := os.Getenv("SAMSA_BENCH_OUT"); out != "" && !t.Failed() {
		if os.Getenv("SAMSA_BENCH_STAGES") == "" {
			if err := writeInto(out, "make bench", md); err != nil {
				t.Errorf("write results: %v", err)
			} else {
				t.Logf("results written to %s", out)
			}
		}
		if b.rep.Soak != nil {
			if err := writeInto(out, "make bench-soak", b.rep.soakMarkdown()); err != nil {
				t.Errorf("write soak results: %v", err)
			} else {
				t.Logf("soak results written to %s", out)
			}
		}
	}
}

// meter starts measuring every process group.
func (b *bench) meter() *meter {
	pgids := make([]int, 0, len(b.procs)+2)
	for _, p := range b.procs {
		pgids = append(pgids, p.PID())
	}
	pgids = append(pgids, b.c.Broker.PID(), os.Getpid())
	return newMeter(b.rep.services, pgids)
}

func (b *bench) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *bench) ceiling(n int) {
	in, out := "bench-ceiling-in", "bench-ceiling-out"
	b.must(createTopics(b.ctx, b.c.Brokers(), partitions, in, out))
	b.must(fillTopic(b.ctx, b.c.Brokers(), in, n, payloadSize))
	rate, err := rawLoop(b.ctx, b.c.Brokers(), in, out, n)
	b.must(err)
	b.rep.Ceiling, b.rep.CeilingSynthetic = rate, rate
	b.t.Logf("ceiling, generated records: %.0f events/s", rate)
}

// ceilingOn runs the raw loop over a source topic the ingest stage filled,
// before any flow reads it: the transform stage's own input, so that the
// ratio compares the work done on the same records. It replaces the
// generated-records ceiling as the reference.
func (b *bench) ceilingOn(source string, n int) {
	out := "bench-ceiling-events-out"
	b.must(createTopics(b.ctx, b.c.Brokers(), partitions, out))
	rate, err := rawLoop(b.ctx, b.c.Brokers(), kafka.SourceTopic(source), out, n)
	b.must(err)
	b.rep.Ceiling = rate
	b.t.Logf("ceiling: %.0f events/s", rate)
}

// source creates a source that the bench's load generator may post to.
func (b *bench) source(name string) {
	b.must(b.ctl.PutSource(name, map[string]any{
		"partitions": partitions,
		"auth":       map[string]any{"apiKeys": []any{map[string]any{"name": "bench", "key": apiKey}}},
	}))
}

// flow creates a flow from source to a Kafka topic (format json) or, when
// topic is empty, to url.
func (b *bench) flow(name, source, topic, url string, paused bool) {
	dest := map[string]any{"kafka": map[string]any{"topic": topic, "format": "json"}}
	if topic == "" {
		dest = map[string]any{"http": map[string]any{"url": url, "allowPrivateNetwork": true}}
	} else {
		b.must(createTopics(b.ctx, b.c.Brokers(), partitions, topic))
	}
	b.must(b.ctl.PutFlow(name, map[string]any{
		"source": source, "filter": filter, "transform": transform,
		"destination": dest, "paused": paused,
	}))
}

func (b *bench) loader(source string, conns int) *loader {
	return newLoader(b.c.ReceiverURL(), source, apiKey, &b.seq, conns)
}

// ingest sends n events to source at saturation and records the run.
func (b *bench) ingest(name, source string, n int) (lo int64) {
	m := b.meter()
	lo, start, end, err := b.loader(source, 16).saturate(b.ctx, n, 100, 16)
	b.must(err)
	rate := float64(n) / end.Sub(start).Seconds()
	b.rep.Stages = append(b.rep.Stages, stageResult{Name: name,
		What:   "REST in, NDJSON batches of 100 × 300 B, 16 connections, until every 202",
		Events: int64(n), Rate: rate, Procs: m.stop()})
	b.t.Logf("%s: %.0f events/s", name, rate)
	return lo
}

// observe runs fn (which makes events [lo, lo+n) flow) and measures the
// arrivals at arr from the first to the last.
func (b *bench) observe(name, what string, arr *arrivals, lo int64, n int, fn func()) stageResult {
	arr.expect(lo, lo+int64(n), time.Time{}, time.Time{})
	m := b.meter()
	fn()
	s, err := arr.wait(b.ctx, int64(n), 15*time.Minute)
	b.must(err)
	r := stageResult{Name: name, What: what, Events: int64(n), Procs: m.stop(), Dups: s.Dups,
		Rate: float64(s.Got-1) / s.Last.Sub(s.First).Seconds()}
	if s.Malformed > 0 {
		b.t.Errorf("%s: %d malformed payloads", name, s.Malformed)
	}
	b.rep.Stages = append(b.rep.Stages, r)
	b.t.Logf("%s: %.0f events/s (%d duplicates)", name, r.Rate, s.Dups)
	return r
}

// transformStage runs fn (which creates a paused flow over source, filled
// with n events) and measures the transformer from its first commit to the
// commit of the source's last offset.
func (b *bench) transformStage(name, what, source string, n int, fn func()) {
	topic := kafka.SourceTopic(source)
	ends, err := b.adm.ListEndOffsets(b.ctx, topic)
	b.must(err)
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	committed := func() int64 {
		resp, err := b.adm.FetchOffsets(b.ctx, kafka.TransformerGroup)
		if err != nil {
			return -1
		}
		var sum int64
		resp.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				sum += o.At
			}
		})
		return sum
	}
	m := b.meter()
	fn()
	var first, last time.Time
	var atFirst int64
	deadline := time.Now().Add(15 * time.Minute)
	for {
		c, now := committed(), time.Now()
		if c > 0 && first.IsZero() {
			first, atFirst = now, c
		}
		if c >= end {
			last = now
			break
		}
		if now.After(deadline) {
			b.must(fmt.Errorf("%s: committed %d of %d source offsets in 15 minutes", name, c, end))
		}
		// Polling: the commit times are read at this resolution.
		<-time.After(10 * time.Millisecond)
	}
	r := stageResult{Name: name, What: what, Events: int64(n), Procs: m.stop(),
		Rate: float64(end-atFirst) / last.Sub(first).Seconds()}
	b.rep.Stages = append(b.rep.Stages, r)
	b.t.Logf("%s: %.0f events/s", name, r.Rate)
}

// stageRuns measures each stage alone: a source is filled through the
// receiver with no flow; a paused flow is created, and the transformer
// fills its delivery topic; the flow is resumed, and the deliverer drains
// it to the destination.
func (b *bench) stageRuns(n, nHTTP int) {
	b.source("bench-stage-k")
	b.source("bench-stage-h")
	loK := b.ingest("ingest", "bench-stage-k", n)
	loH := b.ingest("ingest (HTTP stage's source)", "bench-stage-h", nHTTP)
	if b.stages["ceiling"] {
		b.ceilingOn("bench-stage-k", n)
	}
	if !b.stages["transform"] && !b.stages["deliver"] {
		return
	}
	// Transform: the flows are paused, so only the transformer works. It is
	// timed by its group's committed offsets, as the ceiling is by its own
	// commits, with nobody else reading: what it wrote is checked record by
	// record at the destinations in the deliver stage.
	b.transformStage("transform", "source topic → delivery topic, filter + transform, exactly once (timed by committed offsets)", "bench-stage-k", n, func() {
		b.flow("stage-kafka", "bench-stage-k", "bench-stage-dest", "", true)
	})
	sink, err := startHTTPSink(&arrivals{})
	b.must(err)
	defer sink.Close()
	b.transformStage("transform (HTTP flow)", "same, the HTTP flow's source", "bench-stage-h", nHTTP, func() {
		b.flow("stage-http", "bench-stage-h", "", sink.URL(), true)
	})
	if !b.stages["deliver"] {
		return
	}
	// Deliver: resume, and the deliverer drains the delivery topic.
	var destK arrivals
	rd, err := startKafkaReader(b.c.Brokers(), "bench-stage-dest", &destK)
	b.must(err)
	defer rd.Close()
	b.observe("deliver to Kafka", "delivery topic → Kafka topic (format json), exactly once", &destK, loK, n, func() {
		b.must(b.ctl.Resume("stage-kafka"))
	})
	b.observe("deliver to HTTP", "delivery topic → HTTP sink, signed POST per event, 64 in flight", sink.arr, loH, nHTTP, func() {
		b.must(b.ctl.Resume("stage-http"))
	})
}

// e2eRig is a source with one flow and its destination's observer.
type e2eRig struct {
	source string
	arr    *arrivals // at the destination
	mid    *arrivals // in the flow's delivery topic: after the transformer
}

func (b *bench) rig(name, dest string) *e2eRig {
	r := &e2eRig{source: "bench-" + name, arr: &arrivals{}, mid: &arrivals{}}
	b.source(r.source)
	if dest == "kafka" {
		topic := "bench-dest-" + name
		b.flow(name, r.source, topic, "", false)
		rd, err := startKafkaReader(b.c.Brokers(), topic, r.arr)
		b.must(err)
		b.t.Cleanup(rd.Close)
	} else {
		sink, err := startHTTPSink(r.arr)
		b.must(err)
		b.flow(name, r.source, "", sink.URL(), false)
		b.t.Cleanup(sink.Close)
	}
	rm, err := startKafkaReader(b.c.Brokers(), kafka.DeliveryTopic(name), r.mid)
	b.must(err)
	b.t.Cleanup(rm.Close)
	// A first small run: the flow is running, the connections are open.
	lo := b.seq.Load()
	r.arr.expect(lo, lo+1000, time.Time{}, time.Time{})
	_, _, _, err = b.loader(r.source, 4).saturate(b.ctx, 1000, 100, 4)
	b.must(err)
	_, err = r.arr.wait(b.ctx, 1000, 2*time.Minute)
	b.must(err)
	return r
}

var (
	rigKafka, rigHTTP *e2eRig
)

// rigs sets up the end-to-end flows once.
func (b *bench) rigs() {
	if rigKafka == nil {
		rigKafka, rigHTTP = b.rig("e2e-kafka", "kafka"), b.rig("e2e-http", "http")
	}
}

// endToEnd measures REST in → destination at saturation, two ways. A
// drain run sends n events as fast as they are acknowledged and takes the
// rate from the first request to the last arrival: the receiver finishes
// long before the deliverer, which then works alone. A sustained run
// offers a quarter more than that rate, paced, for SAMSA_BENCH_SUSTAIN
// (default 30s) and takes the rate delivered over its last two thirds,
// with every stage busy at once: that is the pipeline's capacity, and the
// latency points are fractions of it.
func (b *bench) endToEnd(n, nHTTP int) (satKafka, satHTTP float64) {
	b.rigs()
	d := envDuration("SAMSA_BENCH_SUSTAIN", 30*time.Second)
	drain := func(name, what string, r *e2eRig, n int) float64 {
		lo := b.seq.Load()
		r.arr.expect(lo, lo+int64(n), time.Time{}, time.Time{})
		m := b.meter()
		_, start, acked, err := b.loader(r.source, 16).saturate(b.ctx, n, 100, 16)
		b.must(err)
		s, err := r.arr.wait(b.ctx, int64(n), 15*time.Minute)
		b.must(err)
		rate := float64(n) / s.Last.Sub(start).Seconds()
		b.rep.Stages = append(b.rep.Stages, stageResult{Name: name, What: what, Events: int64(n), Rate: rate,
			Procs: m.stop(), Dups: s.Dups})
		b.t.Logf("%s: %.0f events/s end to end (ingest %.0f events/s, %d duplicates)", name, rate,
			float64(n)/acked.Sub(start).Seconds(), s.Dups)
		return rate
	}
	dk := drain("end to end, Kafka, drain", "REST (NDJSON × 100, 16 connections) → receiver → transformer → deliverer → Kafka topic; first request to last arrival", rigKafka, n)
	dh := drain("end to end, HTTP, drain", "REST (NDJSON × 100, 16 connections) → receiver → transformer → deliverer → HTTP sink; first request to last arrival", rigHTTP, nHTTP)
	satKafka = b.sustained("end to end, Kafka, sustained", rigKafka, 1.25*dk, d)
	satHTTP = b.sustained("end to end, HTTP, sustained", rigHTTP, 1.25*dh, d)
	return satKafka, satHTTP
}

// sustained offers rate events/s for d and returns the rate delivered from
// d/3 to d.
func (b *bench) sustained(name string, r *e2eRig, offered float64, d time.Duration) float64 {
	batch := max(1, int(offered/400))
	lo := b.seq.Load()
	r.arr.expect(lo, lo+int64(offered*d.Seconds()*1.5)+int64(batch)*64, time.Time{}, time.Time{})
	m := b.meter()
	type sent struct {
		hi  int64
		err error
	}
	done := make(chan sent, 1)
	go func() {
		_, hi, _, err := b.loader(r.source, 64).paced(b.ctx, offered, batch, d, 64)
		done <- sent{hi, err}
	}()
	start := time.Now()
	// The measurement window is a span of time, not a condition.
	<-time.After(time.Until(start.Add(d / 3)))
	s1, t1 := r.arr.snapshot(), time.Now()
	<-time.After(time.Until(start.Add(d)))
	s2, t2 := r.arr.snapshot(), time.Now()
	out := <-done
	b.must(out.err)
	s, err := r.arr.wait(b.ctx, out.hi-lo, 15*time.Minute)
	b.must(err)
	rate := float64(s2.Got-s1.Got) / t2.Sub(t1).Seconds()
	what := fmt.Sprintf("REST (NDJSON, paced at %s events/s, 1.25 × the drain rate, for %s) → … → destination; delivered rate over the last two thirds",
		thousands(offered), d)
	b.rep.Stages = append(b.rep.Stages, stageResult{Name: name, What: what, Events: s.Got, Rate: rate,
		Procs: m.stop(), Dups: s.Dups})
	b.t.Logf("%s: %.0f events/s delivered while %.0f events/s offered", name, rate, offered)
	return rate
}

// point runs one paced latency measurement.
func (b *bench) point(dest string, r *e2eRig, frac, rate float64, d time.Duration) {
	batch := max(1, int(rate/400))
	warm := min(3*time.Second, d/5)
	lo := b.seq.Load()
	start := time.Now()
	r.arr.expect(lo, lo+int64(rate*d.Seconds()*2)+int64(batch)*64, start.Add(warm), start.Add(d+time.Second))
	r.mid.expect(lo, lo+int64(rate*d.Seconds()*2)+int64(batch)*64, start.Add(warm), start.Add(d+time.Second))
	_, hi, ack, err := b.loader(r.source, 64).paced(b.ctx, rate, batch, d, 64)
	b.must(err)
	s, err := r.arr.wait(b.ctx, hi-lo, 5*time.Minute)
	b.must(err)
	if _, err := r.mid.wait(b.ctx, hi-lo, time.Minute); err != nil {
		b.t.Errorf("latency %s: delivery topic: %v", dest, err)
	}
	res := latencyResult{Dest: dest, Fraction: frac, Rate: rate, E2E: r.arr.latencies(), Mid: r.mid.latencies(),
		Achieved: float64(s.Got) / s.Last.Sub(s.First).Seconds()}
	// Acknowledgements of requests due after the warm-up.
	skip := int(float64(len(ack)) * warm.Seconds() / d.Seconds())
	res.Ack = ack[min(skip, len(ack)):]
	b.rep.Latency = append(b.rep.Latency, res)
	b.t.Logf("latency %s at %.0f events/s: ack %s, delivery topic %s, end to end %s ms", dest, rate, pcts(res.Ack), pcts(res.Mid), pcts(res.E2E))
}

// latency measures at 2,000 events/s and at fractions of the sustained
// capacities; without them (the latency stage alone), only at 2,000.
func (b *bench) latency(satKafka, satHTTP float64) {
	b.rigs()
	d := envDuration("SAMSA_BENCH_POINT", 15*time.Second)
	for _, x := range []struct {
		dest string
		r    *e2eRig
		sat  float64
	}{{"Kafka", rigKafka, satKafka}, {"HTTP", rigHTTP, satHTTP}} {
		b.point(x.dest, x.r, 0, 2000, d)
		if x.sat == 0 {
			continue
		}
		for _, f := range []float64{0.25, 0.5, 0.75} {
			b.point(x.dest, x.r, f, f*x.sat, d)
		}
	}
}

// soak runs the HTTP flow at rate for d and samples every service's RSS.
func (b *bench) soak(d time.Duration, rate float64) {
	r := rigHTTP
	res := &soakResult{Duration: d, Rate: rate}
	lo := b.seq.Load()
	r.arr.expect(lo, lo+int64(rate*d.Seconds()*2)+1<<16, time.Time{}, time.Time{})
	done := make(chan struct{})
	var hi int64
	var err error
	go func() {
		defer close(done)
		_, hi, _, err = b.loader(r.source, 64).paced(b.ctx, rate, max(1, int(rate/400)), d, 64)
	}()
	start := time.Now()
	sample := func() {
		smp := rssSample{At: time.Since(start), RSS: map[string]int64{}}
		for i, p := range b.procs {
			u, _ := procstat.Group(p.PID())
			smp.RSS[b.rep.services[i]] = u.RSS
		}
		u, _ := procstat.Group(b.c.Broker.PID())
		smp.RSS["broker"] = u.RSS
		res.Samples = append(res.Samples, smp)
	}
	every := max(d/10, 10*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			sample()
		}
	}
	b.must(err)
	sample()
	s, err := r.arr.wait(b.ctx, hi-lo, 5*time.Minute)
	b.must(err)
	res.Events = s.Got
	b.rep.Soak = res
	// No growth: after the first sample (warm), no service may grow by
	// more than a quarter and 32 MiB.
	if len(res.Samples) >= 3 {
		first, last := res.Samples[0], res.Samples[len(res.Samples)-1]
		for _, name := range b.rep.services[:4] {
			if grow := last.RSS[name] - first.RSS[name]; grow > 32<<20 && float64(last.RSS[name]) > 1.25*float64(first.RSS[name]) {
				b.t.Errorf("soak: %s grew from %d to %d MiB", name, first.RSS[name]>>20, last.RSS[name]>>20)
			}
		}
	}
}
