package delivery

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestParsePolicyDefaults(t *testing.T) {
	p, err := parsePolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.initialBackoff != 500*time.Millisecond || p.maxBackoff != time.Minute || p.maxElapsed != 24*time.Hour ||
		p.multiplier != 2 || p.maxAttempts != 0 || p.maxInFlight != 64 || p.timeout != 10*time.Second ||
		p.rate != 0 || p.failureThreshold != 5 || p.openDuration != 30*time.Second || !p.orderByKey || p.rampUp != 30*time.Second {
		t.Fatalf("defaults %+v", p)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    *samsav1.Delivery
		check func(policy) bool
		err   string
	}{
		{"rate limit with default burst", &samsav1.Delivery{RateLimit: &samsav1.RateLimit{PerSecond: 2.5}},
			func(p policy) bool { return p.rate == 2.5 && p.burst == 3 }, ""},
		{"breaker disabled", &samsav1.Delivery{CircuitBreaker: &samsav1.CircuitBreaker{FailureThreshold: -1}},
			func(p policy) bool { return p.failureThreshold == 0 }, ""},
		{"ordering none", &samsav1.Delivery{Ordering: "none"}, func(p policy) bool { return !p.orderByKey }, ""},
		{"ramp-up off", &samsav1.Delivery{RampUp: "0s"}, func(p policy) bool { return p.rampUp == 0 }, ""},
		{"max below initial", &samsav1.Delivery{Retry: &samsav1.Retry{InitialBackoff: "2s", MaxBackoff: "1s"}},
			func(p policy) bool { return p.maxBackoff == 2*time.Second }, ""},
		{"window", &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{{Cron: "0 2 * * SUN", Duration: "2h", TimeZone: "America/New_York"}}},
			func(p policy) bool { return len(p.windows) == 1 && p.windows[0].loc.String() == "America/New_York" }, ""},
		{"bad duration", &samsav1.Delivery{Timeout: "soon"}, nil, "delivery.timeout"},
		{"zero timeout", &samsav1.Delivery{Timeout: "0s"}, nil, "delivery.timeout"},
		{"bad multiplier", &samsav1.Delivery{Retry: &samsav1.Retry{Multiplier: 0.5}}, nil, "multiplier"},
		{"bad ordering", &samsav1.Delivery{Ordering: "random"}, nil, "ordering"},
		{"bad cron", &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{{Cron: "every day", Duration: "1h"}}}, nil, "cron"},
		{"six-field cron", &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{{Cron: "0 0 2 * * *", Duration: "1h"}}}, nil, "cron"},
		{"bad zone", &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{{Cron: "0 2 * * *", Duration: "1h", TimeZone: "Mars/Olympus"}}}, nil, "timeZone"},
		{"no duration", &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{{Cron: "0 2 * * *"}}}, nil, "duration"},
		{"negative in flight", &samsav1.Delivery{MaxInFlight: -1}, nil, "maxInFlight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePolicy(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(p) {
				t.Fatalf("policy %+v, err %v", p, err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p, _ := parsePolicy(&samsav1.Delivery{Retry: &samsav1.Retry{InitialBackoff: "100ms", MaxBackoff: "1s", Multiplier: 2}})
	for n := 1; n <= 12; n++ {
		ceil := min(100*time.Millisecond<<(n-1), time.Second)
		var lo, hi time.Duration = time.Hour, 0
		for i := 0; i < 500; i++ {
			d := p.backoff(n)
			if d < 100*time.Millisecond || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [100ms, %v]", n, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if n >= 3 && hi-lo < (ceil-100*time.Millisecond)/2 {
			t.Errorf("backoff(%d) hardly jitters: %v..%v", n, lo, hi)
		}
	}
	if d := p.retryDelay(1, 2*time.Second); d != time.Second {
		t.Errorf("Retry-After above max backoff: %v, want the cap 1s", d)
	}
	if d := p.retryDelay(5, 300*time.Millisecond); d != 300*time.Millisecond {
		t.Errorf("Retry-After: %v, want 300ms", d)
	}
}

func TestExhausted(t *testing.T) {
	now := time.Now()
	p, _ := parsePolicy(&samsav1.Delivery{Retry: &samsav1.Retry{MaxAttempts: 3, MaxElapsed: "1m"}})
	for _, tc := range []struct {
		attempts int
		since    time.Duration
		want     bool
	}{{1, 0, false}, {2, 30 * time.Second, false}, {3, 0, true}, {1, time.Minute, true}} {
		if got := p.exhausted(tc.attempts, now.Add(-tc.since), now); got != tc.want {
			t.Errorf("exhausted(%d, %v) = %v", tc.attempts, tc.since, got)
		}
	}
}

func TestMaintenanceWindowActive(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	p, err := parsePolicy(&samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{
		{Name: "nightly", Cron: "0 3 * * *", Duration: "1h", TimeZone: "Europe/Berlin"},
		{Name: "sunday", Cron: "30 12 * * SUN", Duration: "90m"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		name string
		end  time.Time
	}{
		{time.Date(2026, 3, 2, 2, 59, 59, 0, berlin), "", time.Time{}},
		{time.Date(2026, 3, 2, 3, 0, 0, 0, berlin), "nightly", time.Date(2026, 3, 2, 4, 0, 0, 0, berlin)},
		{time.Date(2026, 3, 2, 3, 59, 59, 0, berlin), "nightly", time.Date(2026, 3, 2, 4, 0, 0, 0, berlin)},
		{time.Date(2026, 3, 2, 4, 0, 0, 0, berlin), "", time.Time{}},
		// Summer time: 03:00 Berlin is 01:00 UTC.
		{time.Date(2026, 7, 1, 1, 30, 0, 0, time.UTC), "nightly", time.Date(2026, 7, 1, 2, 0, 0, 0, time.UTC)},
		// 2026-03-01 is a Sunday.
		{time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC), "sunday", time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC), "", time.Time{}},
	} {
		name, end, on := p.maintenance(tc.at)
		if on != (tc.name != "") || name != tc.name || (on && !end.Equal(tc.end)) {
			t.Errorf("at %v: %q until %v (%v), want %q until %v", tc.at, name, end, on, tc.name, tc.end)
		}
	}
}

func TestRampFraction(t *testing.T) {
	p := policy{rampUp: 10 * time.Second}
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{{0, 0.1}, {5 * time.Second, 0.55}, {10 * time.Second, 1}, {time.Minute, 1}} {
		if got := p.rampFraction(tc.at); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("rampFraction(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if got := (&policy{}).rampFraction(0); got != 1 {
		t.Errorf("no ramp-up: %v", got)
	}
}

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	var b breaker
	b.configure(3, 10*time.Second)
	for i := 0; i < 2; i++ {
		if b.failure(now) {
			t.Fatalf("open after %d failures", i+1)
		}
	}
	b.success()
	b.failure(now)
	b.failure(now)
	if !b.failure(now) || b.state != breakerOpen {
		t.Fatal("not open after 3 consecutive failures")
	}
	if ok, _ := b.allow(now.Add(9 * time.Second)); ok {
		t.Fatal("open breaker allowed a batch")
	}
	ok, probe := b.allow(now.Add(10 * time.Second))
	if !ok || !probe || b.state != breakerHalfOpen {
		t.Fatalf("no half-open probe: %v %v %v", ok, probe, b.state)
	}
	b.probeStarted()
	if ok, _ := b.allow(now.Add(10 * time.Second)); ok {
		t.Fatal("second probe allowed")
	}
	if !b.failure(now.Add(11*time.Second)) || b.state != breakerOpen {
		t.Fatal("failed probe did not reopen")
	}
	ok, _ = b.allow(now.Add(21 * time.Second))
	b.probeStarted()
	b.success()
	if !ok || b.state != breakerClosed {
		t.Fatal("successful probe did not close")
	}
	var off breaker
	off.configure(0, time.Second)
	for i := 0; i < 100; i++ {
		if off.failure(now) {
			t.Fatal("disabled breaker opened")
		}
	}
}

func TestPartitionWatermark(t *testing.T) {
	p := newPartition(0)
	// Counts from the metadata of the offset the partition starts at.
	p.counts = stats.Counts{Delivered: 5, DeadLettered: 1}
	mk := func(off int64) *item { return &item{offset: off, epoch: 3, size: 100} }
	// Offsets 10 to 14, 12 a transaction marker (done from the start).
	for _, off := range []int64{10, 11, 12, 13, 14} {
		p.pending = append(p.pending, mk(off))
	}
	p.pending[2].control, p.pending[2].done = true, true
	p.bytes = 500
	if n, _ := p.advance(); n != 0 || p.wm != -1 {
		t.Fatalf("advanced over unfinished: %d %d", n, p.wm)
	}
	p.pending[1].done, p.pending[1].dead = true, true
	p.pending[3].done = true
	if n, _ := p.advance(); n != 0 {
		t.Fatalf("advanced past the lowest unfinished event")
	}
	p.pending[4].finishing = true
	if wm, _, _ := p.wmIfFinishing(); wm != -1 {
		t.Fatalf("wmIfFinishing %d with offset 10 unfinished", wm)
	}
	p.pending[0].done = true
	want := stats.Counts{Delivered: 8, DeadLettered: 2}
	if wm, epoch, c := p.wmIfFinishing(); wm != 15 || epoch != 3 || c != want {
		t.Fatalf("wmIfFinishing %d/%d %+v, want 15/3 %+v", wm, epoch, c, want)
	}
	if n, bytes := p.advance(); n != 4 || bytes != 400 || p.wm != 14 || p.buffered() != 1 || p.bytes != 100 {
		t.Fatalf("advance: %d (%d bytes), wm %d, buffered %d (%d bytes)", n, bytes, p.wm, p.buffered(), p.bytes)
	}
	// The marker is not an event; the finishing item is not done yet.
	if want := (stats.Counts{Delivered: 7, DeadLettered: 2}); p.counts != want {
		t.Fatalf("counts at the watermark %+v, want %+v", p.counts, want)
	}
}

// The ramp-up follows a pause (or maintenance window), not a flow's start.
func TestRampUpAfterPauseOnly(t *testing.T) {
	d := &Deliverer{cfg: Config{MaxBufferedPerPartition: 10, MaxBufferedPerFlow: 10}, log: zap.NewNop(),
		m: newMetrics(nil), rec: nopRecorder{}, clock: systemClock{}}
	f := newFlowRuntime(d, "ramp")
	defer f.close()
	pol, err := parsePolicy(&samsav1.Delivery{RateLimit: &samsav1.RateLimit{PerSecond: 100}, RampUp: "10s"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandle(&fakeDest{}, "fake")
	h.m = d.m.forFlow("ramp", "fake")
	cfg := func(paused bool) *flowConfig {
		return &flowConfig{flow: &samsav1.Flow{Name: "ramp"}, version: 1, pol: pol, dest: h, paused: paused}
	}
	limit := func() float64 {
		f.mu.Lock()
		defer f.mu.Unlock()
		return float64(f.limiter.Limit())
	}
	f.setConfig(cfg(false))
	if l := limit(); l != 100 {
		t.Fatalf("rate at start %v, want the full 100", l)
	}
	f.setConfig(cfg(true))
	f.setConfig(cfg(false))
	if l := limit(); l < 10 || l > 12 {
		t.Fatalf("rate right after resume %v, want about 10 (10%%)", l)
	}
}
