package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestSourceRecorder(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := created.Add(time.Hour)
	r := NewSourceRecorder("rx-1")
	if recs := r.Records(now, true); len(recs) != 0 {
		t.Fatalf("an empty recorder publishes %d records", len(recs))
	}
	orders := r.Source("orders", created)
	if r.Source("orders", created) != orders {
		t.Fatal("the same source got a second counter")
	}
	r.Source("idle", created) // resolved, never used: nothing to report
	orders.Request(100)
	orders.Events(3)
	orders.Request(10)
	orders.Rejection("malformed")
	orders.Request(0)
	orders.Rejection("unauthenticated")
	orders.AuthFailure("invalid_api_key")

	reps := r.Reports(now, false)
	want := Ingest{Events: 3, Requests: 3, Bytes: 110,
		Rejections:   map[string]int64{"malformed": 1, "unauthenticated": 1},
		AuthFailures: map[string]int64{"invalid_api_key": 1}}
	if len(reps) != 1 || reps[0].Source != "orders" || reps[0].Flow != "" || reps[0].Instance != "rx-1" ||
		reps[0].Service != ServiceReceiver || !reps[0].SourceCreated.Equal(created) || reps[0].Ingest == nil || !reps[0].Ingest.Equal(want) {
		t.Fatalf("reports = %+v, want one of orders with %+v", reps, want)
	}
	if reps[0].Key() != "source:orders/receiver/rx-1" {
		t.Fatalf("key %q", reps[0].Key())
	}
	// A report is a copy: counting on does not change it.
	orders.Rejection("malformed")
	if reps[0].Ingest.Rejections["malformed"] != 1 {
		t.Fatal("a report shares its counters' map")
	}
	if reps := r.Reports(now, false); len(reps) != 1 || reps[0].Ingest.Rejections["malformed"] != 2 {
		t.Fatalf("changed counts not reported: %+v", reps)
	}
	if reps := r.Reports(now, false); len(reps) != 0 {
		t.Fatalf("unchanged counts reported again: %+v", reps)
	}
	if reps := r.Reports(now, true); len(reps) != 1 {
		t.Fatalf("all: %d reports, want 1", len(reps))
	}

	// A failed write makes the next call return everything again.
	r.failed(nil)
	if reps := r.Reports(now, false); len(reps) != 1 {
		t.Fatalf("after a failure: %d reports, want 1", len(reps))
	}

	// Deleted: a tombstone for this instance's key, once; a failed write
	// brings it back.
	r.Forget("orders")
	r.Forget("never-seen")
	recs := r.Records(now, false)
	if len(recs) != 1 || recs[0].Value != nil || string(recs[0].Key) != "source:orders/receiver/rx-1" {
		t.Fatalf("after Forget: %v", recs)
	}
	r.failed(recs)
	if recs := r.Records(now, false); len(recs) != 1 || recs[0].Value != nil {
		t.Fatalf("tombstone not written again after a failure: %v", recs)
	}
	if recs := r.Records(now, false); len(recs) != 0 {
		t.Fatalf("tombstone written twice: %v", recs)
	}

	// Created again under the same name: counts start from zero, and no
	// tombstone follows the new report.
	again := r.Source("orders", created.Add(time.Minute))
	if again == orders {
		t.Fatal("a re-created source kept its old counter")
	}
	r.Forget("orders")
	again = r.Source("orders", created.Add(time.Minute))
	again.Request(5)
	recs = r.Records(now, false)
	if len(recs) != 1 || recs[0].Value == nil {
		t.Fatalf("re-created source: %v", recs)
	}
	rep, err := ParseRecord(recs[0])
	if err != nil || rep.Ingest.Requests != 1 || rep.Ingest.Events != 0 || !rep.SourceCreated.Equal(created.Add(time.Minute)) {
		t.Fatalf("re-created source's report: %+v, %v", rep, err)
	}
	// Final reports carry every source with Final set.
	fin := r.final(now)
	if len(fin) != 1 {
		t.Fatalf("final: %d records", len(fin))
	}
	if rep, err := ParseRecord(fin[0]); err != nil || !rep.Final || rep.Source != "orders" {
		t.Fatalf("final report: %+v, %v", rep, err)
	}
}

// TestSourceReportFormat pins the stored format of source reports and
// checks that readers that predate them (which know only flow reports)
// accept them as a report of a flow that cannot exist, with no counts.
func TestSourceReportFormat(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)
	src := Report{Source: "orders", SourceCreated: time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC),
		Service: ServiceReceiver, Instance: "receiver-7d9f-1a2b3c", Time: at, Final: true,
		Ingest: &Ingest{Events: 120, Requests: 14, Bytes: 48213,
			Rejections:   map[string]int64{"malformed": 2, "unauthenticated": 1},
			AuthFailures: map[string]int64{"invalid_api_key": 1}}}
	flowRep := Report{Flow: "big-orders", Service: "transformer", Instance: "transformer-0-9f8e", Time: at,
		Counts: Counts{Received: 120, FilteredOut: 20, Transformed: 100}}
	for _, tc := range []struct {
		name string
		rep  Report
	}{{"source_report", src}, {"flow_report", flowRep}} {
		rec, err := tc.rep.Record()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Topic != kafka.StatsTopic || string(rec.Key) != tc.rep.Key() {
			t.Fatalf("%s: record %s %q", tc.name, rec.Topic, rec.Key)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, rec.Value, "", "  "); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", tc.name+".json")
		if *update {
			if err := os.WriteFile(golden, append([]byte(string(rec.Key)+"\n"), pretty.Bytes()...), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(rec.Key) + "\n" + pretty.String(); got != string(want) {
			t.Errorf("%s: record differs from %s (go test -run SourceReportFormat -update):\n%s", tc.name, golden, got)
		}
		// And back.
		back, err := ParseRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if back.Key() != tc.rep.Key() || back.Flow != tc.rep.Flow || back.Source != tc.rep.Source ||
			(tc.rep.Ingest != nil && !back.Ingest.Equal(*tc.rep.Ingest)) || back.Counts != tc.rep.Counts {
			t.Errorf("%s: round trip gives %+v", tc.name, back)
		}
	}

	// What an older reader does with a source report: decode the fields it
	// knows, check the key against them, sum its counts into the flow.
	rec, _ := src.Record()
	var old struct {
		Flow     string `json:"flow"`
		Service  string `json:"service"`
		Instance string `json:"instance"`
		Counts   Counts `json:"counts"`
	}
	if err := json.Unmarshal(rec.Value, &old); err != nil {
		t.Fatal(err)
	}
	if old.Flow+"/"+old.Service+"/"+old.Instance != string(rec.Key) {
		t.Errorf("an older reader would reject the source report: key %q, content %q", rec.Key, old.Flow+"/"+old.Service+"/"+old.Instance)
	}
	if old.Counts != (Counts{}) || kafka.ValidateName(old.Flow) == nil {
		t.Errorf("an older reader would count the source report for flow %q: %+v", old.Flow, old.Counts)
	}

	// Malformed source reports are refused.
	for _, bad := range []struct{ key, value string }{
		{"source:orders/receiver/x", `{"flow":"other","source":"orders","service":"receiver","instance":"x"}`},
		{"source:orders/receiver/y", `{"flow":"source:orders","source":"orders","service":"receiver","instance":"x"}`},
		{"orders/receiver/x", `{"source":"orders","service":"receiver","instance":"x"}`},
	} {
		if _, err := ParseRecord(&kgo.Record{Key: []byte(bad.key), Value: []byte(bad.value)}); err == nil {
			t.Errorf("ParseRecord(%s, %s) accepted", bad.key, bad.value)
		}
	}
	// A source report without the "flow" field (a writer that does not
	// care for old readers) is fine.
	if r, err := ParseRecord(&kgo.Record{Key: []byte("source:orders/receiver/x"),
		Value: []byte(`{"source":"orders","service":"receiver","instance":"x","ingest":{"events":3}}`)}); err != nil || r.Ingest.Events != 3 {
		t.Errorf("source report without flow: %+v, %v", r, err)
	}
}

func TestAggregatorIngest(t *testing.T) {
	a := newAggregator(nil)
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if sums, known := a.Ingest(map[string]time.Time{"orders": created}); known || len(sums) != 0 {
		t.Fatalf("no reports: %v, known %v", sums, known)
	}
	src := func(source, instance string, created time.Time, in Ingest) Report {
		return Report{Source: source, SourceCreated: created, Service: ServiceReceiver, Instance: instance, Ingest: &in}
	}
	// Two replicas, one restarted (a new instance), a report of an earlier
	// source of the same name, another source, a flow.
	a.Apply(src("orders", "rx-a", created, Ingest{Events: 10, Requests: 4, Bytes: 400, Rejections: map[string]int64{"malformed": 1}}))
	a.Apply(src("orders", "rx-b", created, Ingest{Events: 5, Requests: 2, Bytes: 50, AuthFailures: map[string]int64{"invalid_api_key": 1}, Rejections: map[string]int64{"unauthenticated": 1}}))
	a.Apply(src("orders", "rx-b2", created, Ingest{Events: 1, Requests: 1, Bytes: 10, Rejections: map[string]int64{"malformed": 2}}))
	a.Apply(src("orders", "rx-old", created.Add(-time.Hour), Ingest{Events: 1000, Requests: 1000}))
	a.Apply(src("clicks", "rx-a", time.Time{}, Ingest{Events: 7, Requests: 7}))
	a.Apply(src("gone", "rx-a", created, Ingest{Events: 9, Requests: 9}))
	a.Apply(Report{Flow: "big-orders", Service: "transformer", Instance: "t", Counts: Counts{Received: 3}})
	// A later report of an instance replaces its earlier one.
	a.Apply(src("orders", "rx-a", created, Ingest{Events: 20, Requests: 6, Bytes: 600, Rejections: map[string]int64{"malformed": 1}}))

	sums, known := a.Ingest(map[string]time.Time{"orders": created, "clicks": created, "quiet": created})
	if !known {
		t.Fatal("reports read but ingest not known")
	}
	want := map[string]Ingest{
		"orders": {Events: 26, Requests: 9, Bytes: 660, Rejections: map[string]int64{"malformed": 3, "unauthenticated": 1},
			AuthFailures: map[string]int64{"invalid_api_key": 1}},
		"clicks": {Events: 7, Requests: 7},
	}
	if len(sums) != len(want) {
		t.Fatalf("sums = %+v, want %+v", sums, want)
	}
	for name, w := range want {
		if !sums[name].Equal(w) {
			t.Errorf("%s = %+v, want %+v", name, sums[name], w)
		}
	}
	// Summing never changes the reports.
	sums["orders"].Rejections["malformed"] = 99
	if again, _ := a.Ingest(map[string]time.Time{"orders": created}); again["orders"].Rejections["malformed"] != 3 {
		t.Fatalf("summing changed a report: %+v", again["orders"])
	}
	// Source reports are no flow's.
	a.Sample()
	if s := a.Flow("big-orders"); s.Counts.Received != 3 {
		t.Fatalf("flow counts %+v", s.Counts)
	}
	if _, ok := a.history[""]; ok {
		t.Fatal("source reports made a flow history")
	}
}

// TestPublishSources runs the receiver's side and the control service's
// side over a broker: periodic reports of the sources that changed, final
// reports, tombstones of deleted sources, and two instances summed.
func TestPublishSources(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := &kafka.Config{Brokers: kafkatest.Fake(t)}
	cl, err := cfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := kafkatest.Topic(t)
	spec := kafka.StatsTopicSpec()
	spec.Name = topic
	if err := cfg.EnsureTopics(ctx, cl, spec); err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	agg, err := NewAggregator(cfg, log, Topic(topic))
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	aggDone := make(chan struct{})
	go func() { defer close(aggDone); _ = agg.Run(actx) }()
	defer func() { acancel(); <-aggDone }()

	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	srcs := map[string]time.Time{"orders": created, "clicks": created}
	waitFor := func(what string, ok func(map[string]Ingest) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			sums, known := agg.Ingest(srcs)
			if known && ok(sums) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: aggregator has %+v (known %v)", what, sums, known)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := func(r *SourceRecorder) (stop func()) {
		pctx, pcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); PublishSources(pctx, cl, r, 50*time.Millisecond, log, PublishTo(topic)) }()
		return func() { pcancel(); <-done }
	}

	a, b := NewSourceRecorder("rx-a"), NewSourceRecorder("rx-b")
	stopA, stopB := start(a), start(b)
	defer stopB()
	oa, ob, ca := a.Source("orders", created), b.Source("orders", created), a.Source("clicks", created)
	for range 3 {
		oa.Request(10)
		oa.Events(2)
	}
	ob.Request(7)
	ob.Rejection("malformed")
	ca.Request(1)
	ca.Events(1)
	waitFor("two instances", func(s map[string]Ingest) bool {
		return s["orders"].Events == 6 && s["orders"].Requests == 4 && s["orders"].Rejections["malformed"] == 1 && s["clicks"].Events == 1
	})

	// A stopped instance's final report holds what it counted last.
	oa.Request(10)
	oa.Events(4)
	stopA()
	waitFor("final report", func(s map[string]Ingest) bool { return s["orders"].Events == 10 && s["orders"].Requests == 5 })
	// Its successor adds to it.
	a2 := NewSourceRecorder("rx-a2")
	stopA2 := start(a2)
	defer stopA2()
	a2.Source("orders", created).Events(1)
	a2.Source("orders", created).Request(1)
	waitFor("restarted instance", func(s map[string]Ingest) bool { return s["orders"].Events == 11 && s["orders"].Requests == 6 })

	// clicks deleted: a running instance deletes its own report of it
	// (rx-b); the last report of a stopped one stays (rx-a's, left out
	// once a new source of that name exists: see TestAggregatorIngest).
	b.Source("clicks", created).Request(3)
	waitFor("clicks on rx-b", func(s map[string]Ingest) bool { return s["clicks"].Requests == 2 && s["clicks"].Bytes == 4 })
	b.Forget("clicks")
	waitFor("tombstone", func(s map[string]Ingest) bool { return s["clicks"].Requests == 1 && s["clicks"].Bytes == 1 })
}

// A publisher stops within its final timeout even when the broker takes
// its writes and never answers (the connection drops), and its client
// closes at once after it.
func TestPublishGivesUpOnUnansweredWrites(t *testing.T) {
	topic := kafkatest.Topic(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var produces atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		return nil, errors.New("connection dropped"), true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			cl.Close()
		}
	}()
	r := NewSourceRecorder("rx")
	r.Source("orders", time.Time{}).Request(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		PublishSources(ctx, cl, r, 50*time.Millisecond, zaptest.NewLogger(t), PublishTo(topic), FinalTimeout(300*time.Millisecond))
	}()
	for deadline := time.Now().Add(10 * time.Second); produces.Load() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no produce request reached the broker")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the publisher did not stop with its broker unanswering")
	}
	closedc := make(chan struct{})
	go func() { defer close(closedc); cl.Close() }()
	select {
	case <-closedc:
		closed = true
	case <-time.After(3 * time.Second):
		t.Fatal("the client did not close with writes unanswered")
	}
}

// BenchmarkSourceCounter is what counting adds to an accepted request,
// from many goroutines at once.
func BenchmarkSourceCounter(b *testing.B) {
	c := NewSourceRecorder("rx").Source("orders", time.Time{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Request(300)
			c.Events(1)
		}
	})
}
