package pipeline

import (
	"fmt"
	"testing"
	"time"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t)
	src := e.topic(3)
	e.putSource(&samsav1.Source{Name: "orders", Topic: src, Format: "envelope"})
	fl := flowName("smoke")
	e.flowTopics(fl, 3)
	e.putFlow(&samsav1.Flow{Name: fl, Source: "orders",
		Filter:    `event.data["kind"] == "order"`,
		Transform: "def transform(event):\n    d = event.data\n    return {\"n\": d[\"n\"], \"double\": d[\"n\"] * 2}\n"})
	st := e.store()
	e.produce(src, events("orders", 0, 3000, ""))
	start := time.Now()
	r := e.start(st, e.config("a"))
	var want []string
	for i := 0; i < 3000; i++ {
		if i%3 != 0 {
			want = append(want, fmt.Sprintf("e%07d", i))
		}
	}
	out := e.read("samsa.out."+fl, len(want), time.Minute)
	t.Logf("read %d in %s", len(out), time.Since(start))
	checkExactlyOnce(t, "outputs", out, want)
	r.stop(t)

	// Committed offsets carry the flows' position in samsa.flows.
	offs, err := e.adm.FetchOffsets(t.Context(), e.group)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ps := range offs[src] {
		n++
		if got := parseMetadata(&ps.Metadata); got <= 0 || got > st.Snapshot().Offset {
			t.Fatalf("partition %d: commit metadata %q", ps.Partition, ps.Metadata)
		}
	}
	if n != 3 {
		t.Fatalf("%d partitions committed, want 3", n)
	}
}
