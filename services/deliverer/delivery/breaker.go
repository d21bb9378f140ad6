package delivery

import "time"

// breakerState is a circuit breaker's state; the values are those of the
// samsa_deliverer_breaker_state gauge.
type breakerState int

const (
	breakerClosed   breakerState = 0
	breakerHalfOpen breakerState = 1
	breakerOpen     breakerState = 2
)

func (s breakerState) String() string {
	switch s {
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// breaker stops calling a destination that keeps failing. It opens after
// threshold consecutive failed attempts; while open, nothing is sent (events
// wait in their lanes and in Kafka, their retry budgets untouched); after
// openFor one probe is let through (half-open): its success closes the
// breaker, its failure opens it again.
//
// It is not safe for concurrent use: the flow's mutex guards it.
type breaker struct {
	threshold int // <= 0: disabled
	openFor   time.Duration

	state    breakerState
	failures int
	openedAt time.Time
	probing  bool // the half-open probe is in flight
}

func (b *breaker) configure(threshold int, openFor time.Duration) {
	b.threshold, b.openFor = threshold, openFor
	if threshold <= 0 {
		b.state, b.failures, b.probing = breakerClosed, 0, false
	}
}

// allow reports whether a batch may be sent at now, and whether it is the
// half-open probe (which must then be a single event). It moves an open
// breaker whose time is up to half-open.
func (b *breaker) allow(now time.Time) (ok, probe bool) {
	switch b.state {
	case breakerClosed:
		return true, false
	case breakerOpen:
		if now.Sub(b.openedAt) < b.openFor {
			return false, false
		}
		b.state = breakerHalfOpen
		b.probing = false
		fallthrough
	default: // half-open
		if b.probing {
			return false, false
		}
		return true, true
	}
}

// probeStarted marks the half-open probe as sent.
func (b *breaker) probeStarted() { b.probing = true }

// success records a successful attempt.
func (b *breaker) success() {
	b.failures = 0
	b.state = breakerClosed
	b.probing = false
}

// failure records a failed attempt and reports whether the destination
// counts as down (the breaker is open now), in which case the failure must
// not use up the event's retry budget.
func (b *breaker) failure(now time.Time) (down bool) {
	if b.threshold <= 0 {
		return false
	}
	switch b.state {
	case breakerHalfOpen:
		b.state, b.openedAt, b.probing = breakerOpen, now, false
		return true
	case breakerOpen:
		return true
	}
	b.failures++
	if b.failures >= b.threshold {
		b.state, b.openedAt = breakerOpen, now
		return true
	}
	return false
}

// probeDone releases the probe slot when the probe ended without a verdict
// (requeued, or its partition moved away).
func (b *breaker) probeDone() { b.probing = false }
