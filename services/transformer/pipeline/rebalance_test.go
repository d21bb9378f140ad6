package pipeline

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// counters sums what Counters reports.
type counters struct {
	mu     sync.Mutex
	counts map[string]stats.Counts
	errors int
}

func newCounters() *counters { return &counters{counts: map[string]stats.Counts{}} }

func (c *counters) Add(flow string, n stats.Counts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.counts[flow]
	cur.Add(n)
	c.counts[flow] = cur
}

func (c *counters) Error(string, string, string, string, time.Time) {
	c.mu.Lock()
	c.errors++
	c.mu.Unlock()
}

func (c *counters) get(flow string) stats.Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[flow]
}

// TestRebalance: two replicas share the work; one joins mid-stream, the
// other leaves; a read_committed reader sees every output exactly once,
// and the replicas' counts of committed work add up to the stream.
func TestRebalance(t *testing.T) {
	e := newEnv(t)
	src := e.topic(6)
	e.putSource(&samsav1.Source{Name: "clicks", Topic: src, Format: "envelope"})
	fl := flowName("rb")
	e.flowTopics(fl, 6)
	e.putFlow(&samsav1.Flow{Name: fl, Source: "clicks",
		Filter:    `event.data["n"] % 7 != 3`,
		Transform: "def transform(event):\n    d = event.data\n    if d[\"n\"] % 10 == 0:\n        return [d, {\"n\": d[\"n\"], \"second\": True}]\n    return d\n"})
	st := e.store()

	cntA, cntB := newCounters(), newCounters()
	cfg := e.config("a")
	cfg.MaxBatch = 500
	a := e.start(st, cfg, WithCounters(cntA))

	const total = 24000
	var produced atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i += 200 {
			e.produce(src, events("clicks", i, 200, ""))
			produced.Store(int64(i + 200))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	at := func(n int64) {
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d events produced", n), func() bool { return produced.Load() >= n })
	}
	at(total / 4)
	cfgB := e.config("b")
	cfgB.MaxBatch = 500
	e.start(st, cfgB, WithCounters(cntB))
	waitFor(t, time.Minute, "replica b to commit work", func() bool { return cntB.get(fl).Received > 0 })
	at(total * 3 / 5)
	a.stop(t) // leaves the group mid-stream
	<-done

	var want []string
	var expanded int64
	for i := 0; i < total; i++ {
		if i%7 == 3 {
			continue
		}
		id := fmt.Sprintf("e%07d", i)
		want = append(want, id)
		if i%10 == 0 {
			want = append(want, id+"#1")
			expanded++
		}
	}
	out := e.read("samsa.out."+fl, len(want), 2*time.Minute)
	checkExactlyOnce(t, "outputs", out, want)

	ca, cb := cntA.get(fl), cntB.get(fl)
	var sum stats.Counts
	sum.Add(ca)
	sum.Add(cb)
	t.Logf("replica a: %+v; replica b: %+v", ca, cb)
	if ca.Received == 0 || cb.Received == 0 {
		t.Fatalf("work not shared: a received %d, b %d", ca.Received, cb.Received)
	}
	filtered := int64(total / 7)
	if total%7 > 3 {
		filtered++
	}
	wantSum := stats.Counts{Received: total, FilteredOut: filtered, Transformed: int64(len(want)), Expanded: expanded}
	if sum != wantSum {
		t.Fatalf("committed counts add up to %+v, want %+v", sum, wantSum)
	}
}
