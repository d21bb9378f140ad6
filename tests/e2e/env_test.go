// Package e2e runs Samsa end to end: the four services as separate
// processes on a real Kafka broker, driven through the REST front door and
// checked at an HTTP destination, the dead-letter topics and the status API.
//
// The default run (go test ./...) keeps a short but real subset; the long
// scenarios run with SAMSA_FAULTS=1 (make test-faults). Every test has a
// broker of its own; TestFaults runs first, alone, and the others, mostly
// waiting, run in parallel after it.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.RunMain(m)) }

// faults reports whether the long fault scenarios run.
func faults() bool { return os.Getenv("SAMSA_FAULTS") == "1" }

const apiKey = "sk_e2e_load_generator_key"

// partitions of every source topic (and so of the delivery topics).
const partitions = 3

// drained says whether a consumer lag from the status API means "caught up".
// The delivery topics are written in transactions; the deliverer commits
// past the transaction markers, so a caught-up flow shows no lag at all.
func drained(lag harness.Int) bool { return lag == 0 }

// passThrough returns the payload, and fails on poison events (they must
// end in the DLQ with the error).
const passThrough = `def transform(event):
    if event.data.get("poison"):
        fail("poison event")
    return event.data
`

// scenario is one source, one HTTP flow and its sink on a cluster.
type scenario struct {
	t       *testing.T
	c       *harness.Cluster
	ctl     *harness.Control
	name    string // flow name
	source  string
	sink    *harness.Sink
	flowDef map[string]any
}

// newScenario creates a source and a pass-through flow named name that
// delivers to a new sink. mod may change the flow before it is stored.
func newScenario(t *testing.T, c *harness.Cluster, name string, mod func(f map[string]any)) *scenario {
	t.Helper()
	must(t, c.Control().PutSource(name, map[string]any{
		"partitions": partitions,
		"auth":       map[string]any{"apiKeys": []any{map[string]any{"name": "load", "key": apiKey}}},
	}))
	// Events already in every partition when the first flow starts: see
	// warmups.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, harness.Warmup(ctx, c.ReceiverURL(), name, apiKey, name, warmups))
	s := newFlow(t, c, name, name, mod)
	if err := s.sink.WaitOK(ctx, warmups, time.Minute); err != nil {
		t.Fatalf("warm-up events: %v", err)
	}
	return s
}

// warmups is the number of warm-up events sent to a source before its first
// flow is created. The transformer starts a source's first flow at the
// first record stamped after the flow's creation minus --start-lookback,
// found with a by-time offset lookup (falling back to the end offset, listed
// first, for a partition without such a record). Warm-up records make the
// lookup find a record in every partition, so that the scenarios test their
// own fault; TestFirstEventsOfNewFlow tests the start without them.
const warmups = 30

// newFlow creates a pass-through flow name of source that delivers to a new
// sink.
func newFlow(t *testing.T, c *harness.Cluster, source, name string, mod func(f map[string]any)) *scenario {
	t.Helper()
	s := &scenario{t: t, c: c, ctl: c.Control(), name: name, source: source, sink: harness.NewSink(t)}
	s.flowDef = map[string]any{
		"source":    source,
		"transform": passThrough,
		"destination": map[string]any{"http": map[string]any{
			"url": s.sink.URL(), "allowPrivateNetwork": true,
		}},
		"delivery": map[string]any{
			"retry":          map[string]any{"initialBackoff": "100ms", "maxBackoff": "1s", "maxElapsed": "1h"},
			"maxInFlight":    16,
			"timeout":        "10s",
			"circuitBreaker": map[string]any{"failureThreshold": 5, "openDuration": "1s"},
			"rampUp":         "0s",
		},
	}
	if mod != nil {
		mod(s.flowDef)
	}
	must(t, s.ctl.PutFlow(name, s.flowDef))
	return s
}

// load returns a load generator for the scenario's source.
func (s *scenario) load(keys, perKey, batch int, pace time.Duration) *harness.Load {
	return &harness.Load{URL: s.c.ReceiverURL(), Source: s.source, APIKey: apiKey,
		Prefix: fmt.Sprintf("%s-%d", s.name, time.Now().UnixNano()%1e6),
		Keys:   keys, PerKey: perKey, Batch: batch, Pace: pace}
}

// runLoad runs l in the background; wait returns its error.
func runLoad(ctx context.Context, l *harness.Load) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() error { return <-done }
}

// finish waits until the sink has every expected event and the status shows
// nothing in flight, then runs the checker and asserts on its result.
func (s *scenario) finish(l *harness.Load, wantDelivered, wantDLQ func(harness.Sent) bool, timeout time.Duration) harness.Result {
	t := s.t
	t.Helper()
	if wantDelivered == nil {
		wantDelivered = func(e harness.Sent) bool { return !e.Poison }
	}
	want := 0
	for _, e := range l.Sent() {
		if e.Acked && wantDelivered(e) {
			want++
		}
	}
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	if err := s.sink.WaitOK(ctx, want, timeout); err != nil {
		t.Logf("drain: %v", err)
	}
	// The deliveries may include duplicates: wait until every expected
	// event arrived at least once, within the same deadline.
	for time.Now().Before(deadline) {
		r := harness.Check{Sent: l.Sent(), Deliveries: s.sink.Deliveries(), WantDelivered: wantDelivered}.Run()
		if r.Missing == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling the sink
	}
	// Reports arrive every two seconds, and the delivered counts follow
	// the deliverer's commits within a second or two: a dozen is plenty.
	st := s.waitStatus(12*time.Second, func(st *harness.Status) bool {
		return st.Counts.InFlight == 0 && st.AddsUp() && drained(st.DeliveryLag) && drained(st.TransformLag)
	})
	dlqIDs, err := harness.ReadIDs(ctx, s.c.Brokers(), kafka.DLQTopic(s.name))
	if err != nil {
		t.Errorf("read DLQ: %v", err)
	}
	t.Logf("status: %s", st)
	if st != nil && (!drained(st.DeliveryLag) || !drained(st.TransformLag)) {
		t.Errorf("%s: consumer lag after the drain: %s", s.name, st)
	}
	return harness.Check{Scenario: s.name, Sent: l.Sent(), Deliveries: s.sink.Deliveries(),
		WantDelivered: wantDelivered, WantDLQ: wantDLQ, DLQ: dlqIDs, Status: st}.Run().Assert(t)
}

// waitStatus polls the flow's status until ok holds or timeout passes, and
// returns the last status read.
func (s *scenario) waitStatus(timeout time.Duration, ok func(*harness.Status) bool) *harness.Status {
	return waitStatus(s.t, s.ctl, s.name, timeout, ok)
}

func waitStatus(t *testing.T, ctl *harness.Control, flow string, timeout time.Duration, ok func(*harness.Status) bool) *harness.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *harness.Status
	for {
		st, err := ctl.Status(flow)
		if err == nil {
			last = st
			if ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Logf("status %s: %v", flow, err)
			}
			return last
		}
		time.Sleep(250 * time.Millisecond) // polling the status API
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond) // polling
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
