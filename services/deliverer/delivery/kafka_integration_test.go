package delivery

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination/kafkadest"
)

func kafkaFlow(name, topic, format string) *samsav1.Flow {
	return &samsav1.Flow{
		Name: name, Source: "src",
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Kafka{Kafka: &samsav1.KafkaDestination{Topic: topic, Format: format}}},
		Delivery: &samsav1.Delivery{
			Retry:   &samsav1.Retry{InitialBackoff: "20ms", MaxBackoff: "200ms"},
			Timeout: "10s",
			RampUp:  "0s",
		},
	}
}

// eventIDs returns the samsa-event-id header of each record.
func eventIDs(t *testing.T, recs []*kgo.Record) []string {
	t.Helper()
	out := make([]string, len(recs))
	for i, r := range recs {
		for _, h := range r.Headers {
			if h.Key == kafkadest.HeaderEventID {
				out[i] = string(h.Value)
			}
		}
		if out[i] == "" {
			t.Fatalf("record without %s", kafkadest.HeaderEventID)
		}
	}
	return out
}

// checkExactlyOnce verifies that recs hold every event exactly once, in
// order per key.
func checkExactlyOnce(t *testing.T, recs []*kgo.Record, evs []*event.Event) {
	t.Helper()
	ids := eventIDs(t, recs)
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	for _, ev := range evs {
		if count[ev.ID] != 1 {
			t.Errorf("event %s written %d times", ev.ID, count[ev.ID])
		}
	}
	if len(ids) != len(evs) {
		t.Errorf("%d records, want %d", len(ids), len(evs))
	}
	// Records of a key are in one partition; readAll returns partitions in
	// order, so per key the order is the topic's.
	got := make([]request, len(recs))
	for i, r := range recs {
		got[i] = request{id: ids[i], key: string(r.Key)}
	}
	checkOrder(t, got, evs)
}

// A Kafka destination on the deliverer's own cluster gets every event
// exactly once (read_committed), in order per key, with the offsets
// committed in the same transactions.
func TestKafkaDestinationExactlyOnce(t *testing.T) {
	e := newEnv(t)
	name := flowName()
	e.createTopics(name, 3)
	dest := "dest-" + name
	if err := e.kcfg.EnsureTopics(e.ctx, e.cl, kafka.TopicSpec{Name: dest, Partitions: 2, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	e.putFlow(kafkaFlow(name, dest, "envelope"))
	e.start()
	evs := events(name, 3000, 50)
	e.produce(name, evs...)
	var recs []*kgo.Record
	waitFor(t, 60*time.Second, "all events in the destination topic", func() bool {
		recs = e.readAll(dest)
		return len(recs) >= len(evs)
	})
	checkExactlyOnce(t, recs, evs)
	for _, r := range recs[:10] {
		ev, err := event.Decode(r.Value)
		if err != nil || string(r.Key) != ev.Key {
			t.Fatalf("envelope format: %v %v", ev, err)
		}
	}
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })
	if c := e.committedCounts(name); c != (stats.Counts{Delivered: int64(len(evs))}) {
		t.Errorf("counts committed in the transactions %+v, want %d delivered", c, len(evs))
	}
}

// The json format writes the payload with CloudEvents headers; a record
// the destination rejects (too large) is dead-lettered in the same
// transaction as the others' delivery.
func TestKafkaDestinationJSONAndDeadLetter(t *testing.T) {
	e := newEnv(t)
	name := flowName()
	e.createTopics(name, 1)
	dest := "dest-" + name
	if err := e.kcfg.EnsureTopics(e.ctx, e.cl, kafka.TopicSpec{Name: dest, Partitions: 1, Replication: 1,
		Configs: map[string]*string{"max.message.bytes": kadm.StringPtr("20000")}}); err != nil {
		t.Fatal(err)
	}
	e.putFlow(kafkaFlow(name, dest, "json"))
	e.start()
	evs := events(name, 50, 5)
	big := *evs[20]
	big.ID = "too-big"
	pad := make([]byte, 40000) // random, so that compression cannot shrink it
	rand.Read(pad)
	big.Data = []byte(fmt.Sprintf(`{"key":%q,"seq":99,"pad":%q}`, big.Key, base64.StdEncoding.EncodeToString(pad)))
	evs[20] = &big
	e.produce(name, evs...)
	var recs []*kgo.Record
	waitFor(t, 60*time.Second, "the other events in the destination topic", func() bool {
		recs = e.readAll(dest)
		return len(recs) >= 49
	})
	if len(recs) != 49 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		k, seq := parsePayload(r.Value)
		if k == "" || seq < 0 || h["ce_id"] == "" || h["ce_type"] != "test.event" || h["content-type"] != "application/json" || h["ce_specversion"] != "1.0" {
			t.Fatalf("json record %s headers %v", r.Value, h)
		}
	}
	var dl []*kgo.Record
	waitFor(t, 20*time.Second, "the dead letter", func() bool { dl = e.dlqRecords(name); return len(dl) == 1 })
	f := dlq.Parse(dl[0].Headers)
	if ev, err := event.Decode(dl[0].Value); err != nil || ev.ID != "too-big" || f.Status != "kafka" || f.Err == "" {
		t.Fatalf("dead letter %v %v %+v", ev, err, f)
	}
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })
	if c := e.committedCounts(name); c != (stats.Counts{Delivered: 49, DeadLettered: 1}) {
		t.Errorf("counts committed in the transactions %+v, want 49 delivered and 1 dead-lettered", c)
	}
}
