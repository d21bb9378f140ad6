package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

// TestStatusTwoFlows is issue 7's acceptance test: the four services as
// separate processes on a real broker, 10,000 events through two flows (one
// with a filter), one destination stopped for a while. The status API's
// counts add up, the delivery lag rises while the destination is down and
// drains after, and the state goes degraded (or failing) and back to active.
// The other flow keeps delivering while the first one's destination is down.
func TestStatusTwoFlows(t *testing.T) {
	t.Parallel()
	c := harness.NewCluster(t)
	c.StartAll()
	all := newScenario(t, c, "orders", nil)
	evens := newFlow(t, c, "orders", "even-orders", func(f map[string]any) {
		f["filter"] = `event.data["seq"] % 2 == 0`
	})
	isEven := func(e harness.Sent) bool { return e.Seq%2 == 0 }

	warm, _ := all.sink.Counts()
	all.sink.Down()
	downAt := time.Now()
	l := all.load(20, 500, 50, 0) // 10,000 events
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 events acknowledged in %s", time.Since(downAt).Round(time.Millisecond))
	if got := l.Acked(); got != 10000 {
		t.Fatalf("acknowledged %d of 10000 events", got)
	}

	// The filtered flow delivers all of its events while the other flow's
	// destination is down: a dead destination holds up only its own flow.
	if err := evens.sink.WaitOK(ctx, 5000, time.Minute); err != nil {
		t.Errorf("flow even-orders while orders' destination is down: %v", err)
	}

	// While the destination is down: degraded or failing, and a delivery lag.
	st := all.waitStatus(45*time.Second, func(st *harness.Status) bool {
		return (st.State == "degraded" || st.State == "failing") && st.DeliveryLag > 0
	})
	t.Logf("destination down: %s", st)
	if st == nil || (st.State != "degraded" && st.State != "failing") {
		t.Errorf("state while the destination is down = %v, want degraded or failing", st)
	}
	if st == nil || st.DeliveryLag <= 0 {
		t.Errorf("delivery lag while the destination is down = %v, want > 0", st)
	}
	if st != nil && !st.AddsUp() {
		t.Errorf("counts do not add up while the destination is down: %s", st)
	}
	// Keep it down for a while: the lag stays, nothing is delivered.
	var maxLag harness.Int
	for time.Since(downAt) < 6*time.Second {
		if st, err := all.ctl.Status("orders"); err == nil {
			maxLag = max(maxLag, st.DeliveryLag)
			if !st.AddsUp() {
				t.Errorf("counts do not add up: %s", st)
			}
		}
		time.Sleep(500 * time.Millisecond) // sampling the lag
	}
	t.Logf("max delivery lag while down: %d", maxLag)
	if ok, _ := all.sink.Counts(); ok != warm {
		t.Errorf("a down destination got %d deliveries", ok-warm)
	}

	all.sink.Up()
	t.Logf("destination up after %s", time.Since(downAt).Round(time.Millisecond))
	upAt := time.Now()
	rAll := all.finish(l, nil, nil, 2*time.Minute)
	t.Logf("drained %s after the destination came up", time.Since(upAt).Round(time.Millisecond))
	rEven := evens.finish(l, isEven, nil, time.Minute)
	if rAll.Delivered != 10000 || rEven.Delivered != 5000 {
		t.Errorf("delivered %d and %d, want 10000 and 5000", rAll.Delivered, rEven.Delivered)
	}
	if st := waitStatus(t, evens.ctl, "even-orders", 10*time.Second, func(st *harness.Status) bool {
		return st.Counts.FilteredOut == 5000 && st.Counts.Delivered >= 5000
	}); st == nil || st.Counts.FilteredOut != 5000 || st.Counts.Received != 10000 {
		t.Errorf("even-orders status = %v, want received 10000 and filtered out 5000", st)
	}

	// Once drained and the destination healthy again: active, no lag.
	st = all.waitStatus(90*time.Second, func(st *harness.Status) bool {
		return st.State == "active" && drained(st.DeliveryLag)
	})
	t.Logf("after recovery (%s after up): %s", time.Since(upAt).Round(time.Millisecond), st)
	if st == nil || st.State != "active" || !drained(st.DeliveryLag) {
		t.Errorf("status after recovery = %v, want active with no delivery lag", st)
	}
	// orders also got the warm-up events, sent before even-orders existed.
	if st != nil && (st.Counts.Received != 10000+warmups || st.Counts.Delivered < 10000+warmups || st.Counts.InFlight != 0) {
		t.Errorf("counts after recovery: %s, want received %d, delivered as many or more, in flight 0", st, 10000+warmups)
	}
}
