package kafkadest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

func item(t *testing.T, id, key string) destination.Item {
	ev := &event.Event{ID: id, Source: "s", Type: "t", Subject: "sub", Key: key, Time: time.Unix(1700000000, 0), ContentType: "application/json", Data: []byte(`{"a":1}`)}
	v, err := event.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return destination.Item{Event: ev, Envelope: v}
}

func TestRecordFormats(t *testing.T) {
	it := item(t, "id-1", "k")
	for _, tc := range []struct {
		format  string
		value   []byte
		headers map[string]string
	}{
		{FormatEnvelope, it.Envelope, map[string]string{HeaderEventID: "id-1"}},
		{FormatAvro, it.Envelope, map[string]string{HeaderEventID: "id-1"}},
		{FormatJSON, []byte(`{"a":1}`), map[string]string{HeaderEventID: "id-1", "ce_id": "id-1", "ce_type": "t", "ce_source": "s",
			"ce_subject": "sub", "ce_specversion": "1.0", "content-type": "application/json", "ce_time": "2023-11-14T22:13:20Z"}},
	} {
		d, err := New(Config{Topic: "x", Format: tc.format, Remote: &Remote{Brokers: []string{"127.0.0.1:1"}}})
		if err != nil {
			t.Fatal(err)
		}
		r := d.record(&it)
		got := map[string]string{}
		for _, h := range r.Headers {
			got[h.Key] = string(h.Value)
		}
		if string(r.Key) != "k" || string(r.Value) != string(tc.value) || fmt.Sprint(got) != fmt.Sprint(tc.headers) {
			t.Errorf("%s: key %q value %q headers %v", tc.format, r.Key, r.Value, got)
		}
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		err   error
		class destination.Class
	}{
		{kerr.MessageTooLarge, destination.Permanent},
		{fmt.Errorf("wrapped: %w", kerr.InvalidRecord), destination.Permanent},
		{kerr.NotLeaderForPartition, destination.Retryable},
		{kerr.TopicAuthorizationFailed, destination.Retryable},
		{context.DeadlineExceeded, destination.Retryable},
		{errors.New("connection refused"), destination.Retryable},
	} {
		if got := classify(ctx, tc.err); got.Class != tc.class {
			t.Errorf("%v: %v, want %v", tc.err, got.Class, tc.class)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if got := classify(canceled, context.Canceled); got.Class != destination.Requeue {
		t.Errorf("canceled: %v", got.Class)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Topic: "", Own: &kafka.Config{Brokers: []string{"x:1"}}, TransactionalID: "t"},
		{Topic: "t", Format: "xml", Own: &kafka.Config{Brokers: []string{"x:1"}}, TransactionalID: "t"},
		{Topic: "t"},
		{Topic: "t", Own: &kafka.Config{Brokers: []string{"x:1"}}},
		{Topic: "t", Remote: &Remote{}},
		{Topic: "t", Remote: &Remote{Brokers: []string{"x:1"}, SASLMechanism: "GSSAPI"}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

// Another cluster (here: the test broker named explicitly) is written
// idempotently, without transactions.
func TestRemoteCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	defer cl.Close()
	topic := kafkatest.Topic(t)
	if err := kcfg.EnsureTopics(ctx, cl, kafka.TopicSpec{Name: topic, Partitions: 1, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Topic: topic, Format: FormatJSON, Remote: &Remote{Brokers: kcfg.Brokers}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Transactional() || d.Capabilities().MaxConcurrency != 0 {
		t.Fatal("a remote destination claims to be transactional")
	}
	items := []destination.Item{item(t, "a", "k"), item(t, "b", "k")}
	res := make([]destination.Result, 2)
	d.Deliver(ctx, items, res)
	for _, r := range res {
		if r.Class != destination.Success {
			t.Fatalf("%+v", r)
		}
	}
	rc, err := kcfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	for len(got) < 2 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[0] != `{"a":1}` {
		t.Fatalf("values %q", got)
	}
}
