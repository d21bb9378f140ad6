package delivery

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
	"golang.org/x/time/rate"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Defaults of a flow's delivery policy (documented on the samsav1.Delivery
// message).
const (
	defaultInitialBackoff   = 500 * time.Millisecond
	defaultMaxBackoff       = time.Minute
	defaultMaxElapsed       = 24 * time.Hour
	defaultMultiplier       = 2.0
	defaultMaxInFlight      = 64
	defaultTimeout          = 10 * time.Second
	defaultFailureThreshold = 5
	defaultOpenDuration     = 30 * time.Second
	defaultRampUp           = 30 * time.Second
	// rampFloor is where a ramp-up starts, as a fraction of the full rate.
	rampFloor = 0.1
)

// policy is a flow's delivery policy with defaults applied and durations
// parsed.
type policy struct {
	initialBackoff time.Duration
	maxBackoff     time.Duration
	maxElapsed     time.Duration
	multiplier     float64
	maxAttempts    int
	maxInFlight    int
	timeout        time.Duration
	// rate is 0 for unlimited.
	rate  rate.Limit
	burst int
	// failureThreshold <= 0 disables the breaker.
	failureThreshold int
	openDuration     time.Duration
	orderByKey       bool
	rampUp           time.Duration
	windows          []window
}

// window is a parsed maintenance window.
type window struct {
	name     string
	sched    cron.Schedule
	duration time.Duration
	loc      *time.Location
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parsePolicy reads a Delivery message. Invalid values are errors naming
// the field (control validates them too; a deliverer must not guess).
func parsePolicy(d *samsav1.Delivery) (policy, error) {
	p := policy{
		initialBackoff:   defaultInitialBackoff,
		maxBackoff:       defaultMaxBackoff,
		maxElapsed:       defaultMaxElapsed,
		multiplier:       defaultMultiplier,
		maxInFlight:      defaultMaxInFlight,
		timeout:          defaultTimeout,
		failureThreshold: defaultFailureThreshold,
		openDuration:     defaultOpenDuration,
		orderByKey:       true,
		rampUp:           defaultRampUp,
	}
	var err error
	dur := func(field, v string, dst *time.Duration, allowZero bool) {
		if err != nil || v == "" {
			return
		}
		x, e := time.ParseDuration(v)
		if e != nil || x < 0 || (x == 0 && !allowZero) {
			err = fmt.Errorf("delivery.%s: %q is not a positive duration", field, v)
			return
		}
		*dst = x
	}
	r := d.GetRetry()
	dur("retry.initialBackoff", r.GetInitialBackoff(), &p.initialBackoff, false)
	dur("retry.maxBackoff", r.GetMaxBackoff(), &p.maxBackoff, false)
	dur("retry.maxElapsed", r.GetMaxElapsed(), &p.maxElapsed, false)
	dur("timeout", d.GetTimeout(), &p.timeout, false)
	dur("circuitBreaker.openDuration", d.GetCircuitBreaker().GetOpenDuration(), &p.openDuration, false)
	dur("rampUp", d.GetRampUp(), &p.rampUp, true)
	if err != nil {
		return policy{}, err
	}
	if p.maxBackoff < p.initialBackoff {
		p.maxBackoff = p.initialBackoff
	}
	if m := r.GetMultiplier(); m != 0 {
		if m < 1 || math.IsNaN(m) || math.IsInf(m, 0) {
			return policy{}, fmt.Errorf("delivery.retry.multiplier: %v must be at least 1", m)
		}
		p.multiplier = m
	}
	if n := r.GetMaxAttempts(); n < 0 {
		return policy{}, fmt.Errorf("delivery.retry.maxAttempts: %d is negative", n)
	} else {
		p.maxAttempts = int(n)
	}
	if n := d.GetMaxInFlight(); n < 0 {
		return policy{}, fmt.Errorf("delivery.maxInFlight: %d is negative", n)
	} else if n > 0 {
		p.maxInFlight = int(n)
	}
	if rl := d.GetRateLimit(); rl.GetPerSecond() > 0 {
		p.rate = rate.Limit(rl.GetPerSecond())
		p.burst = int(rl.GetBurst())
		if p.burst <= 0 {
			p.burst = int(math.Ceil(rl.GetPerSecond()))
		}
	} else if rl.GetPerSecond() < 0 {
		return policy{}, fmt.Errorf("delivery.rateLimit.perSecond: %v is negative", rl.GetPerSecond())
	}
	switch n := d.GetCircuitBreaker().GetFailureThreshold(); {
	case n == 0:
	case n < 0:
		p.failureThreshold = 0
	default:
		p.failureThreshold = int(n)
	}
	switch d.GetOrdering() {
	case "", "key":
	case "none":
		p.orderByKey = false
	default:
		return policy{}, fmt.Errorf("delivery.ordering: %q must be \"key\" or \"none\"", d.GetOrdering())
	}
	for i, w := range d.GetMaintenanceWindows() {
		pw, err := parseWindow(w)
		if err != nil {
			return policy{}, fmt.Errorf("delivery.maintenanceWindows[%d]: %w", i, err)
		}
		p.windows = append(p.windows, pw)
	}
	return p, nil
}

func parseWindow(w *samsav1.MaintenanceWindow) (window, error) {
	loc := time.UTC
	if tz := w.GetTimeZone(); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return window{}, fmt.Errorf("timeZone %q: %w", tz, err)
		}
		loc = l
	}
	sched, err := cronParser.Parse(w.GetCron())
	if err != nil {
		return window{}, fmt.Errorf("cron %q: %w", w.GetCron(), err)
	}
	d, err := time.ParseDuration(w.GetDuration())
	if err != nil || d <= 0 {
		return window{}, fmt.Errorf("duration %q is not a positive duration", w.GetDuration())
	}
	return window{name: w.GetName(), sched: sched, duration: d, loc: loc}, nil
}

// activeUntil reports whether now falls in the window and when the window
// ends. A window runs from each time its schedule fires, for its duration;
// overlapping firings extend it.
func (w window) activeUntil(now time.Time) (time.Time, bool) {
	local := now.In(w.loc)
	// The firings that can cover now are those after now-duration. cron
	// works in whole seconds; step back one more so a firing exactly at
	// now-duration+1s is found.
	t := local.Add(-w.duration - time.Second)
	var end time.Time
	active := false
	for i := 0; i < 10000; i++ {
		next := w.sched.Next(t)
		if next.IsZero() || next.After(local) {
			break
		}
		if e := next.Add(w.duration); e.After(local) {
			active = true
			if e.After(end) {
				end = e
			}
		}
		t = next
	}
	return end, active
}

// maintenance reports whether any window holds delivery at now, and until when.
func (p *policy) maintenance(now time.Time) (string, time.Time, bool) {
	var (
		name string
		end  time.Time
		on   bool
	)
	for _, w := range p.windows {
		if e, ok := w.activeUntil(now); ok && e.After(end) {
			name, end, on = w.name, e, true
		}
	}
	return name, end, on
}

// backoff is the wait before attempt n+1 after n failed attempts:
// exponential, with full jitter between the initial backoff and the
// exponential cap, never more than maxBackoff.
func (p *policy) backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	ceil := float64(p.initialBackoff) * math.Pow(p.multiplier, float64(n-1))
	if ceil > float64(p.maxBackoff) || math.IsInf(ceil, 0) || math.IsNaN(ceil) {
		ceil = float64(p.maxBackoff)
	}
	lo := float64(p.initialBackoff)
	if ceil <= lo {
		return p.initialBackoff
	}
	return time.Duration(lo + rand.Float64()*(ceil-lo))
}

// retryDelay is the wait after a failed attempt: the destination's
// Retry-After when it gave one (capped at maxBackoff, which is documented as
// the cap of one wait), else the backoff.
func (p *policy) retryDelay(attempts int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, p.maxBackoff)
	}
	return p.backoff(attempts)
}

// exhausted reports whether an event that failed attempts times, the first
// at first, has used up its retries.
func (p *policy) exhausted(attempts int, first, now time.Time) bool {
	if p.maxAttempts > 0 && attempts >= p.maxAttempts {
		return true
	}
	return now.Sub(first) >= p.maxElapsed
}

// rampFraction is the share of the full rate allowed at elapsed since a
// hold ended.
func (p *policy) rampFraction(elapsed time.Duration) float64 {
	if p.rampUp <= 0 || elapsed >= p.rampUp {
		return 1
	}
	if elapsed < 0 {
		elapsed = 0
	}
	return rampFloor + (1-rampFloor)*float64(elapsed)/float64(p.rampUp)
}
