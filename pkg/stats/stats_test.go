package stats

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

func TestRecorderToAggregator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := &kafka.Config{Brokers: kafkatest.Fake(t)}
	cl, err := cfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cfg.EnsureTopics(ctx, cl, kafka.StatsTopicSpec(), kafka.TopicSpec{Name: kafka.DeliveryTopic("orders"), Partitions: 3, Replication: -1}); err != nil {
		t.Fatal(err)
	}

	// Two transformer instances (one stopped earlier) and a deliverer. The
	// deliverer's delivered and dead-lettered counts come from its
	// group's committed offsets; what its reports say of them (older
	// deliverers published them) is ignored.
	old := NewRecorder("transformer", "a")
	old.Add("orders", Counts{Received: 10, FilteredOut: 2, Transformed: 8})
	tr := NewRecorder("transformer", "b")
	tr.Add("orders", Counts{Received: 5, Transformed: 5})
	tr.Add("orders", Counts{Received: 1, DeadLettered: 1})
	dl := NewRecorder(ServiceDeliverer, "c")
	dl.Add("orders", Counts{Delivered: 1000, DeadLettered: 1000, Retries: 4})
	for i := 0; i < 99; i++ {
		dl.Latency("orders", 15*time.Millisecond)
	}
	dl.Latency("orders", 3*time.Second)
	dl.Error("orders", "deliver", "HTTP 500", "ev-1", time.Now())
	dl.Breaker("orders", "half-open", 2)

	var recs []*kgo.Record
	for _, r := range []*Recorder{old, tr, dl} {
		recs = append(recs, r.Records(time.Now(), false)...)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	if again := tr.Records(time.Now(), false); len(again) != 0 {
		t.Fatalf("unchanged recorder published %d records again", len(again))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Delivered 9 and dead-lettered 1 over two partitions of the delivery
	// topic, committed by the deliverer group; a partition committed
	// without counts (a tool's reset) adds nothing.
	const group = "deliverers"
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: kafka.DeliveryTopic("orders"), Partition: 0, At: 7, LeaderEpoch: -1, Metadata: CommitMetadata(Counts{Delivered: 6, DeadLettered: 1})})
	offs.Add(kadm.Offset{Topic: kafka.DeliveryTopic("orders"), Partition: 1, At: 3, LeaderEpoch: -1, Metadata: CommitMetadata(Counts{Delivered: 3})})
	offs.Add(kadm.Offset{Topic: kafka.DeliveryTopic("orders"), Partition: 2, At: 5, LeaderEpoch: -1, Metadata: "member-1"})
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatal(err)
	}

	agg, err := NewAggregator(cfg, zaptest.NewLogger(t), DelivererGroup(group), CommittedEvery(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = agg.Run(actx) }()
	defer func() { acancel(); <-done }()

	var s Summary
	for deadline := time.Now().Add(10 * time.Second); ; {
		s = agg.Flow("orders")
		if s.Counts.Delivered == 9 && s.Counts.Received == 16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aggregator did not see all reports: %+v", s.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := Counts{Received: 16, FilteredOut: 2, Transformed: 13, DeadLettered: 2, Delivered: 9, Retries: 4}
	if s.Counts != want {
		t.Fatalf("counts = %+v, want %+v", s.Counts, want)
	}
	// 16 received = 2 filtered + 2 dead-lettered + 9 delivered + 3 in flight.
	if s.InFlight != 3 {
		t.Fatalf("in flight = %d, want 3", s.InFlight)
	}
	if s.P50Ms < 10 || s.P50Ms > 20 || s.P99Ms < 10 || s.P99Ms > 20 {
		t.Fatalf("percentiles p50=%v p99=%v, want within the 10-20ms bucket", s.P50Ms, s.P99Ms)
	}
	if s.LastError == nil || s.LastError.Message != "HTTP 500" || s.Breaker != "half-open" || s.Retrying != 2 {
		t.Fatalf("error/breaker not aggregated: %+v %q %d", s.LastError, s.Breaker, s.Retrying)
	}
}

func TestRates(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newAggregator(nil)
	a.now = func() time.Time { return now }
	a.Apply(Report{Flow: "f", Service: "transformer", Instance: "x", Counts: Counts{Received: 100}})
	a.committed = map[string]Counts{"f": {Delivered: 100}}
	a.Sample()
	now = now.Add(30 * time.Second)
	a.Apply(Report{Flow: "f", Service: "transformer", Instance: "x", Counts: Counts{Received: 700}})
	a.committed = map[string]Counts{"f": {Delivered: 400}}
	a.Sample()
	s := a.Flow("f")
	if math.Abs(s.Rates.Delivered-10) > 1e-9 || math.Abs(s.Rates.Received-20) > 1e-9 {
		t.Fatalf("rates = %v/s delivered, %v/s received, want 10/s and 20/s", s.Rates.Delivered, s.Rates.Received)
	}
	if s.Counts.Delivered != 400 || s.InFlight != 300 {
		t.Fatalf("counts %+v, in flight %d", s.Counts, s.InFlight)
	}
	if len(s.History) != 2 {
		t.Fatalf("history has %d samples, want 2", len(s.History))
	}
	now = now.Add(2 * time.Hour)
	a.Sample()
	if h := a.Flow("f").History; len(h) != 1 {
		t.Fatalf("history not trimmed to the last hour: %d samples", len(h))
	}
}

func TestPercentileEmptyAndOverflow(t *testing.T) {
	if p := percentile(make([]int64, len(LatencyBuckets)), 0.99); p != 0 {
		t.Fatalf("empty histogram p99 = %v", p)
	}
	h := make([]int64, len(LatencyBuckets))
	h[len(h)-1] = 5
	if p := percentile(h, 0.5); p != LatencyBuckets[len(LatencyBuckets)-2] {
		t.Fatalf("overflow bucket p50 = %v", p)
	}
}

func TestCommitMetadata(t *testing.T) {
	for _, tc := range []struct {
		md   string
		want Counts
		ok   bool
	}{
		{CommitMetadata(Counts{Delivered: 12, DeadLettered: 3, Received: 99}), Counts{Delivered: 12, DeadLettered: 3}, true},
		{CommitMetadata(Counts{}), Counts{}, true},
		{`{"samsa":1,"delivered":5,"dead_lettered":0}`, Counts{Delivered: 5}, true},
		{"", Counts{}, false},
		{"consumer-1-2f6c", Counts{}, false}, // franz-go's default: the member id
		{`{"samsa":2,"delivered":5}`, Counts{}, false},
		{`{"samsa":1,"delivered":-5}`, Counts{}, false},
		{`{"samsa":1,"delivered":`, Counts{}, false},
	} {
		got, ok := ParseCommitMetadata(tc.md)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseCommitMetadata(%q) = %+v, %v; want %+v, %v", tc.md, got, ok, tc.want, tc.ok)
		}
	}
	if md := CommitMetadata(Counts{Delivered: math.MaxInt64, DeadLettered: math.MaxInt64}); len(md) > 200 {
		t.Errorf("metadata of %d bytes", len(md))
	}
}

func TestRecorderRestart(t *testing.T) {
	r := NewRecorder("transformer", "host-1")
	r.Add("f", Counts{Received: 5, Transformed: 5})
	if reps := r.Reports(time.Now(), true); len(reps) != 1 || reps[0].Instance != "host-1" || reps[0].Counts.Received != 5 {
		t.Fatalf("before restart: %+v", reps)
	}
	r.Restart()
	if reps := r.Reports(time.Now(), true); len(reps) != 0 {
		t.Fatalf("after restart the counters must be empty: %+v", reps)
	}
	r.Add("f", Counts{Received: 2, Transformed: 2})
	r.Restart()
	r.Add("f", Counts{Received: 1, Transformed: 1})
	reps := r.Reports(time.Now(), true)
	if len(reps) != 1 || reps[0].Instance != "host-1.2" || reps[0].Counts.Received != 1 {
		t.Fatalf("after two restarts: %+v", reps)
	}
}
