package delivery

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// A destination that is down for a while and then comes back receives
// every event, in order per key, and the dead-letter topic stays empty.
// Every request's signature verifies with the test's own implementation
// of Standard Webhooks.
func TestDownThenUp(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	rcv.stop() // down: connections refused
	name := flowName()
	e.createTopics(name, 3)
	e.putFlow(httpFlow(name, rcv.url()))
	d := e.start()

	evs := events(name, 300, 17)
	e.produce(name, evs[:150]...)
	// While down, attempts fail and the breaker opens; nothing is lost.
	waitFor(t, 30*time.Second, "the breaker to open", func() bool {
		s, ok := flowStats(d, name)
		return ok && s.Breaker == "open"
	})
	e.produce(name, evs[150:]...)
	rcv.restart()
	waitFor(t, 60*time.Second, "every event delivered", func() bool { return rcv.distinctDelivered() == len(evs) })

	got := rcv.delivered()
	checkOrder(t, got, evs)
	for _, q := range got {
		if !q.signature {
			t.Fatalf("event %s: signature does not verify", q.id)
		}
	}
	if dl := e.dlqRecords(name); len(dl) != 0 {
		t.Fatalf("%d dead letters, want none", len(dl))
	}
	// Everything is committed eventually.
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool {
		return e.groupLag(name) == 0
	})
	fl := map[string]string{"flow": name}
	if v := e.metric("samsa_deliverer_delivered_total", fl); v != float64(len(evs)) {
		t.Errorf("delivered_total %v", v)
	}
	if v := e.metric("samsa_deliverer_failures_total", map[string]string{"flow": name, "class": "retryable", "reason": "connection"}); v < 1 {
		t.Errorf("connection failures %v", v)
	}
	if a := e.metric("samsa_deliverer_attempts_total", fl); a < float64(len(evs))+1 {
		t.Errorf("attempts_total %v", a)
	}
	if v := e.metric("samsa_deliverer_delivery_latency_seconds", fl); v != float64(len(evs)) {
		t.Errorf("latency observations %v", v)
	}
	// The gauges are sampled periodically: wait for the next sample.
	for _, g := range []string{"samsa_deliverer_breaker_state", "samsa_deliverer_paused", "samsa_deliverer_lag"} {
		waitFor(t, 10*time.Second, g+" to be 0", func() bool { return e.metric(g, fl) == 0 })
	}
}

// A destination answering 500 for one key does not hold up the other
// keys, even on the same partition; that key's events are delivered in
// order once the destination accepts them.
func TestFailingKeyDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	var healed atomicBool
	rcv.setAnswer(func(r *http.Request, body []byte) (int, http.Header) {
		if k, _ := parsePayload(body); k == "k0" && !healed.Load() {
			return 500, nil
		}
		return 200, nil
	})
	name := flowName()
	e.createTopics(name, 1) // one partition: the failing key shares it with all others
	f := httpFlow(name, rcv.url())
	f.Delivery.MaxInFlight = 4
	f.Delivery.CircuitBreaker.FailureThreshold = -1
	f.Delivery.Retry.MaxBackoff = "100ms"
	e.putFlow(f)
	d := e.start()

	evs := events(name, 400, 10)
	e.produce(name, evs...)
	waitFor(t, 30*time.Second, "every other key's events delivered", func() bool { return rcv.distinctDelivered() == len(evs)-40 })
	for _, q := range rcv.delivered() {
		if q.key == "k0" {
			t.Fatalf("k0 delivered while failing")
		}
	}
	// k0's first event keeps being retried; its later events wait.
	retried := 0
	for _, q := range rcv.all() {
		if q.key == "k0" {
			retried++
			if q.seq != 0 {
				t.Fatalf("k0 event %d attempted before event 0 succeeded", q.seq)
			}
		}
	}
	if retried < 2 {
		t.Fatalf("k0 attempted %d times, want retries", retried)
	}
	// The partition cannot be committed past k0's first event.
	if lag := e.groupLag(name); lag < 40 {
		t.Fatalf("group lag %d: committed past the failing event", lag)
	}
	healed.Store(true)
	waitFor(t, 30*time.Second, "k0 delivered", func() bool { return rcv.distinctDelivered() == len(evs) })
	checkOrder(t, rcv.delivered(), evs)
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })
	if s, ok := flowStats(d, name); ok && (s.Retries == 0 || s.Delivered != int64(len(evs))) {
		t.Fatalf("stats %+v", s)
	}
}

// 429 with Retry-After: 2 is honoured: the next attempt comes two seconds
// later, not after the (much shorter) backoff.
func TestRetryAfterHonoured(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	var throttled atomicBool
	rcv.setAnswer(func(r *http.Request, body []byte) (int, http.Header) {
		if throttled.CompareAndSwap(false, true) {
			return 429, http.Header{"Retry-After": {"2"}}
		}
		return 200, nil
	})
	name := flowName()
	e.createTopics(name, 1)
	f := httpFlow(name, rcv.url())
	f.Delivery.Retry.MaxBackoff = "5s"
	e.putFlow(f)
	e.start()
	evs := events(name, 1, 1)
	e.produce(name, evs...)
	waitFor(t, 20*time.Second, "delivery", func() bool { return rcv.distinctDelivered() == 1 })
	all := rcv.all()
	if len(all) != 2 || all[0].status != 429 || all[1].status != 200 {
		t.Fatalf("requests %+v, want a 429 then a 200", all)
	}
	if gap := all[1].at.Sub(all[0].at); gap < 2*time.Second || gap > 3500*time.Millisecond {
		t.Fatalf("retried after %v, want about 2s (Retry-After: 2)", gap)
	}
	if all[0].id != all[1].id {
		t.Fatalf("the retry has another webhook-id: %s != %s", all[1].id, all[0].id)
	}
}

// A 400 goes straight to the dead-letter topic, with the status, the
// response excerpt, the attempt count and times; the others are delivered.
// Once the destination accepts it, a redrive delivers it.
func TestBadRequestGoesToDLQThenRedrive(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	var accept atomicBool
	rcv.setAnswer(func(r *http.Request, body []byte) (int, http.Header) {
		if r.Header.Get("webhook-id") == "bad-1" && !accept.Load() {
			return 400, nil
		}
		return 200, nil
	})
	name := flowName()
	e.createTopics(name, 2)
	e.putFlow(httpFlow(name, rcv.url()))
	e.start()
	evs := events(name, 20, 4)
	evs[7].ID = "bad-1"
	e.produce(name, evs...)
	waitFor(t, 20*time.Second, "the others delivered", func() bool { return rcv.distinctDelivered() == 19 })
	var dl []*kgo.Record
	waitFor(t, 10*time.Second, "a dead letter", func() bool { dl = e.dlqRecords(name); return len(dl) == 1 })
	f := dlq.Parse(dl[0].Headers)
	ev, err := event.Decode(dl[0].Value)
	if err != nil || ev.ID != "bad-1" {
		t.Fatalf("dead letter value: %v %v", ev, err)
	}
	if f.Status != "400" || f.Attempts != 1 || f.Stage != "deliver" || f.Flow != name ||
		!strings.Contains(f.Response, "no thanks (400)") || f.FirstAttempt.IsZero() || f.Time.Before(f.FirstAttempt) ||
		f.SourceTopic != kafka.DeliveryTopic(name) {
		t.Fatalf("dead letter headers %+v", f)
	}
	if string(dl[0].Key) != evs[7].Key {
		t.Fatalf("dead letter key %q", dl[0].Key)
	}
	// 400 is attempted once only.
	n := 0
	for _, q := range rcv.all() {
		if q.id == "bad-1" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bad-1 attempted %d times", n)
	}
	waitFor(t, 10*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })

	accept.Store(true)
	var last dlq.Progress
	if err := dlq.Redrive(e.ctx, e.cl, name, dlq.RedriveOptions{Filter: `event.id == "bad-1"`}, func(p dlq.Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if !last.Done || last.Redriven != 1 {
		t.Fatalf("redrive progress %+v", last)
	}
	waitFor(t, 20*time.Second, "the redriven event delivered", func() bool { return rcv.distinctDelivered() == 20 })
	if depth, err := dlq.Depth(e.ctx, e.cl, name); err != nil || depth != 0 {
		t.Fatalf("dead-letter depth %d, %v after redrive", depth, err)
	}
}

// Pause holds delivery within a second and loses nothing; resume delivers
// everything.
func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	name := flowName()
	e.createTopics(name, 2)
	f := httpFlow(name, rcv.url())
	e.putFlow(f)
	d := e.start()
	first := events(name+"a", 50, 5)
	e.produce(name, first...)
	waitFor(t, 20*time.Second, "first batch delivered", func() bool { return rcv.distinctDelivered() == 50 })

	f.Paused = true
	e.putFlow(f)
	pausedAt := time.Now()
	waitFor(t, time.Second, "pause to take effect", func() bool {
		s, ok := flowStats(d, name)
		return ok && s.Held && s.HoldReason == "paused"
	})
	if time.Since(pausedAt) > time.Second {
		t.Fatalf("pause took %v", time.Since(pausedAt))
	}
	second := events(name+"b", 50, 5)
	e.produce(name, second...)
	// Nothing is delivered while paused (give it a fair chance to go wrong).
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := rcv.distinctDelivered(); n != 50 {
			t.Fatalf("%d events delivered while paused", n-50)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Paused = false
	e.putFlow(f)
	waitFor(t, 20*time.Second, "everything delivered after resume", func() bool { return rcv.distinctDelivered() == 100 })
	checkOrder(t, rcv.delivered(), append(first, second...))
}

// A maintenance window that starts during the test holds delivery, and
// delivery resumes when it ends (the test moves the clock).
func TestMaintenanceWindow(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	name := flowName()
	e.createTopics(name, 2)
	f := httpFlow(name, rcv.url())
	// 03:00 to 04:00 Berlin time, every day; in March that is 02:00 UTC.
	f.Delivery.MaintenanceWindows = []*samsav1.MaintenanceWindow{{Name: "nightly", Cron: "0 3 * * *", Duration: "1h", TimeZone: "Europe/Berlin"}}
	f.Delivery.RampUp = "2s"
	e.putFlow(f)
	clock := &testClock{now: time.Date(2026, 3, 2, 1, 59, 0, 0, time.UTC)}
	d := e.start(WithClock(clock))

	before := events(name+"a", 20, 3)
	e.produce(name, before...)
	waitFor(t, 20*time.Second, "delivery before the window", func() bool { return rcv.distinctDelivered() == 20 })

	clock.Set(time.Date(2026, 3, 2, 2, 0, 5, 0, time.UTC))
	waitFor(t, 2*time.Second, "the window to hold delivery", func() bool {
		s, ok := flowStats(d, name)
		return ok && s.Held && s.HoldReason == "maintenance window nightly"
	})
	during := events(name+"b", 30, 3)
	e.produce(name, during...)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := rcv.distinctDelivered(); n != 20 {
			t.Fatalf("%d events delivered during the maintenance window", n-20)
		}
		time.Sleep(50 * time.Millisecond)
	}
	clock.Set(time.Date(2026, 3, 2, 3, 0, 1, 0, time.UTC))
	waitFor(t, 20*time.Second, "delivery after the window", func() bool { return rcv.distinctDelivered() == 50 })
	checkOrder(t, rcv.delivered(), append(before, during...))
}

// While the breaker is open, events wait: only the half-open probes reach
// the destination, and nothing is dead-lettered even though each event
// may be attempted only twice.
func TestBreakerHoldsEvents(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	var healed atomicBool
	rcv.setAnswer(func(r *http.Request, body []byte) (int, http.Header) {
		if healed.Load() {
			return 200, nil
		}
		return 503, nil
	})
	name := flowName()
	e.createTopics(name, 1)
	f := httpFlow(name, rcv.url())
	f.Delivery.CircuitBreaker = &samsav1.CircuitBreaker{FailureThreshold: 3, OpenDuration: "700ms"}
	f.Delivery.Retry.MaxAttempts = 2
	e.putFlow(f)
	d := e.start()
	evs := events(name, 30, 6)
	e.produce(name, evs...)
	waitFor(t, 10*time.Second, "the breaker to open", func() bool {
		s, ok := flowStats(d, name)
		return ok && s.Breaker == "open"
	})
	before := len(rcv.all())
	time.Sleep(2 * time.Second) // an interval to count requests in, not a wait for a condition
	if probes := len(rcv.all()) - before; probes > 4 {
		t.Fatalf("%d requests in 2s while the breaker was open, want only probes (about 3)", probes)
	}
	healed.Store(true)
	waitFor(t, 20*time.Second, "everything delivered", func() bool { return rcv.distinctDelivered() == len(evs) })
	checkOrder(t, rcv.delivered(), evs)
	if dl := e.dlqRecords(name); len(dl) != 0 {
		t.Fatalf("%d dead letters while the destination was down", len(dl))
	}
}

// The token bucket paces deliveries; max_in_flight caps concurrent
// requests. Two flows in one deliverer.
func TestRateLimitAndInFlightCap(t *testing.T) {
	e := newEnv(t)
	paced, capped := newReceiver(t), newReceiver(t)
	var cur, peak atomic.Int32
	capped.setAnswer(func(r *http.Request, body []byte) (int, http.Header) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond) // a slow destination
		cur.Add(-1)
		return 200, nil
	})
	a, b := flowName(), flowName()
	e.createTopics(a, 2)
	e.createTopics(b, 2)
	fa := httpFlow(a, paced.url())
	fa.Delivery.RateLimit = &samsav1.RateLimit{PerSecond: 40, Burst: 1}
	fb := httpFlow(b, capped.url())
	fb.Delivery.MaxInFlight = 2
	e.putFlow(fa)
	e.putFlow(fb)
	e.start()
	e.produce(a, events(a, 40, 40)...)
	e.produce(b, events(b, 20, 20)...)
	waitFor(t, 20*time.Second, "both flows delivered", func() bool {
		return paced.distinctDelivered() == 40 && capped.distinctDelivered() == 20
	})
	got := paced.delivered()
	if span := got[len(got)-1].at.Sub(got[0].at); span < 900*time.Millisecond {
		t.Errorf("40 events at 40/s delivered within %v", span)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

// Without allowPrivateNetwork, a loopback destination is refused at
// dial time and the event goes to the dead-letter topic with the reason.
func TestPrivateDestinationRefused(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	name := flowName()
	e.createTopics(name, 1)
	f := httpFlow(name, rcv.url())
	f.GetDestination().GetHttp().AllowPrivateNetwork = false
	e.putFlow(f)
	e.start()
	e.produce(name, events(name, 2, 2)...)
	var dl []*kgo.Record
	waitFor(t, 20*time.Second, "dead letters", func() bool { dl = e.dlqRecords(name); return len(dl) == 2 })
	for _, r := range dl {
		f := dlq.Parse(r.Headers)
		if f.Status != "refused" || !strings.Contains(f.Err, "loopback") || !strings.Contains(f.Err, "allowPrivateNetwork") {
			t.Fatalf("dead letter %+v", f)
		}
	}
	if n := len(rcv.all()); n != 0 {
		t.Fatalf("the refused destination got %d requests", n)
	}
}

// Replicas joining and leaving: partitions move, nothing is lost, the
// first delivery of each event keeps the per-key order, and every offset
// ends committed.
func TestRebalanceLosesNothing(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	rcv.setAnswer(func(r *http.Request, body []byte) (int, http.Header) {
		time.Sleep(time.Millisecond) // keep deliveries in flight during rebalances
		return 200, nil
	})
	name := flowName()
	e.createTopics(name, 6)
	f := httpFlow(name, rcv.url())
	f.Delivery.MaxInFlight = 8
	e.putFlow(f)
	_, stop1 := e.startStoppable()
	evs := events(name, 3000, 60)
	e.produce(name, evs...)
	waitFor(t, 30*time.Second, "deliveries under way", func() bool { return rcv.distinctDelivered() >= 300 })
	d2, _ := e.startStoppable()
	waitFor(t, 30*time.Second, "the second replica to get partitions", func() bool {
		s, ok := flowStats(d2, name)
		return ok && s.Partitions > 0
	})
	stop1()
	waitFor(t, 60*time.Second, "every event delivered", func() bool { return rcv.distinctDelivered() == len(evs) })
	checkOrder(t, rcv.delivered(), evs)
	waitFor(t, 20*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })
	// Each partition's counts moved with its offset between the replicas.
	if c := e.committedCounts(name); c != (stats.Counts{Delivered: int64(len(evs))}) {
		t.Errorf("committed counts %+v, want %d delivered", c, len(evs))
	}
	t.Logf("%d deliveries for %d events", len(rcv.delivered()), len(evs))
}

// Deleting a flow stops its delivery and forgets it; creating it again
// resumes from the committed offsets, so the events written meanwhile are
// delivered then.
func TestFlowDeletedAndRecreated(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	name := flowName()
	e.createTopics(name, 2)
	f := httpFlow(name, rcv.url())
	e.putFlow(f)
	d := e.start()
	first := events(name+"a", 20, 4)
	e.produce(name, first...)
	waitFor(t, 20*time.Second, "first events delivered", func() bool { return rcv.distinctDelivered() == 20 })
	waitFor(t, 10*time.Second, "offsets committed", func() bool { return e.groupLag(name) == 0 })

	e.deleteFlow(name)
	waitFor(t, 30*time.Second, "the flow forgotten", func() bool {
		_, ok := flowStats(d, name)
		return !ok
	})
	second := events(name+"b", 20, 4)
	e.produce(name, second...)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := rcv.distinctDelivered(); n != 20 {
			t.Fatalf("%d events of a deleted flow delivered", n-20)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.putFlow(f)
	waitFor(t, 30*time.Second, "delivery after re-creation", func() bool { return rcv.distinctDelivered() == 40 })
	checkOrder(t, rcv.delivered(), append(first, second...))
}

// While a destination is down, the events held in memory stay bounded:
// fetching pauses at --max-buffered-per-partition (plus what one fetch
// returned), and everything arrives once the destination is back.
func TestBufferBounded(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t)
	rcv.stop()
	name := flowName()
	e.createTopics(name, 1)
	e.putFlow(httpFlow(name, rcv.url()))
	d, _ := e.startConfig(func(c *Config) {
		c.InstanceID, c.MaxBufferedPerPartition, c.MaxBufferedPerFlow = "bounded", 100, 100
	})
	// About 10 MB, in batches of 500 events: a fetch returns at most
	// about 1 MiB of a partition (plus a first batch whole, however
	// large), so pausing must keep most of it in Kafka. One produce call
	// could make a single 5 MB batch, which no fetch limit splits.
	const n = 20000
	evs := events(name, n, 500)
	for i := 0; i < n; i += 500 {
		e.produce(name, evs[i:i+500]...)
	}
	buffered := func() int {
		s, _ := flowStats(d, name)
		return s.Buffered
	}
	waitFor(t, 20*time.Second, "events buffered", func() bool { return buffered() >= 100 })
	peak := 0
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		peak = max(peak, buffered())
	}
	if peak >= n/2 {
		t.Fatalf("%d of %d events held in memory with a limit of 100: fetching did not pause", peak, n)
	}
	t.Logf("at most %d events held while the destination was down", peak)
	rcv.restart()
	waitFor(t, 60*time.Second, "everything delivered", func() bool { return rcv.distinctDelivered() == n })
}
