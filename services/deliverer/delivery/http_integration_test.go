package delivery

import (
	"net/http"
	"testing"
	"time"
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
		for _, s := range d.Stats() {
			if s.Flow == name && s.Breaker == "open" {
				return true
			}
		}
		return false
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
	for _, s := range d.Stats() {
		if s.Flow == name && (s.Retries == 0 || s.Delivered != int64(len(evs))) {
			t.Fatalf("stats %+v", s)
		}
	}
}
