package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/dlq"
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
// abandoned and retried smaller; every event still comes out exactly once
// (here: dead-lettered, as each one runs into the script's time limit).
func TestSlowTransform(t *testing.T) {
	e := newEnv(t)
	src := e.topic(2)
	e.putSource(&samsav1.Source{Name: "s", Topic: src})
	fl := flowName("slow")
	e.flowTopics(fl, 2)
	e.putFlow(&samsav1.Flow{Name: fl, Source: "s", Transform: "def transform(event):\n    while True:\n        pass\n"})
	st := e.store()
	const total = 24
	e.produce(src, events("s", 0, total, ""))
	cfg := e.config("a")
	cfg.TransactionTimeout = 2 * time.Second // batches must end within 1s
	cfg.ScriptMaxSteps = 1 << 40
	cfg.ScriptTimeout = 250 * time.Millisecond
	e.start(st, cfg)
	var want []string
	for i := 0; i < total; i++ {
		want = append(want, fmt.Sprintf("e%07d", i))
	}
	dl := e.read("samsa.dlq."+fl, len(want), 2*time.Minute)
	checkExactlyOnce(t, "dead letters", dl, want)
	for _, r := range dl {
		if f := dlq.Parse(r.Headers); f.Stage != "transform" || !strings.Contains(f.Err, "time limit") {
			t.Fatalf("dead letter %+v, want the time limit", f)
		}
	}
}

// TestTxnRecordsHook: the hook's records are written in the transactions;
// when they cannot be written (their topic is missing), the flows go on
// without them.
func TestTxnRecordsHook(t *testing.T) {
	e := newEnv(t)
	src := e.topic(2)
	e.putSource(&samsav1.Source{Name: "s", Topic: src})
	good, bad := flowName("hook"), flowName("nohook")
	e.flowTopics(good, 2)
	e.flowTopics(bad, 2)
	e.putFlow(&samsav1.Flow{Name: good, Source: "s"})
	st := e.store()
	statsTopic := e.topic(1)
	missing := "missing-" + uniq()

	var calls atomic.Int64
	e.start(st, e.config("a"), WithTxnRecords(func() []*kgo.Record {
		n := calls.Add(1)
		return []*kgo.Record{{Topic: statsTopic, Value: []byte(strconv.FormatInt(n, 10))}}
	}))
	e.produce(src, events("s", 0, 100, ""))
	var want []string
	for i := 0; i < 100; i++ {
		want = append(want, fmt.Sprintf("e%07d", i))
	}
	checkExactlyOnce(t, "outputs with a working hook", e.read("samsa.out."+good, len(want), time.Minute), want)
	if hooked := e.read(statsTopic, 1, 30*time.Second); len(hooked) == 0 {
		t.Fatal("no hook record committed")
	}

	// A second source whose pipeline's hook writes to a missing topic.
	e2 := newEnv(t)
	src2 := e2.topic(2)
	e2.putSource(&samsav1.Source{Name: "s", Topic: src2})
	e2.putFlow(&samsav1.Flow{Name: bad, Source: "s"})
	st2 := e2.store()
	e2.start(st2, e2.config("b"), WithTxnRecords(func() []*kgo.Record {
		return []*kgo.Record{{Topic: missing, Value: []byte("x")}}
	}))
	e2.produce(src2, events("s", 0, 100, ""))
	start := time.Now()
	checkExactlyOnce(t, "outputs with a failing hook", e2.read("samsa.out."+bad, len(want), 2*time.Minute), want)
	t.Logf("outputs despite the failing hook after %s", time.Since(start))
}
