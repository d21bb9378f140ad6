package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// flowStats completes a flow's status with what the data plane reports.
//
// Where the numbers come from, across any number of replicas:
//   - counts, rates, latency, last error and breaker state: every
//     transformer and deliverer instance publishes per-flow reports to the
//     compacted topic samsa.stats (the transformer inside the transaction
//     that does the work it counts, so its counts are exact); the
//     stats.Aggregator here keeps the latest report of every instance and
//     sums them. A stopped instance's last report stays in the topic, so
//     totals survive restarts and rebalances.
//   - delivered and dead-lettered by the deliverer: from the metadata of
//     the deliverer group's committed offsets, where each partition's
//     counts advance with its offset in one write, so that a crash or a
//     rebalance neither repeats nor loses them (stats.CommitMetadata; the
//     aggregator reads them).
//   - lag: read from Kafka itself with kadm, the committed offsets of the
//     transformer and deliverer groups against the topics' last stable
//     offsets (what a read_committed consumer can read; the deliverer
//     commits past transaction markers).
//   - paused and maintenance: from the flow's definition.
type flowStats struct {
	agg *stats.Aggregator
	adm *kadm.Client
	// delivererGroup is the deliverer's consumer group.
	delivererGroup string

	mu   sync.Mutex
	lags map[string]lagEntry // by group + topic, cached briefly
	// depths caches DLQ depths for ListFlowStatuses (dashboard.go).
	depths map[string]depthEntry
}

type lagEntry struct {
	lag int64
	at  time.Time
}

func newFlowStats(agg *stats.Aggregator, cl *kgo.Client, delivererGroup string) *flowStats {
	return &flowStats{agg: agg, adm: kadm.NewClient(cl), delivererGroup: delivererGroup, lags: map[string]lagEntry{}, depths: map[string]depthEntry{}}
}

// degradedAfter is how long an error keeps a flow "degraded".
const degradedAfter = time.Minute

// fill adds counts, rates, lag, errors and the derived state to st, which
// configuredStatus has filled from the definition.
func (fs *flowStats) fill(ctx context.Context, f *samsav1.Flow, src *samsav1.Source, st *samsav1.FlowStatus, now time.Time) {
	sum := fs.agg.Flow(f.GetName())
	c := sum.Counts
	st.Counts = &samsav1.StageCounts{
		Received:     c.Received + c.Expanded,
		FilteredOut:  c.FilteredOut,
		Transformed:  c.Transformed,
		Delivered:    c.Delivered,
		DeadLettered: c.DeadLettered,
		InFlight:     sum.InFlight,
		Redriven:     c.Redriven,
	}
	st.Rates = &samsav1.StageRates{
		Received:     sum.Rates.Received,
		FilteredOut:  sum.Rates.FilteredOut,
		Transformed:  sum.Rates.Transformed,
		Delivered:    sum.Rates.Delivered,
		DeadLettered: sum.Rates.DeadLettered,
	}
	st.LatencyP50Ms, st.LatencyP95Ms, st.LatencyP99Ms = sum.P50Ms, sum.P95Ms, sum.P99Ms
	st.Breaker = sum.Breaker
	if st.Breaker == "" {
		st.Breaker = "closed"
	}
	if e := sum.LastError; e != nil {
		st.LastError = &samsav1.FlowError{Stage: e.Stage, Message: e.Message, EventId: e.EventID, Time: timestamppb.New(e.Time)}
	}
	srcTopic := src.GetTopic()
	if srcTopic == "" {
		srcTopic = kafka.SourceTopic(src.GetName())
	}
	st.TransformLag = fs.lag(ctx, kafka.TransformerGroup, srcTopic, now)
	st.DeliveryLag = fs.lag(ctx, fs.delivererGroup, kafka.DeliveryTopic(f.GetName()), now)

	if st.State != "active" {
		return // paused or in maintenance: the operator's decision explains everything
	}
	// An error keeps the flow degraded for a while, unless a delivery
	// succeeded since.
	recentErr := sum.LastError != nil && now.Sub(sum.LastError.Time) < degradedAfter && sum.LastError.Time.After(sum.LastSuccess)
	switch {
	case sum.Breaker == "open":
		st.State = "failing"
		st.Reason = "the destination keeps failing: circuit breaker open, events wait in Kafka"
		if sum.LastError != nil {
			st.Reason += ": " + sum.LastError.Message
		}
	case sum.Retrying > 0:
		st.State = "degraded"
		st.Reason = fmt.Sprintf("%d events retrying", sum.Retrying)
		if sum.LastError != nil {
			st.Reason += ": " + sum.LastError.Message
		}
	case recentErr:
		st.State = "degraded"
		st.Reason = fmt.Sprintf("%s error %s ago: %s", sum.LastError.Stage, now.Sub(sum.LastError.Time).Round(time.Second), sum.LastError.Message)
	}
}

// lag is the records of topic that group has not committed yet, cached for
// a second so that a dashboard polling many flows costs one request per
// topic and second.
func (fs *flowStats) lag(ctx context.Context, group, topic string, now time.Time) int64 {
	key := group + "\x00" + topic
	fs.mu.Lock()
	if e, ok := fs.lags[key]; ok && now.Sub(e.at) < time.Second {
		fs.mu.Unlock()
		return e.lag
	}
	fs.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ends, err := fs.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0
	}
	committed, err := fs.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		return 0
	}
	lag, _ := topicLag(ends, committed, topic)
	fs.mu.Lock()
	fs.lags[key] = lagEntry{lag: lag, at: now}
	fs.mu.Unlock()
	return lag
}

// topicLag sums, over the partitions of topic, the offsets between the
// group's committed offset (the start when none) and the end (the last
// stable offset: records of open transactions are not deliverable yet).
// ok is false when no partition's end is known.
func topicLag(ends kadm.ListedOffsets, committed kadm.OffsetResponses, topic string) (lag int64, ok bool) {
	for _, o := range ends[topic] {
		if o.Err != nil {
			continue
		}
		ok = true
		start := int64(0)
		if c, found := committed.Lookup(topic, o.Partition); found && c.Err == nil && c.At >= 0 {
			start = c.At
		}
		if d := o.Offset - start; d > 0 {
			lag += d
		}
	}
	return lag, ok
}
