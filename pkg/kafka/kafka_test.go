package kafka_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a", true},
		{"order-events-2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Orders", false},
		{"1orders", false},
		{"-orders", false},
		{"orders.v1", false}, // a dot would make samsa.src.orders.v1 ambiguous
		{"orders_v1", false},
		{"orders/x", false},
		{"ordérs", false},
		{"orders\n", false},
	} {
		err := kafka.ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestTopicNames(t *testing.T) {
	if got := kafka.SourceTopic("shop"); got != "samsa.src.shop" {
		t.Errorf("SourceTopic = %q", got)
	}
	if got := kafka.DeliveryTopic("big"); got != "samsa.out.big" {
		t.Errorf("DeliveryTopic = %q", got)
	}
	if got := kafka.DLQTopic("big"); got != "samsa.dlq.big" {
		t.Errorf("DLQTopic = %q", got)
	}
	if f, ok := kafka.FlowOfDeliveryTopic("samsa.out.big"); !ok || f != "big" {
		t.Errorf("FlowOfDeliveryTopic = %q, %v", f, ok)
	}
	if _, ok := kafka.FlowOfDeliveryTopic("samsa.src.big"); ok {
		t.Error("a source topic taken for a delivery topic")
	}
	for _, bad := range []string{"", ".", "..", "a b", "x/y", strings.Repeat("t", 250)} {
		if kafka.ValidateTopic(bad) == nil {
			t.Errorf("ValidateTopic(%q) accepted", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want string
	}{
		{"no brokers", kafka.Config{}, "no brokers"},
		{"no port", kafka.Config{Brokers: []string{"kafka"}}, "host:port"},
		{"bad mechanism", kafka.Config{Brokers: []string{"k:9092"}, SASLMechanism: "GSSAPI"}, "sasl mechanism"},
		{"sasl without user", kafka.Config{Brokers: []string{"k:9092"}, SASLMechanism: "PLAIN"}, "username"},
		{"cert without key", kafka.Config{Brokers: []string{"k:9092"}, TLS: true, CertFile: "c.pem"}, "both"},
		{"CA without TLS", kafka.Config{Brokers: []string{"k:9092"}, CAFile: "ca.pem"}, "TLS is off"},
		{"ok", kafka.Config{Brokers: []string{"k:9092"}, SASLMechanism: "SCRAM-SHA-512", SASLUsername: "u"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	bad := kafka.Config{Brokers: []string{"k:9092"}, TLS: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := bad.Options(nil); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Fatalf("missing CA file: %v", err)
	}
}

// TestEnvelopeThroughTransactions round-trips envelope records through a
// topic of a real broker with a transactional producer: a read_committed
// consumer sees exactly the committed events, never those of the aborted
// transaction, and each decodes to what was written.
func TestEnvelopeThroughTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &kafka.Config{Brokers: kafkatest.Brokers(t), ReplicationFactor: 1}
	topic := kafkatest.Topic(t)
	admin, err := cfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	spec := kafka.TopicSpec{Name: topic, Partitions: 3}
	if err := cfg.EnsureTopics(ctx, admin, spec); err != nil {
		t.Fatal(err)
	}
	if err := cfg.EnsureTopics(ctx, admin, spec); err != nil {
		t.Fatalf("EnsureTopics is not idempotent: %v", err)
	}

	prod, err := cfg.NewClient(nil, kgo.TransactionalID(topic+"-txn"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	mk := func(id, key string) *event.Event {
		return &event.Event{ID: id, Source: "shop", Type: "order.created", Time: at, Key: key,
			ContentType: "application/json", Data: []byte(`{"id":"` + id + `"}`), Attributes: map[string]string{"tenant": "t1"}}
	}
	txn := func(commit bool, evs ...*event.Event) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			b, err := event.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(ev.Key), Value: b}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	committed := []*event.Event{mk("e1", "k1"), mk("e2", "k2"), mk("e3", "k1"), mk("e6", "k3")}
	txn(true, committed[:3]...)
	txn(false, mk("aborted-4", "k1"), mk("aborted-5", "k2"))
	txn(true, committed[3])

	read := func(level kgo.IsolationLevel) map[string]*event.Event {
		t.Helper()
		cons, err := cfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(level))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		got := map[string]*event.Event{}
		// Data records plus transaction markers make up the end offsets;
		// read until a poll brings nothing more.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			fs := cons.PollFetches(pctx)
			pcancel()
			if fs.NumRecords() == 0 && len(got) > 0 {
				break
			}
			fs.EachRecord(func(r *kgo.Record) {
				ev, err := event.Decode(r.Value)
				if err != nil {
					t.Fatalf("decode %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				}
				if string(r.Key) != ev.Key {
					t.Errorf("record key %q, envelope key %q", r.Key, ev.Key)
				}
				got[ev.ID] = ev
			})
		}
		if total < int64(len(got)) {
			t.Fatalf("read %d events from topics ending at %d offsets", len(got), total)
		}
		return got
	}

	got := read(kgo.ReadCommitted())
	if len(got) != len(committed) {
		t.Fatalf("read_committed saw %d events, want %d: %v", len(got), len(committed), keys(got))
	}
	for _, want := range committed {
		ev, ok := got[want.ID]
		if !ok {
			t.Fatalf("committed event %s not read", want.ID)
		}
		if ev.Source != want.Source || ev.Type != want.Type || !ev.Time.Equal(want.Time) || ev.Key != want.Key ||
			string(ev.Data) != string(want.Data) || ev.Attributes["tenant"] != "t1" {
			t.Fatalf("event %s changed on the way: %+v", want.ID, ev)
		}
	}
	// The aborted records are in the log: a read_uncommitted reader sees
	// them, so the check above can fail.
	if all := read(kgo.ReadUncommitted()); len(all) != len(committed)+2 {
		t.Fatalf("read_uncommitted saw %d events, want %d (aborted ones included)", len(all), len(committed)+2)
	}
}

func keys(m map[string]*event.Event) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
