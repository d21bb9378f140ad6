package stats

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// Sample is a flow's summed counts at one time.
type Sample struct {
	Time   time.Time
	Counts Counts
}

// Rates are per-second rates over a window.
type Rates struct {
	Received, FilteredOut, Transformed, Delivered, DeadLettered float64
}

// Summary is a flow's statistics over every instance of every service.
type Summary struct {
	Counts Counts
	// InFlight are events transformed but neither delivered nor dead-lettered.
	InFlight int64
	// Rates over the last minute.
	Rates               Rates
	P50Ms, P95Ms, P99Ms float64
	LastError           *Error
	LastSuccess         time.Time
	Breaker             string
	Retrying            int64
	Updated             time.Time
	History             []Sample
}

// Aggregator follows samsa.stats and sums the reports per flow, and reads
// the deliverer's delivered and dead-lettered counts from the metadata of
// its group's committed offsets (see CommitMetadata): the deliverer's own
// reports carry the rest (retries, latency, errors, breaker).
type Aggregator struct {
	cl             *kgo.Client
	log            *zap.Logger
	interval       time.Duration
	keep           time.Duration
	topic          string
	group          string
	committedEvery time.Duration
	now            func() time.Time

	mu      sync.Mutex
	reports map[string]*Report // flow reports by key
	sources map[string]*Report // source reports by key
	history map[string][]Sample
	// committed are the delivered and dead-lettered counts at the
	// deliverer group's committed offsets, by flow.
	committed map[string]Counts
}

// AggregatorOpt configures an Aggregator.
type AggregatorOpt func(*Aggregator)

// SampleEvery sets how often the aggregator samples counts for rates and
// history. Default 10s.
func SampleEvery(d time.Duration) AggregatorOpt { return func(a *Aggregator) { a.interval = d } }

// Topic reads reports from topic instead of samsa.stats (tests).
func Topic(topic string) AggregatorOpt { return func(a *Aggregator) { a.topic = topic } }

// KeepHistory sets how much history is kept per flow. Default 1h.
func KeepHistory(d time.Duration) AggregatorOpt { return func(a *Aggregator) { a.keep = d } }

// DelivererGroup reads the committed counts of the deliverer's consumer
// group group. Default kafka.DelivererGroup.
func DelivererGroup(group string) AggregatorOpt { return func(a *Aggregator) { a.group = group } }

// CommittedEvery sets how often the deliverer group's committed offsets are
// read. Default 1s: one small request, and the delivered counts are never
// older than that plus the deliverer's commit interval.
func CommittedEvery(d time.Duration) AggregatorOpt {
	return func(a *Aggregator) { a.committedEvery = d }
}

// NewAggregator returns an aggregator reading samsa.stats with its own client.
func NewAggregator(cfg *kafka.Config, log *zap.Logger, opts ...AggregatorOpt) (*Aggregator, error) {
	a := newAggregator(log)
	for _, o := range opts {
		o(a)
	}
	if a.committedEvery <= 0 {
		a.committedEvery = time.Second
	}
	if a.interval <= 0 {
		a.interval = 10 * time.Second
	}
	cl, err := cfg.NewClient(log,
		kgo.ConsumeTopics(a.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	a.cl = cl
	return a, nil
}

func newAggregator(log *zap.Logger) *Aggregator {
	return &Aggregator{log: log, interval: 10 * time.Second, keep: time.Hour, now: time.Now, topic: kafka.StatsTopic,
		group: kafka.DelivererGroup, committedEvery: time.Second,
		reports: map[string]*Report{}, sources: map[string]*Report{}, history: map[string][]Sample{}, committed: map[string]Counts{}}
}

// Run follows samsa.stats and the deliverer group's offsets until ctx is
// done.
func (a *Aggregator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer a.cl.Close()
	defer wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); a.sampleLoop(ctx) }()
	go func() { defer wg.Done(); a.committedLoop(ctx) }()
	for {
		fs := a.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachRecord(func(rec *kgo.Record) {
			rep, err := ParseRecord(rec)
			if err != nil {
				a.log.Warn("stats record skipped", zap.Error(err))
				return
			}
			a.mu.Lock()
			if rep == nil {
				delete(a.reports, string(rec.Key))
				delete(a.sources, string(rec.Key))
			} else {
				a.add(rep)
			}
			a.mu.Unlock()
		})
	}
}

// add keeps rep as the latest report of its key.
func (a *Aggregator) add(rep *Report) {
	if rep.Source != "" {
		a.sources[rep.Key()] = rep
	} else {
		a.reports[rep.Key()] = rep
	}
}

// Apply adds a report as if read from the topic (tests, and the dev process).
func (a *Aggregator) Apply(rep Report) {
	a.mu.Lock()
	a.add(&rep)
	a.mu.Unlock()
}

// Ingest sums the source reports of every receiver instance for each source
// in created, which maps a source's name to its creation time: reports
// that counted an earlier source of the same name (deleted since) are left
// out; a zero time on either side matches any. known says whether any
// source report has been read at all: when it is false, no receiver has
// published yet (or the receivers predate source reports), and zero counts
// mean nothing.
func (a *Aggregator) Ingest(created map[string]time.Time) (sums map[string]Ingest, known bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sums = make(map[string]Ingest, len(created))
	for _, r := range a.sources {
		at, ok := created[r.Source]
		if !ok || r.Ingest == nil {
			continue
		}
		if !at.IsZero() && !r.SourceCreated.IsZero() && !at.Equal(r.SourceCreated) {
			continue
		}
		s := sums[r.Source]
		s.Add(*r.Ingest)
		sums[r.Source] = s
	}
	return sums, len(a.sources) > 0
}

func (a *Aggregator) committedLoop(ctx context.Context) {
	t := time.NewTicker(a.committedEvery)
	defer t.Stop()
	warned := false
	for {
		if err := a.RefreshCommitted(ctx); err != nil && ctx.Err() == nil {
			// The last counts read stay; log once per failure streak.
			if !warned {
				a.log.Warn("committed delivery counts not read", zap.String("group", a.group), zap.Error(err))
			}
			warned = true
		} else {
			warned = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshCommitted reads the delivered and dead-lettered counts of every
// flow from the metadata of the deliverer group's committed offsets. Run
// calls it every CommittedEvery; tests call it to skip the wait. On error
// the previous counts stay.
func (a *Aggregator) RefreshCommitted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(a.cl).FetchOffsets(ctx, a.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		offsets, err = nil, nil // nothing committed yet
	}
	if err != nil {
		return fmt.Errorf("stats: offsets of group %s: %w", a.group, err)
	}
	if err := offsets.Error(); err != nil {
		// A partition without its counts would lower the sum for a while.
		return fmt.Errorf("stats: offsets of group %s: %w", a.group, err)
	}
	sums := map[string]Counts{}
	offsets.Each(func(o kadm.OffsetResponse) {
		flow, ok := kafka.FlowOfDeliveryTopic(o.Topic)
		if !ok {
			return
		}
		if c, ok := ParseCommitMetadata(o.Metadata); ok {
			s := sums[flow]
			s.Add(c)
			sums[flow] = s
		}
	})
	a.mu.Lock()
	a.committed = sums
	a.mu.Unlock()
	return nil
}

// countsOf is what a report adds to its flow's counts: the deliverer's
// delivered and dead-lettered counts come from its committed offsets
// instead (reports of older deliverers in the compacted topic carry them
// too; they must not count twice).
func countsOf(r *Report) Counts {
	c := r.Counts
	if r.Service == ServiceDeliverer {
		c.Delivered, c.DeadLettered = 0, 0
	}
	return c
}

func (a *Aggregator) sampleLoop(ctx context.Context) {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		a.Sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample records the current sums of every flow in its history.
func (a *Aggregator) Sample() {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	sums := map[string]Counts{}
	for _, r := range a.reports {
		c := sums[r.Flow]
		c.Add(countsOf(r))
		sums[r.Flow] = c
	}
	for flow, cc := range a.committed {
		c := sums[flow]
		c.Add(cc)
		sums[flow] = c
	}
	for flow, c := range sums {
		h := append(a.history[flow], Sample{Time: now, Counts: c})
		cut := 0
		for cut < len(h) && now.Sub(h[cut].Time) > a.keep {
			cut++
		}
		a.history[flow] = h[cut:]
	}
}

// Forget drops a deleted flow's history and reports.
func (a *Aggregator) Forget(flow string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.history, flow)
	delete(a.committed, flow)
	for k, r := range a.reports {
		if r.Flow == flow {
			delete(a.reports, k)
		}
	}
}

// Flow returns the summary of one flow; a flow without reports has zero counts.
func (a *Aggregator) Flow(flow string) Summary {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s Summary
	latency := make([]int64, len(LatencyBuckets))
	for _, r := range a.reports {
		if r.Flow != flow {
			continue
		}
		s.Counts.Add(countsOf(r))
		for i, n := range r.Latency {
			if i < len(latency) {
				latency[i] += n
			}
		}
		if r.LastError != nil && (s.LastError == nil || r.LastError.Time.After(s.LastError.Time)) {
			e := *r.LastError
			s.LastError = &e
		}
		if !r.Final {
			s.Breaker = worseBreaker(s.Breaker, r.Breaker)
			s.Retrying += r.Retrying
		}
		if r.LastSuccess.After(s.LastSuccess) {
			s.LastSuccess = r.LastSuccess
		}
		if r.Time.After(s.Updated) {
			s.Updated = r.Time
		}
	}
	s.Counts.Add(a.committed[flow])
	c := s.Counts
	s.InFlight = c.Received + c.Expanded + c.Redriven - c.FilteredOut - c.DeadLettered - c.Delivered
	if s.InFlight < 0 {
		// Reports of different services arrive at different times; never
		// show a negative number of events.
		s.InFlight = 0
	}
	s.P50Ms = percentile(latency, 0.50)
	s.P95Ms = percentile(latency, 0.95)
	s.P99Ms = percentile(latency, 0.99)
	h := a.history[flow]
	s.History = append([]Sample(nil), h...)
	now := a.now()
	if len(h) > 0 {
		// Rate over the last minute: current counts against the oldest
		// sample within the minute.
		var base *Sample
		for i := range h {
			if now.Sub(h[i].Time) <= time.Minute+a.interval {
				base = &h[i]
				break
			}
		}
		if base != nil {
			if dt := now.Sub(base.Time).Seconds(); dt >= 1 {
				s.Rates = Rates{
					Received:     float64(c.Received-base.Counts.Received) / dt,
					FilteredOut:  float64(c.FilteredOut-base.Counts.FilteredOut) / dt,
					Transformed:  float64(c.Transformed-base.Counts.Transformed) / dt,
					Delivered:    float64(c.Delivered-base.Counts.Delivered) / dt,
					DeadLettered: float64(c.DeadLettered-base.Counts.DeadLettered) / dt,
				}
			}
		}
	}
	return s
}

func worseBreaker(a, b string) string {
	rank := map[string]int{"": 0, "closed": 1, "half-open": 2, "open": 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// percentile estimates the q-quantile of a histogram over LatencyBuckets by
// linear interpolation inside the bucket.
func percentile(h []int64, q float64) float64 {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen int64
	for i, n := range h {
		if n == 0 {
			continue
		}
		if float64(seen+n) >= rank {
			lo := 0.0
			if i > 0 {
				lo = LatencyBuckets[i-1]
			}
			hi := LatencyBuckets[i]
			if math.IsInf(hi, 1) {
				return lo
			}
			return lo + (hi-lo)*(rank-float64(seen))/float64(n)
		}
		seen += n
	}
	return LatencyBuckets[len(LatencyBuckets)-2]
}
