package delivery

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// gateTick is how often a flow re-evaluates its maintenance windows, its
// ramp-up and an open breaker, whatever else happens.
const gateTick = 100 * time.Millisecond

// flowConfig is one version of a flow as the deliverer runs it.
type flowConfig struct {
	flow    *samsav1.Flow // secrets opened
	version int64
	pol     policy
	paused  bool
	dest    *destHandle // nil when the destination could not be built
	err     error       // why dest is nil
}

// destHandle is a destination shared by the batches that use it; it is
// closed once replaced and no batch uses it any more.
type destHandle struct {
	d    destination.Destination
	txn  destination.Transactional // non-nil for transactional destinations
	typ  string                    // "http", "kafka", "postgres"
	caps destination.Capabilities
	m    *flowMetrics
	refs sync.WaitGroup
}

func (h *destHandle) retire(log *zap.Logger) {
	go func() {
		h.refs.Wait()
		if err := h.d.Close(); err != nil {
			log.Warn("closing a replaced destination failed", zap.Error(err))
		}
	}()
}

// flowRuntime delivers one flow's events: it holds the flow's assigned
// partitions, their lanes and the queue of lanes ready to go, and runs a
// dispatcher that starts batches as the gate (pause, maintenance), the
// breaker, the in-flight cap and the rate limit allow.
type flowRuntime struct {
	d     *Deliverer
	name  string
	topic string
	log   *zap.Logger
	// dlqLog bounds the per-event dead-letter log lines during a storm.
	dlqLog rate.Sometimes

	ctx    context.Context // canceled when the runtime ends: aborts attempts
	cancel context.CancelFunc
	stop   chan struct{} // closed to stop dispatching (drain)
	wake   chan struct{}
	done   chan struct{} // closed when the dispatcher returned
	wg     sync.WaitGroup

	mu              sync.Mutex
	conf            *flowConfig // nil: the flow is not (or no longer) in the store
	parts           map[int32]*partition
	ready           laneQueue
	buffered        int
	bufferedBytes   int64 // itemSize of the buffered events
	inFlightBatches int
	inFlightItems   int
	dlqPending      int
	retrying        int
	brk             breaker
	limiter         *rate.Limiter
	limiterRate     rate.Limit
	held            bool
	holdReason      string
	releasedAt      time.Time // when the last hold ended, for the ramp-up
	topicPaused     bool
	stopped         bool
	lastErr         string
	lastErrAt       time.Time
	delivered       int64
	deadLettered    int64
	retries         int64
	dlqEnsured      bool
	// committingMarkers holds dispatching while an offsets-only
	// transaction commits trailing transaction markers (commitMarkers).
	committingMarkers bool

	pausedGauge, maintenanceGauge, breakerGauge prometheus.Gauge
}

func newFlowRuntime(d *Deliverer, name string) *flowRuntime {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flowRuntime{
		dlqLog: rate.Sometimes{First: 20, Interval: 50 * time.Millisecond},
		d:      d, name: name, topic: kafka.DeliveryTopic(name),
		log:    d.log.With(zap.String("flow", name)),
		ctx:    ctx,
		cancel: cancel,
		stop:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		parts:  map[int32]*partition{},
		held:   true, // until a configuration arrives

		pausedGauge:      d.m.paused.WithLabelValues(name),
		maintenanceGauge: d.m.maintenance.WithLabelValues(name),
		breakerGauge:     d.m.breaker.WithLabelValues(name),
	}
	if d.cl != nil {
		// Held until a configuration arrives. This also sets the pause
		// state explicitly: an earlier runtime of the same name (a flow
		// deleted and created again) may have left the topic paused.
		d.cl.PauseFetchTopics(f.topic)
		f.topicPaused = true
	}
	go f.dispatch()
	return f
}

func (f *flowRuntime) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// setConfig installs a new version of the flow (nil: deleted).
func (f *flowRuntime) setConfig(c *flowConfig) {
	f.mu.Lock()
	old := f.conf
	f.conf = c
	if c != nil {
		f.brk.configure(c.pol.failureThreshold, c.pol.openDuration)
		if c.pol.rate > 0 {
			if f.limiter == nil {
				f.limiter = rate.NewLimiter(c.pol.rate, c.pol.burst)
			} else {
				f.limiter.SetBurst(c.pol.burst)
			}
			f.limiterRate = -1 // re-apply with the ramp at the next evaluation
		} else {
			f.limiter = nil
		}
		if c.err != nil {
			f.setErrorLocked("config", c.err.Error(), "")
		}
	}
	f.evaluateLocked(time.Now())
	f.mu.Unlock()
	if old != nil && old.dest != nil && (c == nil || c.dest != old.dest) {
		old.dest.retire(f.log)
	}
	f.poke()
}

func (f *flowRuntime) setErrorLocked(stage, msg, eventID string) {
	now := time.Now()
	f.lastErr, f.lastErrAt = msg, now
	f.d.rec.Error(f.name, stage, msg, eventID, now)
}

// evaluateLocked decides whether delivery is held (paused, in a maintenance
// window, or without a usable configuration), pauses or resumes fetching
// the topic accordingly, and applies the ramp-up to the rate limit.
func (f *flowRuntime) evaluateLocked(now time.Time) {
	c := f.conf
	held, why := false, ""
	maint := false
	switch {
	case c == nil:
		held, why = true, "deleted"
	case c.dest == nil:
		held, why = true, "invalid configuration"
	case c.paused:
		held, why = true, "paused"
	default:
		if name, _, on := c.pol.maintenance(f.d.clock.Now()); on {
			held, why, maint = true, "maintenance window "+name, true
		}
	}
	if held != f.held {
		if held {
			f.log.Info("delivery held", zap.String("reason", why))
		} else {
			f.log.Info("delivery resumed", zap.String("after", f.holdReason))
			// The backlog of a pause or a maintenance window ramps up; a
			// flow that starts (or whose configuration got fixed) does not.
			if f.holdReason == "paused" || strings.HasPrefix(f.holdReason, "maintenance") {
				f.releasedAt = now
			}
		}
		f.held = held
	}
	f.holdReason = why
	pausedGauge := 0.0
	if held && c != nil {
		pausedGauge = 1
	}
	f.pausedGauge.Set(pausedGauge)
	maintGauge := 0.0
	if maint {
		maintGauge = 1
	}
	f.maintenanceGauge.Set(maintGauge)

	wantPause := held || f.buffered >= f.d.cfg.MaxBufferedPerFlow
	if f.d.cl != nil && wantPause != f.topicPaused {
		if wantPause {
			f.d.cl.PauseFetchTopics(f.topic)
		} else {
			f.d.cl.ResumeFetchTopics(f.topic)
		}
		f.topicPaused = wantPause
	}

	if f.limiter != nil && c != nil {
		want := c.pol.rate * rate.Limit(f.rampLocked(now, c))
		if want != f.limiterRate {
			f.limiter.SetLimitAt(now, want)
			f.limiterRate = want
		}
	}
}

// rampLocked is the share of the full rate allowed now.
func (f *flowRuntime) rampLocked(now time.Time, c *flowConfig) float64 {
	if f.releasedAt.IsZero() {
		return 1
	}
	fr := c.pol.rampFraction(now.Sub(f.releasedAt))
	if fr >= 1 {
		f.releasedAt = time.Time{}
	}
	return fr
}

// batch is a set of items attempted together.
type batch struct {
	items []*item
	conf  *flowConfig
	lanes []*lane
	probe bool
}

// dispatch starts batches until the runtime stops.
func (f *flowRuntime) dispatch() {
	defer close(f.done)
	tick := time.NewTicker(gateTick)
	defer tick.Stop()
	for {
		b := f.next()
		if b == nil {
			select {
			case <-f.stop:
				return
			case <-f.ctx.Done():
				return
			case <-f.wake:
			case <-tick.C:
				f.mu.Lock()
				f.evaluateLocked(time.Now())
				f.mu.Unlock()
			}
			continue
		}
		go f.work(b)
	}
}

// work runs batches for as long as there are any to take: a worker that
// finished a batch goes on with the next itself, which keeps the in-flight
// cap busy without a round trip through the dispatcher.
func (f *flowRuntime) work(b *batch) {
	for b != nil {
		if f.admit(b) {
			f.run(b)
		}
		b = f.next()
	}
}

// admit waits for the rate limit. It puts the batch back and returns false
// when the gate closed meanwhile or the runtime stops.
func (f *flowRuntime) admit(b *batch) bool {
	lim := f.limiterFor(b)
	if lim == nil {
		return true
	}
	if err := lim.WaitN(f.ctx, len(b.items)); err != nil {
		f.unlaunch(b)
		return false
	}
	f.mu.Lock()
	f.evaluateLocked(time.Now())
	held := f.held || f.stopped
	f.mu.Unlock()
	if held {
		f.unlaunch(b)
		return false
	}
	return true
}

func (f *flowRuntime) limiterFor(b *batch) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.conf.pol.rate <= 0 {
		return nil
	}
	return f.limiter
}

// next takes the next batch, or returns nil when nothing may start now.
func (f *flowRuntime) next() *batch {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || f.committingMarkers {
		return nil
	}
	now := time.Now()
	f.evaluateLocked(now)
	c := f.conf
	if f.held || c == nil || c.dest == nil || f.ready.len() == 0 {
		return nil
	}
	caps := c.dest.caps
	maxConc := c.pol.maxInFlight
	if caps.MaxConcurrency > 0 && caps.MaxConcurrency < maxConc {
		maxConc = caps.MaxConcurrency
	}
	if c.pol.rate <= 0 {
		// Without a rate limit, the ramp-up applies to concurrency.
		maxConc = max(1, int(math.Ceil(float64(maxConc)*f.rampLocked(now, c))))
	}
	if f.inFlightBatches >= maxConc {
		return nil
	}
	ok, probe := f.brk.allow(now)
	f.breakerGauge.Set(float64(f.brk.state))
	if !ok {
		return nil
	}
	maxItems := max(1, caps.MaxBatch)
	if probe {
		maxItems = 1
	}
	if c.pol.rate > 0 && f.limiter != nil && f.limiter.Burst() < maxItems {
		maxItems = max(1, f.limiter.Burst())
	}
	// A batch of several events is also bounded in bytes (a quarter of
	// the memory budget): while it is in flight its events stay buffered,
	// and the partitions must be able to fetch the next batch meanwhile.
	maxBytes := f.d.mem.batchBytes()
	var bytes int64
	b := &batch{conf: c, probe: probe}
	for len(b.items) < maxItems && (maxBytes <= 0 || bytes < maxBytes) {
		l := f.ready.pop()
		if l == nil {
			break
		}
		if l.p.revoking || l.busy || l.waiting {
			continue
		}
		head := l.next()
		if head == nil {
			continue
		}
		if head.alone && len(b.items) > 0 {
			f.ready.push(l) // next time, on its own
			break
		}
		l.busy = true
		b.lanes = append(b.lanes, l)
		for i := l.head; i < len(l.items) && len(b.items) < maxItems; i++ {
			it := l.items[i]
			if it.finished {
				continue
			}
			if it.alone && len(b.items) > 0 || maxBytes > 0 && bytes >= maxBytes {
				break
			}
			it.inFlight = true
			l.p.inFlight++
			b.items = append(b.items, it)
			bytes += it.size
			if !caps.OrderedBatch || it.alone {
				break
			}
		}
		if head.alone {
			break
		}
	}
	if len(b.items) == 0 {
		return nil
	}
	if probe {
		f.brk.probeStarted()
	}
	f.inFlightBatches++
	f.inFlightItems += len(b.items)
	c.dest.refs.Add(1)
	f.wg.Add(1)
	return b
}

// unlaunch puts a batch that was taken but not started back.
func (f *flowRuntime) unlaunch(b *batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range b.items {
		it.inFlight = false
		it.lane.p.inFlight--
	}
	f.releaseBatchLocked(b)
}

func (f *flowRuntime) releaseBatchLocked(b *batch) {
	if b.probe {
		f.brk.probeDone()
	}
	for _, l := range b.lanes {
		l.busy = false
		if !l.p.gone && l.dispatchable() {
			f.ready.push(l)
		}
	}
	f.inFlightBatches--
	f.inFlightItems -= len(b.items)
	b.conf.dest.refs.Done()
	f.wg.Done()
	// No poke: the worker that released the batch takes the next itself.
}

// run attempts a batch and records the outcomes.
func (f *flowRuntime) run(b *batch) {
	results := make([]destination.Result, len(b.items))
	items := make([]destination.Item, 0, len(b.items))
	idx := make([]int, 0, len(b.items))
	for i, it := range b.items {
		if it.ev == nil {
			results[i] = destination.Result{Class: destination.Permanent, Status: "decode", Err: "undecodable envelope: " + it.att.decodeErr.Error()}
			continue
		}
		items = append(items, destination.Item{Event: it.ev, Envelope: it.value, Attempt: int(it.attempts) + 1})
		idx = append(idx, i)
	}
	if len(items) > 0 {
		res := make([]destination.Result, len(items))
		ctx, cancel := context.WithTimeout(f.ctx, b.conf.pol.timeout)
		b.conf.dest.d.Deliver(ctx, items, res)
		cancel()
		for j, i := range idx {
			results[i] = res[j]
		}
	}
	if b.conf.dest.txn != nil {
		f.finishTxn(b, results)
		return
	}
	f.finish(b, results)
}

// action is what happens to an item after an attempt.
type action uint8

const (
	actIgnore  action = iota // the partition moved away
	actDone                  // delivered
	actDLQ                   // dead-letter it
	actRetry                 // retry after a delay
	actRequeue               // try again at once, the attempt does not count
)

type decision struct {
	act   action
	delay time.Duration
}

// decideLocked classifies the outcomes of a batch and updates the items'
// attempt records and the breaker.
func (f *flowRuntime) decideLocked(b *batch, results []destination.Result, now time.Time, eff *effects) []decision {
	out := make([]decision, len(b.items))
	pol := &b.conf.pol
	for i, it := range b.items {
		r := results[i]
		if it.lane.p.gone {
			out[i] = decision{act: actIgnore}
			continue
		}
		it.alone = false
		if r.Class == destination.Requeue {
			it.alone = r.Alone
			out[i] = decision{act: actRequeue}
			continue
		}
		if it.attempts == 0 {
			it.first = now.UnixNano()
		}
		it.attempts++
		if r.Class != destination.Success || it.att != nil {
			if it.att == nil {
				it.att = &attemptState{}
			}
			it.att.last, it.att.result = now, r
		}
		eff.attempts++
		switch r.Class {
		case destination.Success:
			f.brk.success()
			out[i] = decision{act: actDone}
		case destination.Permanent:
			eff.failures = append(eff.failures, failure{"permanent", reason(r)})
			out[i] = decision{act: actDLQ}
		default: // Retryable
			eff.failures = append(eff.failures, failure{"retryable", reason(r)})
			down := false
			if !r.Throttled {
				down = f.brk.failure(now)
			}
			if first := it.firstAttempt(); !down && pol.exhausted(int(it.attempts), first, now) {
				it.att.result.Err = fmt.Sprintf("retries exhausted after %d attempts in %s; last error: %s",
					it.attempts, now.Sub(first).Round(time.Millisecond), r.Err)
				out[i] = decision{act: actDLQ}
				continue
			}
			out[i] = decision{act: actRetry, delay: pol.retryDelay(int(it.attempts), r.RetryAfter)}
		}
	}
	f.breakerGauge.Set(float64(f.brk.state))
	return out
}

// finish applies the outcomes of a batch of a non-transactional destination.
func (f *flowRuntime) finish(b *batch, results []destination.Result) {
	now := time.Now()
	eff := &effects{fm: b.conf.dest.m}
	f.mu.Lock()
	dec := f.decideLocked(b, results, now, eff)
	var dead []*item
	for i, it := range b.items {
		if dec[i].act == actDLQ {
			dead = append(dead, it)
		}
	}
	f.applyLocked(b, dec, false, eff)
	f.releaseBatchLocked(b)
	f.mu.Unlock()
	f.publish(eff)
	if len(dead) > 0 {
		f.deadLetter(dead, b.conf.dest.m)
	}
}

// effects are a batch's metric and statistics updates, made once the
// flow's lock is released: the lock is held by every worker in turn, so
// what it covers must be short.
type effects struct {
	fm                                        *flowMetrics
	attempts, delivered, retries, deadLetters int
	latencies                                 []time.Duration
	failures                                  []failure
	err                                       *errorNote
}

type failure struct{ class, reason string }

type errorNote struct {
	stage, msg, eventID string
	at                  time.Time
}

// noteErrorLocked records the flow's latest error.
func (f *flowRuntime) noteErrorLocked(eff *effects, stage, msg, eventID string) {
	now := time.Now()
	f.lastErr, f.lastErrAt = msg, now
	eff.err = &errorNote{stage: stage, msg: msg, eventID: eventID, at: now}
}

func (f *flowRuntime) publish(eff *effects) {
	fm := eff.fm
	if eff.attempts > 0 {
		fm.attempts.Add(float64(eff.attempts))
	}
	if eff.delivered > 0 {
		fm.delivered.Add(float64(eff.delivered))
	}
	if eff.retries > 0 {
		fm.retries.Add(float64(eff.retries))
	}
	if eff.deadLetters > 0 {
		fm.deadLettered.Add(float64(eff.deadLetters))
	}
	for _, l := range eff.latencies {
		fm.latency.Observe(l.Seconds())
		f.d.rec.Latency(f.name, l)
	}
	for _, x := range eff.failures {
		fm.failures.WithLabelValues(fm.flow, fm.typ, x.class, x.reason).Inc()
	}
	// Delivered and dead-lettered events are counted when their offsets
	// are committed (partition.counts, in the commit metadata), not here:
	// an attempt that finishes but is never committed is made again by
	// the partition's next owner.
	if eff.retries > 0 {
		f.d.rec.Add(f.name, stats.Counts{Retries: int64(eff.retries)})
	}
	if e := eff.err; e != nil {
		f.d.rec.Error(f.name, e.stage, e.msg, e.eventID, e.at)
	}
}

// applyLocked applies decisions. committed: dead letters were written in
// the same transaction (they are done already).
func (f *flowRuntime) applyLocked(b *batch, dec []decision, committed bool, eff *effects) {
	for i, it := range b.items {
		it.inFlight = false
		p := it.lane.p
		if !p.gone {
			p.inFlight--
		}
		switch dec[i].act {
		case actIgnore:
		case actDone:
			it.finished, it.done = true, true
			f.delivered++
			eff.delivered++
			if it.ev != nil && !it.ev.Time.IsZero() {
				eff.latencies = append(eff.latencies, time.Since(it.ev.Time))
			}
			f.releaseLocked(p)
		case actDLQ:
			it.finished, it.dead = true, true
			eventID := ""
			if it.ev != nil {
				eventID = it.ev.ID
			}
			f.noteErrorLocked(eff, "deliver", it.result().Err, eventID)
			if committed {
				it.done = true
				f.deadLettered++
				eff.deadLetters++
				f.releaseLocked(p)
			} else {
				// Done once the dead letter is acknowledged.
				p.inFlight++
				f.dlqPending++
			}
		case actRetry:
			if p.revoking || p.gone || f.stopped {
				continue
			}
			f.retries++
			eff.retries++
			if it.ev != nil {
				f.noteErrorLocked(eff, "deliver", it.result().Err, it.ev.ID)
			}
			l := it.lane
			l.waiting = true
			f.retrying++
			time.AfterFunc(dec[i].delay, func() { f.retryDue(l) })
		case actRequeue:
		}
	}
}

func (f *flowRuntime) countDeadLetterLocked(fm *flowMetrics) {
	f.deadLettered++
	fm.deadLettered.Inc()
}

// releaseLocked advances a partition's watermark and frees what it passed.
func (f *flowRuntime) releaseLocked(p *partition) {
	if p.gone {
		return
	}
	n, bytes := p.advance()
	if n == 0 {
		return
	}
	f.buffered -= n
	f.bufferedBytes -= bytes
	f.d.mem.add(p.mem, -n, -bytes)
	if f.topicPaused && !f.held && f.buffered < f.d.cfg.MaxBufferedPerFlow/2 {
		f.evaluateLocked(time.Now())
	}
}

// retryDue puts a lane whose retry delay is over back in the ready queue.
func (f *flowRuntime) retryDue(l *lane) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retrying--
	l.waiting = false
	if l.p.gone || l.p.revoking || f.stopped {
		return
	}
	if l.dispatchable() {
		f.ready.push(l)
		f.poke()
	}
}

// slabSize is how many items (and their records' bytes) share an
// allocation: few enough that an item kept long (a retrying event) keeps
// little else alive, enough to save most allocations.
const slabSize = 16

// accept takes a fetched partition's records into their lanes.
func (f *flowRuntime) accept(ftp kgo.FetchTopicPartition) {
	if len(ftp.Records) == 0 {
		return
	}
	items := make([]*item, 0, len(ftp.Records))
	var bytes int64
	for from := 0; from < len(ftp.Records); from += slabSize {
		recs := ftp.Records[from:min(from+slabSize, len(ftp.Records))]
		slab := make([]item, len(recs))
		n := 0
		for _, r := range recs {
			n += len(r.Key) + len(r.Value)
			for _, h := range r.Headers {
				n += len(h.Value)
			}
		}
		buf := make([]byte, 0, n)
		cut := func(b []byte) []byte {
			if b == nil {
				return nil
			}
			i := len(buf)
			buf = append(buf, b...)
			return buf[i:len(buf):len(buf)]
		}
		for i, r := range recs {
			it := &slab[i]
			it.offset, it.epoch = r.Offset, r.LeaderEpoch
			if r.Attrs.IsControl() {
				it.control, it.finished, it.done = true, true, true
			} else {
				it.key, it.value = cut(r.Key), cut(r.Value)
				if len(r.Headers) > 0 {
					it.headers = make([]kgo.RecordHeader, len(r.Headers))
					for j, h := range r.Headers {
						it.headers[j] = kgo.RecordHeader{Key: strings.Clone(h.Key), Value: cut(h.Value)}
					}
				}
				var err error
				if it.ev, err = event.Decode(r.Value); err != nil {
					it.att = &attemptState{decodeErr: err}
				}
			}
			it.size = itemSize(it)
			items = append(items, it)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.parts[ftp.Partition]
	if p == nil || p.revoking || p.gone {
		return
	}
	end := ftp.HighWatermark
	if ftp.LastStableOffset >= 0 && ftp.LastStableOffset < end {
		end = ftp.LastStableOffset
	}
	if end > p.end {
		p.end = end
	}
	orderByKey := f.conf == nil || f.conf.pol.orderByKey
	// A transactional destination commits the offsets of what it writes
	// in the same transaction, which is exactly-once only if it writes a
	// partition's events strictly in offset order: a crash must never
	// leave written events after the committed offset. So its events
	// queue in one lane per partition.
	inOrder := f.conf != nil && f.conf.dest != nil && f.conf.dest.txn != nil
	added, markers := 0, 0
	for _, it := range items {
		if p.next >= 0 && it.offset < p.next {
			continue // already have it
		}
		p.next = it.offset + 1
		p.pending = append(p.pending, it)
		added++
		bytes += it.size
		if it.control {
			markers++
			continue
		}
		var l *lane
		if inOrder {
			if p.whole == nil {
				p.whole = &lane{keyed: true, p: p}
			}
			l = p.whole
		} else if orderByKey && it.ev != nil && it.ev.Key != "" {
			l = p.lanes[it.ev.Key]
			if l == nil {
				l = &lane{key: it.ev.Key, keyed: true, p: p}
				p.lanes[it.ev.Key] = l
			}
		} else {
			l = &lane{p: p}
		}
		it.lane = l
		l.items = append(l.items, it)
		if l.dispatchable() {
			f.ready.push(l)
		}
	}
	f.buffered += added
	f.bufferedBytes += bytes
	p.bytes += bytes
	f.d.mem.add(p.mem, added, bytes)
	if markers > 0 {
		f.releaseLocked(p) // a marker at the head moves the watermark
	}
	if f.buffered >= f.d.cfg.MaxBufferedPerFlow {
		f.evaluateLocked(time.Now())
	}
	f.pruneLanesLocked(p)
	f.poke()
}

// pruneLanesLocked forgets keyed lanes with nothing left, now and then,
// so that the lane map does not grow with every key ever seen.
func (f *flowRuntime) pruneLanesLocked(p *partition) {
	if len(p.lanes) < 4096 || len(p.lanes) < 2*p.buffered() {
		return
	}
	for k, l := range p.lanes {
		if !l.busy && !l.waiting && !l.queued && l.next() == nil {
			delete(p.lanes, k)
		}
	}
}

// addPartitions starts tracking newly assigned partitions.
func (f *flowRuntime) addPartitions(ids []int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if old := f.parts[id]; old != nil && !old.gone {
			continue
		}
		p := newPartition(id)
		p.mem = f.d.mem.register(f.topic, id)
		f.parts[id] = p
	}
}

// startCounts sets the counts a newly assigned partition starts from: those
// stored with the committed offset it is consumed from.
func (f *flowRuntime) startCounts(id int32, c stats.Counts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.parts[id]; p != nil && !p.gone && p.wm < 0 && p.head == 0 && len(p.pending) == 0 {
		p.counts = stats.Counts{Delivered: c.Delivered, DeadLettered: c.DeadLettered}
	}
}

// startRevoke stops new work on partitions that are being taken away.
func (f *flowRuntime) startRevoke(ids []int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if p := f.parts[id]; p != nil {
			p.revoking = true
		}
	}
}

// busy reports how many of the partitions still have attempts or dead
// letters in flight.
func (f *flowRuntime) busy(ids []int32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, id := range ids {
		if p := f.parts[id]; p != nil && !p.gone && p.inFlight > 0 {
			n++
		}
	}
	return n
}

// dropPartitions forgets partitions; it reports whether the runtime has
// none left.
func (f *flowRuntime) dropPartitions(ids []int32) (empty bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		p := f.parts[id]
		if p == nil {
			continue
		}
		p.gone = true
		f.buffered -= p.buffered()
		f.bufferedBytes -= p.bytes
		f.d.mem.unregister(p.mem)
		delete(f.parts, id)
	}
	f.evaluateLocked(time.Now())
	return len(f.parts) == 0
}

// halt stops dispatching (drain).
func (f *flowRuntime) halt() {
	f.mu.Lock()
	if !f.stopped {
		f.stopped = true
		close(f.stop)
	}
	f.mu.Unlock()
}

// idle reports whether nothing is in flight.
func (f *flowRuntime) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlightBatches == 0 && f.dlqPending == 0
}

// close ends the runtime: stops dispatching, aborts attempts in flight
// and waits for them, closes the destination.
func (f *flowRuntime) close() {
	f.halt()
	f.cancel()
	<-f.done
	f.wg.Wait()
	f.mu.Lock()
	c := f.conf
	f.conf = nil
	f.mu.Unlock()
	if c != nil && c.dest != nil {
		c.dest.retire(f.log)
	}
}
