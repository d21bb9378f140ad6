package stats

import (
	"context"
	"math"
	"sync"
	"time"

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

// Aggregator follows samsa.stats and sums the reports per flow.
type Aggregator struct {
	cl       *kgo.Client
	log      *zap.Logger
	interval time.Duration
	keep     time.Duration
	topic    string
	now      func() time.Time

	mu      sync.Mutex
	reports map[string]*Report // by key
	history map[string][]Sample
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

// NewAggregator returns an aggregator reading samsa.stats with its own client.
func NewAggregator(cfg *kafka.Config, log *zap.Logger, opts ...AggregatorOpt) (*Aggregator, error) {
	a := &Aggregator{log: log, interval: 10 * time.Second, keep: time.Hour, now: time.Now, topic: kafka.StatsTopic,
		reports: map[string]*Report{}, history: map[string][]Sample{}}
	for _, o := range opts {
		o(a)
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

// Run follows samsa.stats until ctx is done.
func (a *Aggregator) Run(ctx context.Context) error {
	defer a.cl.Close()
	go a.sampleLoop(ctx)
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
			} else {
				a.reports[rep.Key()] = rep
			}
			a.mu.Unlock()
		})
	}
}

// Apply adds a report as if read from the topic (tests, and the dev process).
func (a *Aggregator) Apply(rep Report) {
	a.mu.Lock()
	a.reports[rep.Key()] = &rep
	a.mu.Unlock()
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
		c.Add(r.Counts)
		sums[r.Flow] = c
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
		s.Counts.Add(r.Counts)
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
