package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMain(m *testing.M) {
	code := kafkatest.RunMain(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// env is a test's own corner of a shared real broker: its own flows topic,
// consumer group and names.
type env struct {
	t          testing.TB
	cfg        *kafka.Config
	cl         *kgo.Client
	adm        *kadm.Client
	flowsTopic string
	group      string
	txnPrefix  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	cfg := &kafka.Config{Brokers: kafkatest.Brokers(t), ReplicationFactor: 1}
	cl, err := cfg.NewClient(nil, kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e := &env{
		t: t, cfg: cfg, cl: cl, adm: kadm.NewClient(cl),
		flowsTopic: kafkatest.Topic(t),
		group:      "g-" + uniq(),
		txnPrefix:  "tx-" + uniq(),
	}
	spec := kafka.FlowsTopicSpec()
	spec.Name = e.flowsTopic
	e.ensure(spec)
	return e
}

// uniq is a short random lowercase suffix for names on the shared broker.
func uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// flowName is a unique valid flow name.
func flowName(prefix string) string { return prefix + "-" + uniq() }

func (e *env) ensure(specs ...kafka.TopicSpec) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.cfg.EnsureTopics(ctx, e.cl, specs...); err != nil {
		e.t.Fatal(err)
	}
}

// topic creates a unique topic with n partitions.
func (e *env) topic(n int32) string {
	name := kafkatest.Topic(e.t)
	e.ensure(kafka.TopicSpec{Name: name, Partitions: n, Replication: 1})
	return name
}

// flowTopics creates a flow's delivery and dead-letter topics, as the
// control service does.
func (e *env) flowTopics(flowName string, n int32) {
	e.ensure(
		kafka.TopicSpec{Name: kafka.DeliveryTopic(flowName), Partitions: n, Replication: 1},
		kafka.TopicSpec{Name: kafka.DLQTopic(flowName), Partitions: n, Replication: 1},
	)
}

func (e *env) write(key string, m proto.Message) {
	e.t.Helper()
	var v []byte
	if m != nil {
		var err error
		if v, err = proto.Marshal(m); err != nil {
			e.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, &kgo.Record{Topic: e.flowsTopic, Key: []byte(key), Value: v}).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) putSource(s *samsav1.Source) { e.write(flow.Key(flow.KindSource, s.Name), s) }

func (e *env) putFlow(f *samsav1.Flow) {
	if f.CreateTime == nil {
		f.CreateTime = timestamppb.Now()
	}
	e.write(flow.Key(flow.KindFlow, f.Name), f)
}

func (e *env) deleteFlow(name string) { e.write(flow.Key(flow.KindFlow, name), nil) }

// store runs a flow store over the env's flows topic until the test ends.
func (e *env) store() *flow.Store {
	e.t.Helper()
	st, err := flow.NewStore(e.cfg, zap.NewNop(), flow.WithTopic(e.flowsTopic))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return st
}

// replica is an in-process pipeline.
type replica struct {
	p      *Pipeline
	cancel context.CancelFunc
	done   chan error
}

func (e *env) config(id string) Config {
	return Config{
		Group:           e.group,
		TransactionalID: e.txnPrefix + "-" + id,
		SessionTimeout:  6 * time.Second,
		MaxBatch:        2000,
		BatchWindow:     5 * time.Millisecond,
		StartLookback:   time.Hour,
	}
}

func (e *env) start(st *flow.Store, cfg Config, opts ...Option) *replica {
	e.t.Helper()
	var log *zap.Logger
	if testing.Verbose() {
		log = zaptest.NewLogger(e.t, zaptest.Level(zap.DebugLevel))
	} else {
		log = zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	}
	p, err := New(cfg, e.cfg, st, log.With(zap.String("replica", cfg.TransactionalID)), nil, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop shuts the replica down gracefully and waits for it.
func (r *replica) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("pipeline: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("pipeline did not stop within 60s")
	}
}

// payload is the JSON of a test event.
type payload struct {
	N    int    `json:"n"`
	Kind string `json:"kind"`
	Pad  string `json:"pad,omitempty"`
}

// events returns n envelope events numbered from first, keyed in 20 keys.
func events(source string, first, n int, pad string) []*kgo.Record {
	recs := make([]*kgo.Record, 0, n)
	now := time.Now()
	for i := first; i < first+n; i++ {
		kind := "order"
		if i%3 == 0 {
			kind = "refund"
		}
		data, _ := json.Marshal(payload{N: i, Kind: kind, Pad: pad})
		key := fmt.Sprintf("k%02d", i%20)
		ev := &event.Event{
			ID: fmt.Sprintf("e%07d", i), Source: source, Type: "test." + kind, Time: now,
			Key: key, ContentType: "application/json", Data: data,
			TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}
		v, err := event.Encode(ev)
		if err != nil {
			panic(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(key), Value: v})
	}
	return recs
}

// produce writes recs to topic.
func (e *env) produce(topic string, recs []*kgo.Record) {
	e.t.Helper()
	for _, r := range recs {
		r.Topic = topic
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// read reads topic with read_committed until want records were read or
// the deadline passes, then also drains whatever else is committed (to
// catch duplicates).
func (e *env) read(topic string, want int, deadline time.Duration) []*kgo.Record {
	e.t.Helper()
	cl, err := e.cfg.NewClient(nil,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	end := time.Now().Add(deadline)
	for len(out) < want && time.Now().Before(end) {
		ctx, cancel := context.WithDeadline(context.Background(), end)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// Drain: anything committed beyond what we wanted is a duplicate.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			break
		}
	}
	return out
}

// decodeAll decodes envelope records.
func decodeAll(t testing.TB, recs []*kgo.Record) []*event.Event {
	t.Helper()
	out := make([]*event.Event, 0, len(recs))
	for _, r := range recs {
		ev, err := event.Decode(r.Value)
		if err != nil {
			t.Fatalf("output at %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, ev)
	}
	return out
}

// checkExactlyOnce checks that the ids of recs are exactly want, once each.
func checkExactlyOnce(t testing.TB, what string, recs []*kgo.Record, want []string) {
	t.Helper()
	got := map[string]int{}
	for _, ev := range decodeAll(t, recs) {
		got[ev.ID]++
	}
	var missing, dup []string
	for _, id := range want {
		switch got[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dup = append(dup, fmt.Sprintf("%s×%d", id, got[id]))
		}
		delete(got, id)
	}
	var extra []string
	for id := range got {
		extra = append(extra, id)
	}
	sort.Strings(missing)
	sort.Strings(dup)
	sort.Strings(extra)
	if len(missing)+len(dup)+len(extra) > 0 {
		t.Fatalf("%s: %d records, want %d: %d missing %v, %d duplicated %v, %d unexpected %v",
			what, len(recs), len(want), len(missing), head(missing), len(dup), head(dup), len(extra), head(extra))
	}
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// committed returns the group's committed offsets summed over topic.
func (e *env) committed(topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := e.adm.FetchOffsets(ctx, e.group)
	if err != nil {
		return -1
	}
	var n int64
	for _, ps := range offs[topic] {
		n += ps.At
	}
	return n
}
