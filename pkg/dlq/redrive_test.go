package dlq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

type redriveEnv struct {
	t    *testing.T
	ctx  context.Context
	cl   *kgo.Client
	kcfg *kafka.Config
	flow string
}

func newRedriveEnv(t *testing.T) *redriveEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var brokers []string
	if testing.Short() {
		brokers = kafkatest.Fake(t)
	} else {
		brokers = kafkatest.Brokers(t)
	}
	kcfg := &kafka.Config{Brokers: brokers, ReplicationFactor: 1}
	cl, err := kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	flow := fmt.Sprintf("rd%x", time.Now().UnixNano()&0xffffffffff)
	for _, topic := range []string{kafka.DeliveryTopic(flow), kafka.DLQTopic(flow)} {
		if err := kcfg.EnsureTopics(ctx, cl, kafka.TopicSpec{Name: topic, Partitions: 3, Replication: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return &redriveEnv{t: t, ctx: ctx, cl: cl, kcfg: kcfg, flow: flow}
}

// deadLetters writes n dead letters: event i has type "a" when i is even,
// "b" otherwise, and was dead-lettered at base + i minutes.
func (e *redriveEnv) deadLetters(n int, base time.Time, txn bool) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		typ := "a"
		if i%2 == 1 {
			typ = "b"
		}
		ev := &event.Event{ID: fmt.Sprintf("ev-%d", i), Type: typ, Key: fmt.Sprintf("k%d", i%5), Time: base, Data: []byte(`{}`), ContentType: "application/json"}
		v, err := event.Encode(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		f := Failure{Flow: e.flow, Stage: "deliver", Err: "HTTP 400", Status: "400", Attempts: 1, Time: base.Add(time.Duration(i) * time.Minute)}
		recs[i] = &kgo.Record{Topic: kafka.DLQTopic(e.flow), Key: []byte(ev.Key), Value: v,
			Headers: append(f.Headers(), kgo.RecordHeader{Key: "trace", Value: []byte("x")})}
	}
	cl := e.cl
	if txn {
		// A transactional writer, like the transformer: markers between records.
		var err error
		cl, err = e.kcfg.NewClient(nil, kgo.TransactionalID("w-"+e.flow))
		if err != nil {
			e.t.Fatal(err)
		}
		defer cl.Close()
		for _, r := range recs {
			if err := cl.BeginTransaction(); err != nil {
				e.t.Fatal(err)
			}
			if err := cl.ProduceSync(e.ctx, r).FirstErr(); err != nil {
				e.t.Fatal(err)
			}
			if err := cl.EndTransaction(e.ctx, kgo.TryCommit); err != nil {
				e.t.Fatal(err)
			}
		}
		return recs
	}
	if err := cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// delivered reads the delivery topic (read_committed) to its end.
func (e *redriveEnv) delivered() []*kgo.Record {
	topic := kafka.DeliveryTopic(e.flow)
	ends, err := kadm.NewClient(e.cl).ListCommittedOffsets(e.ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := e.kcfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(e.ctx)
		if e.ctx.Err() != nil {
			e.t.Fatal(e.ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// waitDelivered polls until the delivery topic holds n records: the
// markers of a committed transaction are written asynchronously, so
// read_committed readers see its records a moment after the commit.
func (e *redriveEnv) waitDelivered(n int) []*kgo.Record {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.delivered()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				e.t.Fatalf("%d records in the delivery topic, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *redriveEnv) depth() int64 {
	n, err := Depth(e.ctx, e.cl, e.flow)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestRedriveFilterTimeAndSecondRun(t *testing.T) {
	e := newRedriveEnv(t)
	base := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	e.deadLetters(20, base, false)
	if d := e.depth(); d != 20 {
		t.Fatalf("depth %d, want 20", d)
	}

	var seen []Progress
	err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{Filter: `event.type == "a"`}, func(p Progress) { seen = append(seen, p) })
	if err != nil {
		t.Fatal(err)
	}
	last := seen[len(seen)-1]
	if !last.Done || last.Total != 20 || last.Scanned != 20 || last.Redriven != 10 {
		t.Fatalf("progress %+v", seen)
	}
	got := e.waitDelivered(10)
	for _, r := range got {
		ev, err := event.Decode(r.Value)
		if err != nil || ev.Type != "a" || string(r.Key) != ev.Key {
			t.Fatalf("redriven %v %v key %q", ev, err, r.Key)
		}
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs[HeaderRedriven] != "1" || hs["trace"] != "x" || hs[HeaderStatus] != "" || hs[HeaderError] != "" {
			t.Fatalf("redriven headers %v", hs)
		}
	}
	// The others were kept (moved to the end), so the depth counts them.
	if d := e.depth(); d != 10 {
		t.Fatalf("depth after redrive %d, want 10", d)
	}

	// A second run with the same filter finds nothing new.
	seen = nil
	if err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{Filter: `event.type == "a"`}, func(p Progress) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if last := seen[len(seen)-1]; last.Redriven != 0 || last.Scanned != 10 || len(e.waitDelivered(10)) != 10 {
		t.Fatalf("second run %+v", seen)
	}

	// Time range: the b events were dead-lettered at odd minutes 1..19.
	since, until := base.Add(5*time.Minute), base.Add(11*time.Minute) // 5, 7, 9
	if err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{Since: since, Until: until}, nil); err != nil {
		t.Fatal(err)
	}
	got = e.waitDelivered(13)
	for _, r := range got {
		ev, _ := event.Decode(r.Value)
		i, _ := strconv.Atoi(ev.ID[3:])
		if i%2 == 1 && (i < 5 || i >= 11) {
			t.Fatalf("time-range redrive sent %s", ev.ID)
		}
	}
	if d := e.depth(); d != 7 {
		t.Fatalf("depth %d, want 7", d)
	}

	// Everything else; then the dead-letter topic is empty of work.
	if err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	e.waitDelivered(20)
	if d := e.depth(); d != 0 {
		t.Fatalf("depth %d, want 0", d)
	}
	seen = nil
	if err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{}, func(p Progress) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if last := seen[len(seen)-1]; !last.Done || last.Total != 0 {
		t.Fatalf("empty redrive %+v", seen)
	}
}

func TestDepthCountsRecordsNotMarkers(t *testing.T) {
	e := newRedriveEnv(t)
	e.deadLetters(6, time.Now(), true)
	// The writer's last transaction becomes visible a moment after its
	// commit returned.
	deadline := time.Now().Add(10 * time.Second)
	for e.depth() != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("depth %d of 6 transactionally written dead letters", e.depth())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{Filter: `event.type == "b"`}, nil); err != nil {
		t.Fatal(err)
	}
	if d := e.depth(); d != 3 {
		t.Fatalf("depth %d, want 3", d)
	}
}

func TestRedriveInvalidFilter(t *testing.T) {
	e := newRedriveEnv(t)
	err := Redrive(e.ctx, e.cl, e.flow, RedriveOptions{Filter: `event.type ==`}, nil)
	if !errors.Is(err, ErrInvalidFilter) {
		t.Fatalf("err %v, want ErrInvalidFilter", err)
	}
	if err := Redrive(e.ctx, e.cl, "Not Valid", RedriveOptions{}, nil); err == nil {
		t.Fatal("invalid flow name accepted")
	}
}

func TestRedriveRecordHeaders(t *testing.T) {
	r := redriveRecord(&kgo.Record{Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: HeaderRedriven, Value: []byte("2")}, {Key: HeaderError, Value: []byte("e")}, {Key: "x", Value: []byte("y")},
	}}, "samsa.out.f")
	if r.Topic != "samsa.out.f" || string(r.Key) != "k" || string(r.Value) != "v" || len(r.Headers) != 2 ||
		r.Headers[0].Key != "x" || r.Headers[1].Key != HeaderRedriven || string(r.Headers[1].Value) != "3" {
		t.Fatalf("%+v", r)
	}
}
