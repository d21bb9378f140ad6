package delivery

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/event"
)

// pauses records what a budget paused.
type pauses map[string]bool

func (p pauses) PauseFetchPartitions(tps map[string][]int32) map[string][]int32 {
	for t, ps := range tps {
		for _, id := range ps {
			p[fmt.Sprintf("%s/%d", t, id)] = true
		}
	}
	return nil
}

func (p pauses) ResumeFetchPartitions(tps map[string][]int32) {
	for t, ps := range tps {
		for _, id := range ps {
			delete(p, fmt.Sprintf("%s/%d", t, id))
		}
	}
}

// The budget's decisions, step by step: reservations, the shared pool,
// the low water mark, the per-partition count, and what releasing a
// partition gives back.
func TestMemBudget(t *testing.T) {
	paused := pauses{}
	b := &memBudget{fetch: paused, limit: 1000, maxEvents: 10}
	a := b.register("a", 0)
	c := b.register("c", 0) // reserve 250 each, pool 500
	type step struct {
		what   string
		mp     *memPart
		events int
		bytes  int64
		want   string // the paused partitions after the step
	}
	for _, s := range []step{
		{"a within its reservation and the pool", a, 1, 600, ""},
		{"a uses up the pool", a, 1, 200, "a/0"},
		{"c keeps its reservation", c, 1, 250, "a/0"},
		{"c over its reservation with the pool used up", c, 1, 50, "a/0 c/0"},
		{"above the low water mark, a stays paused", a, -1, -200, "a/0 c/0"},
		{"below it, everything resumes", a, -1, -100, ""},
		{"c at the count", c, 8, 0, "c/0"},
		{"c above half the count stays paused", c, -4, 0, "c/0"},
		{"c at half the count resumes", c, -1, 0, ""},
	} {
		b.add(s.mp, s.events, s.bytes)
		got := ""
		for _, tp := range []string{"a/0", "c/0"} {
			if paused[tp] {
				got += " " + tp
			}
		}
		if got != "" {
			got = got[1:]
		}
		if got != s.want {
			t.Fatalf("%s: paused %q, want %q", s.what, got, s.want)
		}
	}
	if total, peak := b.usage(); total != 800 || peak != 1100 {
		t.Fatalf("usage %d, peak %d; want 800 and 1100", total, peak)
	}
	b.add(a, 0, 500) // a at 1000: paused
	if !paused["a/0"] {
		t.Fatal("a not paused over the pool")
	}
	// Releasing c gives back what it held and its reservation: a alone
	// has 500 reserved and a pool of 500, and resumes.
	b.unregister(c)
	if total, _ := b.usage(); total != 1000 || b.reserve != 500 || b.over != 500 {
		t.Fatalf("after unregister: total %d, reserve %d, over %d", total, b.reserve, b.over)
	}
	b.add(a, 0, -200)
	if paused["a/0"] {
		t.Fatal("a still paused with the pool below the low water mark")
	}
}

// The byte budget holds on a real broker: while the destination is down,
// a backlog of large events stops being fetched once the buffered events
// hold --max-buffered-bytes, overshooting by at most the one fetch that
// crossed it (the counts never come into play); once the destination is
// back, everything arrives in order, and the accounting returns to zero.
func TestMemoryBudget(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	rcv.stop()
	name := flowName()
	e.createTopics(name, 1)
	e.putFlow(httpFlow(name, rcv.url()))
	const budget = 2 << 20
	d, _ := e.startConfig(func(c *Config) { c.InstanceID, c.MaxBufferedBytes = "budget", budget })

	// 400 events of 16 KiB that do not compress (about 13 MB as the
	// budget counts them, six times the budget), written 4 to a record
	// batch: a fetch returns one batch, as the partition's fetch limit
	// is below a batch's size.
	const n, perBatch = 400, 4
	evs := events(name, n, 8)
	blob := make([]byte, 12<<10)
	for _, ev := range evs {
		_, _ = rand.Read(blob)
		ev.Data = fmt.Appendf(nil, `{"blob":%q,%s`, base64.StdEncoding.EncodeToString(blob), ev.Data[1:])
	}
	for i := 0; i < n; i += perBatch {
		e.produce(name, evs[i:i+perBatch]...)
	}
	v, err := event.Encode(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	one := &item{key: []byte(evs[0].Key), value: v, ev: evs[0]}
	bound := int64(budget + perBatch*itemSize(one))

	paused := func() bool {
		d.mem.mu.Lock()
		defer d.mem.mu.Unlock()
		for mp := range d.mem.parts {
			if mp.memPaused {
				return true
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "fetching paused for memory", paused)
	// While the destination stays down, nothing more comes in.
	tick := time.NewTicker(20 * time.Millisecond)
	for end := time.Now().Add(time.Second); time.Now().Before(end); <-tick.C {
		if _, peak := d.mem.usage(); peak > bound {
			t.Fatalf("%d bytes buffered with a budget of %d (bound %d)", peak, budget, bound)
		}
	}
	tick.Stop()
	s, _ := flowStats(d, name)
	t.Logf("destination down: %d events, %d bytes buffered (budget %d, %d bytes an event)", s.Buffered, s.BufferedBytes, budget, itemSize(one))
	if s.Buffered >= n/2 {
		t.Fatalf("%d of %d events buffered", s.Buffered, n)
	}

	rcv.restart()
	waitFor(t, 60*time.Second, "everything delivered", func() bool { return rcv.distinctDelivered() == n })
	checkOrder(t, rcv.delivered(), evs)
	waitFor(t, 10*time.Second, "the buffer accounted empty", func() bool {
		total, _ := d.mem.usage()
		s, _ := flowStats(d, name)
		return total == 0 && s.BufferedBytes == 0 && s.Buffered == 0
	})
	if _, peak := d.mem.usage(); peak > bound || peak < budget {
		t.Fatalf("peak %d bytes buffered; want between the budget %d and %d", peak, budget, bound)
	}
}
