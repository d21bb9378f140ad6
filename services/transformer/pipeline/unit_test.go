package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestDecodeRecord(t *testing.T) {
	ts := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	env, _ := event.Encode(&event.Event{ID: "abc", Source: "s", Time: ts, Key: "k", Data: []byte(`{}`)})
	rec := func(key, value []byte, headers ...string) *kgo.Record {
		r := &kgo.Record{Topic: "native.topic", Partition: 4, Offset: 77, Key: key, Value: value, Timestamp: ts}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: headers[i], Value: []byte(headers[i+1])})
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		format  string
		rec     *kgo.Record
		want    *event.Event
		wantErr string
	}{
		{name: "envelope", format: "envelope", rec: rec([]byte("k"), env),
			want: &event.Event{ID: "abc", Source: "s", Time: ts.Truncate(time.Microsecond), Key: "k", Data: []byte(`{}`), Attributes: map[string]string{}}},
		{name: "envelope junk", format: "envelope", rec: rec(nil, []byte(`{"a":1}`)), wantErr: "single-object"},
		{name: "envelope tombstone", format: "envelope", rec: rec([]byte("k"), nil), wantErr: "single-object"},
		{name: "json", format: "json",
			rec: rec([]byte("user-1"), []byte(`{"a":1}`), "ce_type", "user.created", "ce_subject", "u1", "ce_tenant", "acme", "ce_id", "ignored", "traceparent", "00-aa-bb-01", "other", "x"),
			want: &event.Event{ID: "native.topic-4-77", Source: "src", Type: "user.created", Subject: "u1", Time: ts.Truncate(time.Microsecond),
				Key: "user-1", ContentType: "application/json", Data: []byte(`{"a":1}`), Attributes: map[string]string{"tenant": "acme"}, TraceParent: "00-aa-bb-01"}},
		{name: "json invalid", format: "json", rec: rec(nil, []byte(`{"a":`)), wantErr: "not valid JSON"},
		{name: "json tombstone", format: "json", rec: rec([]byte("k"), nil), wantErr: "tombstone"},
		{name: "bytes with binary key", format: "bytes", rec: rec([]byte{0xff, 0x00}, []byte{1, 2, 3}, "content-type", "image/png"),
			want: &event.Event{ID: "native.topic-4-77", Source: "src", Time: ts.Truncate(time.Microsecond), Key: "/wA=", ContentType: "image/png", Data: []byte{1, 2, 3}}},
		{name: "bytes tombstone", format: "bytes", rec: rec(nil, nil),
			want: &event.Event{ID: "native.topic-4-77", Source: "src", Time: ts.Truncate(time.Microsecond), ContentType: "application/octet-stream"}},
		{name: "unknown format", format: "avro", rec: rec(nil, []byte("x")), wantErr: "unsupported source format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRecord(tc.format, "src", tc.rec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if _, err := event.Encode(got); err != nil {
				t.Fatalf("wrapped event does not encode: %v", err)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{NativeID("orders.v1", 0, 0), "orders.v1-0-0"},
		{NativeID("a-1", 12, 345), "a-1-12-345"},
		{OutputID("evt", 0), "evt"},
		{OutputID("evt", 1), "evt#1"},
		{OutputID("a-1-12-345", 10), "a-1-12-345#10"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestOutputPartitioner(t *testing.T) {
	ours := outputPartitioner().ForTopic("t")
	kafkas := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, tc := range []struct {
		key  string
		hint int32
		n    int
	}{
		{"", 0, 6}, {"", 5, 6}, {"", 7, 6}, {"", 3, 1},
		{"k1", 0, 6}, {"customer-42", 3, 6}, {"x", 0, 1}, {"ünïcode", 2, 12},
	} {
		r := &kgo.Record{Key: []byte(tc.key), Partition: tc.hint}
		got := ours.Partition(r, tc.n)
		want := int(tc.hint) % tc.n
		if tc.key != "" {
			want = kafkas.Partition(&kgo.Record{Key: []byte(tc.key)}, tc.n)
		}
		if got != want {
			t.Errorf("key %q hint %d of %d: partition %d, want %d", tc.key, tc.hint, tc.n, got, want)
		}
	}
}

func TestCommitMetadata(t *testing.T) {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "a", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0}, {Partition: 1}}}}
	if err := stampMetadata(1234)(req); err != nil {
		t.Fatal(err)
	}
	for _, p := range req.Topics[0].Partitions {
		if got := parseMetadata(p.Metadata); got != 1234 {
			t.Fatalf("metadata %v parses to %d", p.Metadata, got)
		}
	}
	for _, s := range []string{"", "member-id-123", "samsa-flows=", "samsa-flows=x"} {
		if got := parseMetadata(&s); got != 0 {
			t.Errorf("parseMetadata(%q) = %d, want 0", s, got)
		}
	}
	if parseMetadata(nil) != 0 {
		t.Error("nil metadata")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{}, false},
		{Config{MaxBatch: 10, Workers: 2, TransactionTimeout: 5 * time.Second, TransactionalID: "a"}, false},
		{Config{MaxBatch: -1}, true},
		{Config{Workers: -1}, true},
		{Config{TransactionTimeout: time.Millisecond}, true},
		{Config{TransactionalID: "a b"}, true},
		{Config{ScriptTimeout: -time.Second}, true},
		{Config{BatchWindow: 20 * time.Millisecond}, false},
		{Config{BatchWindow: -time.Millisecond}, true},
		{Config{BatchWindow: 2 * time.Second}, true},
	} {
		if err := tc.cfg.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%+v: Validate() = %v, want error %v", tc.cfg, err, tc.wantErr)
		}
	}
	d := Config{}.withDefaults()
	if d.Group == "" || d.TransactionalID == "" || d.MaxBatch <= 0 || d.Workers <= 0 || d.SessionTimeout <= 0 {
		t.Fatalf("defaults not applied: %+v", d)
	}
}

// offline is a pipeline without Kafka, to run batches on.
func offline(t testing.TB, sources []*samsav1.Source, flows []*samsav1.Flow) (*Pipeline, *table) {
	t.Helper()
	snap := &flow.Snapshot{Sources: map[string]*samsav1.Source{}, Flows: map[string]*samsav1.Flow{}, Offset: 42}
	for _, s := range sources {
		snap.Sources[s.Name] = s
	}
	for i, f := range flows {
		f.Version = int64(10 + i)
		snap.Flows[f.Name] = f
	}
	p := &Pipeline{cfg: Config{Workers: benchWorkers()}.withDefaults(), log: zap.NewNop(), m: newMetrics(nil), poison: map[poisonKey]poisonEntry{}, warnedAt: map[string]time.Time{}}
	p.builder = newBuilder(p.m)
	return p, p.builder.build(snap)
}

// runOffline runs recs (of one partition of topic) through a batch and
// returns what would be produced, by topic.
func runOffline(p *Pipeline, tbl *table, topic string, recs []*kgo.Record) (map[string][]*kgo.Record, *batch) {
	for i, r := range recs {
		r.Topic, r.Partition, r.Offset = topic, 2, int64(100+i)
	}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{{Partition: 2, Records: recs, HighWatermark: int64(100 + len(recs))}}}}}}
	b := newBatch(context.Background(), p, tbl, fs)
	out := map[string][]*kgo.Record{}
	b.run(func(r *kgo.Record) { out[r.Topic] = append(out[r.Topic], r) })
	return out, b
}

func envelope(t testing.TB, ev *event.Event) []byte {
	t.Helper()
	b, err := event.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatch runs flows on records without Kafka: filter, fan-out, keys,
// dead letters of every stage, several sources on one topic.
func TestBatch(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := func(id, key, data string) []byte {
		return envelope(t, &event.Event{ID: id, Source: "shop", Type: "order", Time: now, Key: key, ContentType: "application/json", Data: []byte(data), TraceParent: "00-tp"})
	}
	sources := []*samsav1.Source{
		{Name: "shop", Topic: "shop-topic"},
		{Name: "raw", Topic: "native", Format: "json"},
		{Name: "blobs", Topic: "native", Format: "bytes"},
	}
	flows := []*samsav1.Flow{
		{Name: "big", Source: "shop", Filter: `event.data["n"] >= 10`},
		{Name: "fan", Source: "shop", Transform: `
def transform(event):
    d = event.data
    if d["n"] == 13:
        fail("unlucky")
    if d["n"] == 14:
        return emit(d, type="é"[:1])
    if d["n"] == 15:
        return None
    return [d, emit({"copy": d["n"]}, key="other", type="copied")]
`},
		{Name: "broken", Source: "shop", Transform: "def transform(event):\n    return undefined_name\n"},
		{Name: "rawflow", Source: "raw", Transform: "def transform(event):\n    return {\"id\": event.id, \"v\": event.data[\"v\"]}\n"},
		{Name: "blobflow", Source: "blobs"},
	}
	p, tbl := offline(t, sources, flows)
	if fr := tbl.flows[tbl.flowIndex("broken")]; fr.compileErr == nil {
		t.Fatal("broken flow compiled")
	}

	out, b := runOffline(p, tbl, "shop-topic", []*kgo.Record{
		{Key: []byte("k1"), Value: ev("e1", "k1", `{"n":1}`)},
		{Key: []byte("k2"), Value: ev("e2", "k2", `{"n":12}`)},
		{Key: []byte("k3"), Value: ev("e3", "k3", `{"n":13}`)},
		{Key: []byte("k4"), Value: ev("e4", "k4", `{"n":14}`)},
		{Key: []byte("k5"), Value: ev("e5", "k5", `{"n":15}`)},
		{Key: nil, Value: []byte("junk")},
	})
	if err := b.err(); err != nil {
		t.Fatal(err)
	}

	ids := func(recs []*kgo.Record) []string {
		var s []string
		for _, r := range recs {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, fmt.Sprintf("%s:%s:%s:%s", e.ID, r.Key, e.Type, e.Data))
		}
		return s
	}
	wantOut := map[string][]string{
		"samsa.out.big": {`e2:k2:order:{"n":12}`, `e3:k3:order:{"n":13}`, `e4:k4:order:{"n":14}`, `e5:k5:order:{"n":15}`},
		"samsa.out.fan": {`e1:k1:order:{"n":1}`, `e1#1:other:copied:{"copy":1}`, `e2:k2:order:{"n":12}`, `e2#1:other:copied:{"copy":12}`},
	}
	for topic, want := range wantOut {
		if got := ids(out[topic]); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v", topic, got, want)
		}
	}
	for _, r := range out["samsa.out.fan"] {
		e, _ := event.Decode(r.Value)
		if e.TraceParent != "00-tp" || e.Source != "shop" || !e.Time.Equal(now) {
			t.Errorf("output %s lost metadata: %+v", e.ID, e)
		}
		if len(r.Key) == 0 || r.Partition != 2 {
			t.Errorf("output %s: key %q, partition hint %d", e.ID, r.Key, r.Partition)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "traceparent" || string(r.Headers[0].Value) != "00-tp" {
			t.Errorf("output %s: trace headers %v", e.ID, r.Headers)
		}
	}

	type dl struct{ flow, stage, msg, key string }
	var gotDL []dl
	for _, topic := range []string{"samsa.dlq.big", "samsa.dlq.fan", "samsa.dlq.broken"} {
		for _, r := range out[topic] {
			f := dlq.Parse(r.Headers)
			if f.SourceTopic != "shop-topic" || f.SourcePartition != 2 || f.SourceOffset < 100 || f.FlowVersion == 0 || f.Time.IsZero() {
				t.Errorf("dead letter headers %+v", f)
			}
			if f.Stage != StageDecode {
				if e, err := event.Decode(r.Value); err != nil || string(r.Key) != e.Key {
					t.Errorf("dead letter value is not the original envelope: %v", err)
				}
			} else if string(r.Value) != "junk" {
				t.Errorf("decode dead letter value %q", r.Value)
			}
			gotDL = append(gotDL, dl{f.Flow, f.Stage, f.Err, string(r.Key)})
		}
	}
	wantDL := []struct{ flow, stage, contains, key string }{
		{"big", "decode", "single-object", ""},
		{"fan", "transform", "line 5, column 13: fail: unlucky", "k3"},
		{"fan", "encode", "output 0", "k4"},
		{"fan", "decode", "single-object", ""},
	}
	for i := 0; i < 5; i++ {
		wantDL = append(wantDL, struct{ flow, stage, contains, key string }{"broken", "transform", "does not compile: line 2", fmt.Sprint("k", i+1)})
	}
	wantDL = append(wantDL, struct{ flow, stage, contains, key string }{"broken", "decode", "single-object", ""})
	if len(gotDL) != len(wantDL) {
		t.Fatalf("dead letters:\n got %v\nwant %v", gotDL, wantDL)
	}
	for i, w := range wantDL {
		g := gotDL[i]
		if g.flow != w.flow || g.stage != w.stage || !strings.Contains(g.msg, w.contains) || g.key != w.key {
			t.Errorf("dead letter %d: got %+v, want %+v", i, g, w)
		}
	}

	// The counts of the batch add up.
	total := make([]flowCounts, len(tbl.flows))
	for _, w := range b.workers {
		for i := range w.counts {
			total[i].add(&w.counts[i])
		}
	}
	wantCounts := map[string]stats.Counts{
		"big":    {Received: 6, FilteredOut: 1, Transformed: 4, DeadLettered: 1},
		"fan":    {Received: 6, FilteredOut: 1, Transformed: 4, Expanded: 2, DeadLettered: 3},
		"broken": {Received: 6, DeadLettered: 6},
	}
	for name, want := range wantCounts {
		if got := total[tbl.flowIndex(name)].c; got != want {
			t.Errorf("flow %s counts %+v, want %+v", name, got, want)
		}
		c := wantCounts[name]
		if c.Received+c.Expanded != c.FilteredOut+c.DeadLettered+c.Transformed {
			t.Errorf("flow %s: counts do not add up", name)
		}
	}

	// Two sources of different formats on one native topic.
	out, _ = runOffline(p, tbl, "native", []*kgo.Record{
		{Key: []byte("u1"), Value: []byte(`{"v":"x"}`)},
		{Key: []byte("u2"), Value: []byte(`not json`)},
	})
	if got := ids(out["samsa.out.rawflow"]); fmt.Sprint(got) != `[native-2-100:u1::{"id":"native-2-100","v":"x"}]` {
		t.Errorf("rawflow: %v", got)
	}
	if got := ids(out["samsa.out.blobflow"]); fmt.Sprint(got) != `[native-2-100:u1::{"v":"x"} native-2-101:u2::not json]` {
		t.Errorf("blobflow: %v", got)
	}
	if d := out["samsa.dlq.rawflow"]; len(d) != 1 || dlq.Parse(d[0].Headers).Stage != StageDecode || string(d[0].Value) != "not json" {
		t.Errorf("rawflow dead letters: %v", d)
	}
}

// TestPoison: a record whose output the broker refused is dead-lettered on
// the retry, and a dead letter that was refused too is written without its
// value.
func TestPoison(t *testing.T) {
	p, tbl := offline(t, []*samsav1.Source{{Name: "s", Topic: "t"}}, []*samsav1.Flow{{Name: "f", Source: "s"}})
	recs := func() []*kgo.Record {
		return []*kgo.Record{
			{Key: []byte("a"), Value: envelope(t, &event.Event{ID: "small", Time: time.Now(), Data: []byte(`1`)})},
			{Key: []byte("b"), Value: envelope(t, &event.Event{ID: "large", Time: time.Now(), Data: []byte(strings.Repeat("x", 5000))})},
		}
	}
	out, b := runOffline(p, tbl, "t", recs())
	if len(out["samsa.out.f"]) != 2 {
		t.Fatalf("outputs: %v", out)
	}
	// The broker refuses the produce batch holding both: the larger one
	// is poisoned.
	for _, r := range out["samsa.out.f"] {
		b.onProduced(r, fmt.Errorf("wrapped: %w", errTooLargeForBroker))
	}
	poisoned, missing, hook := b.classifyFailures()
	if len(missing) != 0 || len(poisoned) != 1 || hook {
		t.Fatalf("poisoned %v, missing %v", poisoned, missing)
	}
	for k, v := range poisoned {
		if k.offset != 101 || k.flow != "f" || v.dlqToo {
			t.Fatalf("poisoned %+v %+v", k, v)
		}
		p.poison[k] = v
	}

	out, b = runOffline(p, tbl, "t", recs())
	if len(out["samsa.out.f"]) != 1 || len(out["samsa.dlq.f"]) != 1 {
		t.Fatalf("retry: %v", out)
	}
	d := out["samsa.dlq.f"][0]
	if f := dlq.Parse(d.Headers); f.Stage != StageEncode || !strings.Contains(f.Err, "MESSAGE_TOO_LARGE") || d.Value == nil {
		t.Fatalf("dead letter %+v, value %d bytes", f, len(d.Value))
	}
	// The dead letter is refused too: written without its value.
	b.onProduced(d, errTooLargeForBroker)
	poisoned, _, _ = b.classifyFailures()
	for k, v := range poisoned {
		if !v.dlqToo {
			t.Fatalf("dead letter failure not marked: %+v", v)
		}
		p.poison[k] = v
	}
	out, b = runOffline(p, tbl, "t", recs())
	d = out["samsa.dlq.f"][0]
	if f := dlq.Parse(d.Headers); d.Value != nil || !strings.Contains(f.Err, "too large to dead-letter") || !strings.Contains(f.Err, "MESSAGE_TOO_LARGE") {
		t.Fatalf("dead letter without value: %+v, %d bytes", f, len(d.Value))
	}
	// Once committed, the poison entry is forgotten.
	b.report()
	if len(p.poison) != 0 {
		t.Fatalf("poison kept after commit: %v", p.poison)
	}
}

var errTooLargeForBroker = errors.Join(errors.New("broker says"), kerr.MessageTooLarge)

func (t *table) flowIndex(name string) int {
	for _, f := range t.flows {
		if f.name == name {
			return f.idx
		}
	}
	return -1
}

func benchWorkers() int {
	n, _ := strconv.Atoi(os.Getenv("SAMSA_BENCH_WORKERS"))
	return n
}

// TestWaitForFlows: a partition whose last commit ran flows the local store
// has not reached yet is not consumed until the store gets there.
func TestWaitForFlows(t *testing.T) {
	st, err := flow.NewStore(&kafka.Config{Brokers: []string{"127.0.0.1:1"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Run with a done context only closes the store's client.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = st.Run(ctx)
	})
	p := &Pipeline{store: st, log: zap.NewNop()}
	resp := func(metas ...string) *kmsg.OffsetFetchResponse {
		r := kmsg.NewPtrOffsetFetchResponse()
		g := kmsg.NewOffsetFetchResponseGroup()
		gt := kmsg.NewOffsetFetchResponseGroupTopic()
		for i, m := range metas {
			pt := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			pt.Partition = int32(i)
			pt.Metadata = kmsg.StringPtr(m)
			gt.Partitions = append(gt.Partitions, pt)
		}
		g.Topics = append(g.Topics, gt)
		r.Groups = append(r.Groups, g)
		return r
	}
	// Nothing to wait for: no metadata of ours, or the store is there.
	for _, metas := range [][]string{{""}, {"member-1", "other"}, {"samsa-flows=0"}} {
		if err := p.onOffsetsFetched(context.Background(), nil, resp(metas...)); err != nil {
			t.Fatalf("%v: %v", metas, err)
		}
	}
	// The store (not running, at offset 0) is behind: blocks until the
	// assignment is given up.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.onOffsetsFetched(ctx, nil, resp("samsa-flows=3", "samsa-flows=7")); err == nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("returned %v after %s, want to wait for the store", err, time.Since(start))
	}
}
