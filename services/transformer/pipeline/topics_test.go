package pipeline

import (
	"fmt"
	"testing"
	"time"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// TestMissingFlowTopics: a flow whose delivery and dead-letter topics do not
// exist gets them created (the fallback) and its events delivered.
func TestMissingFlowTopics(t *testing.T) {
	e := newEnv(t)
	src := e.topic(2)
	e.putSource(&samsav1.Source{Name: "s", Topic: src})
	fl := flowName("nt")
	e.putFlow(&samsav1.Flow{Name: fl, Source: "s"})
	st := e.store()
	e.produce(src, events("s", 0, 50, ""))
	start := time.Now()
	e.start(st, e.config("a"))
	var want []string
	for i := 0; i < 50; i++ {
		want = append(want, fmt.Sprintf("e%07d", i))
	}
	out := e.read("samsa.out."+fl, len(want), 2*time.Minute)
	t.Logf("outputs after %s", time.Since(start))
	checkExactlyOnce(t, "outputs", out, want)
	parts, err := e.adm.ListTopics(t.Context(), "samsa.dlq."+fl, "samsa.out."+fl)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"samsa.dlq." + fl, "samsa.out." + fl} {
		if d, ok := parts[name]; !ok || len(d.Partitions) != 2 {
			t.Fatalf("topic %s: %+v, want 2 partitions like the source", name, d)
		}
	}
}

// TestSlowTransform: batches that would outlast their transaction are
// abandoned and retried smaller; every event still comes out exactly once.
func TestSlowTransform(t *testing.T) {
	e := newEnv(t)
	src := e.topic(2)
	e.putSource(&samsav1.Source{Name: "s", Topic: src})
	fl := flowName("slow")
	e.flowTopics(fl, 2)
	e.putFlow(&samsav1.Flow{Name: fl, Source: "s", Transform: `
def transform(event):
    x = 0
    for i in range(30000):
        x += i
    return {"n": event.data["n"], "x": x}
`})
	st := e.store()
	const total = 400
	e.produce(src, events("s", 0, total, ""))
	cfg := e.config("a")
	cfg.TransactionTimeout = 2 * time.Second
	cfg.ScriptMaxSteps = 10_000_000
	cfg.ScriptTimeout = time.Second
	r := e.start(st, cfg)
	var want []string
	for i := 0; i < total; i++ {
		want = append(want, fmt.Sprintf("e%07d", i))
	}
	out := e.read("samsa.out."+fl, len(want), 2*time.Minute)
	checkExactlyOnce(t, "outputs", out, want)
	if r.p.batchMax >= cfg.MaxBatch {
		t.Logf("batches were never cut (max %d): the transform was faster than expected", r.p.batchMax)
	}
}
