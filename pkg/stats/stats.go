// Package stats carries per-flow statistics from the data-plane services to
// the control service, through Kafka only.
//
// Every service instance keeps cumulative counters per flow (Recorder) and
// publishes them every few seconds, and when it stops, to the compacted topic
// samsa.stats, keyed "<flow>/<service>/<instance>". The control service
// reads the topic (Aggregator), keeps the latest report of every key and sums
// them per flow: counts since the flow was created survive restarts and
// rebalances because the last report of a stopped instance stays in the
// topic. Rates come from the aggregator's own samples over the last minute;
// consumer lag is read separately with kadm.
//
// A report is a snapshot of monotonic counters, so losing one (a crash
// before publishing) would lose what it counted since the previous one,
// and counting work that is later redone would count it twice. Hence the
// counts that must add up are tied to the commits of the work they count:
// the transformer writes its reports in the same transaction as its outputs
// and offsets, and the deliverer's delivered and dead-lettered counts live
// in the metadata of its committed offsets, per partition (committed.go),
// which the aggregator reads from the deliverer's consumer group. The
// deliverer's reports carry only what may be approximate: retries, latency,
// the last error, the breaker state.
//
// Receivers publish source reports to the same topic, keyed
// "source:<source>/receiver/<instance>": per-source ingest counts (events,
// requests, bytes, rejections and authentication failures by reason) that
// the control service's sources page sums over every receiver replica
// (SourceRecorder, PublishSources, Aggregator.Ingest; see sources.go).
package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// Counts are cumulative per-flow counters. Units are events; an event that a
// transform fans out to n outputs adds n to Transformed and Expanded n-1,
// and a redriven dead letter adds 1 to Redriven, so that
// Received + Expanded + Redriven = FilteredOut + DeadLettered + Delivered + InFlight.
type Counts struct {
	Received     int64 `json:"received,omitempty"`
	FilteredOut  int64 `json:"filtered_out,omitempty"`
	Transformed  int64 `json:"transformed,omitempty"`
	Expanded     int64 `json:"expanded,omitempty"`
	Delivered    int64 `json:"delivered,omitempty"`
	DeadLettered int64 `json:"dead_lettered,omitempty"`
	// Retries counts delivery attempts after the first.
	Retries int64 `json:"retries,omitempty"`
	// Redriven counts dead letters sent back to delivery.
	Redriven int64 `json:"redriven,omitempty"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Received += o.Received
	c.FilteredOut += o.FilteredOut
	c.Transformed += o.Transformed
	c.Expanded += o.Expanded
	c.Delivered += o.Delivered
	c.DeadLettered += o.DeadLettered
	c.Retries += o.Retries
	c.Redriven += o.Redriven
}

// LatencyBuckets are the upper bounds, in milliseconds, of the delivery
// latency histogram every report carries.
var LatencyBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000, 3600000, math.Inf(1)}

// Error is the last error a service saw for a flow.
type Error struct {
	Stage   string    `json:"stage"`
	Message string    `json:"message"`
	EventID string    `json:"event_id,omitempty"`
	Time    time.Time `json:"time"`
}

// Report is one instance's statistics for one flow.
type Report struct {
	Flow     string    `json:"flow"`
	Service  string    `json:"service"`
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
	Counts   Counts    `json:"counts"`
	// Latency counts deliveries per LatencyBuckets bucket.
	Latency   []int64 `json:"latency,omitempty"`
	LastError *Error  `json:"last_error,omitempty"`
	// Breaker is "closed", "open" or "half-open" (deliverer only).
	Breaker string `json:"breaker,omitempty"`
	// Retrying is the number of events currently retrying (deliverer only).
	Retrying int64 `json:"retrying,omitempty"`
	// LastSuccess is the time of the flow's latest delivery (deliverer only).
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Final is set on the last report of an instance that stopped cleanly.
	Final bool `json:"final,omitempty"`

	// Source is set, and Flow empty, in a source report: a receiver
	// instance's Ingest counts of one source (see sources.go).
	Source string `json:"source,omitempty"`
	// SourceCreated is the creation time of the source counted.
	SourceCreated time.Time `json:"source_created,omitzero"`
	Ingest        *Ingest   `json:"ingest,omitempty"`
}

// Key is the record key of a report: "<flow>/<service>/<instance>", or
// "source:<source>/<service>/<instance>" for a source report.
func (r *Report) Key() string { return r.subject() + "/" + r.Service + "/" + r.Instance }

// subject is the first part of the key.
func (r *Report) subject() string {
	if r.Source != "" {
		return sourceKeyPrefix + r.Source
	}
	return r.Flow
}

// Record renders the report as a samsa.stats record.
func (r *Report) Record() (*kgo.Record, error) {
	v := r
	if r.Source != "" {
		// Readers that predate source reports take the "flow" field for
		// the first part of the key: give them one that matches it.
		c := *r
		c.Flow = r.subject()
		v = &c
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("stats: encode report: %w", err)
	}
	return &kgo.Record{Topic: kafka.StatsTopic, Key: []byte(r.Key()), Value: b}, nil
}

// ParseRecord decodes a samsa.stats record; a tombstone yields nil.
func ParseRecord(rec *kgo.Record) (*Report, error) {
	if rec.Value == nil {
		return nil, nil
	}
	r := new(Report)
	if err := json.Unmarshal(rec.Value, r); err != nil {
		return nil, fmt.Errorf("stats: decode report %q: %w", rec.Key, err)
	}
	if r.Source != "" {
		if r.Flow != r.subject() && r.Flow != "" {
			return nil, fmt.Errorf("stats: report %q is of flow %q and of source %q", rec.Key, r.Flow, r.Source)
		}
		r.Flow = ""
	}
	if r.Key() != string(rec.Key) {
		return nil, fmt.Errorf("stats: report key %q does not match its content %q", rec.Key, r.Key())
	}
	return r, nil
}

// Recorder holds one instance's counters for every flow it touches. It is
// safe for concurrent use.
type Recorder struct {
	service, instance string
	base              string // instance as created
	restarts          int

	mu    sync.Mutex
	flows map[string]*flowState
}

type flowState struct {
	rep   Report
	dirty bool
}

// NewRecorder returns a recorder for one instance of service. instance must
// be unique among the service's running instances (a random id per process
// start is right: the reports of stopped instances keep their totals).
func NewRecorder(service, instance string) *Recorder {
	return &Recorder{service: service, instance: instance, base: instance, flows: map[string]*flowState{}}
}

// Restart continues as a new instance (the id with a restart number) with
// empty counters. The transformer calls it when a transaction's outcome is
// unknown, its commit cut off midway: the totals committed so far stay in
// the reports of the old instance, which were written in the same
// transactions as the work they count, and what is counted from now on
// goes to the new one. So a batch counts once whether that transaction
// committed (its report with it) or not (the batch is processed again).
func (r *Recorder) Restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restarts++
	r.instance = fmt.Sprintf("%s.%d", r.base, r.restarts)
	r.flows = map[string]*flowState{}
}

func (r *Recorder) state(flow string) *flowState {
	s, ok := r.flows[flow]
	if !ok {
		s = &flowState{rep: Report{Flow: flow, Service: r.service, Instance: r.instance}}
		r.flows[flow] = s
	}
	s.dirty = true
	return s
}

// Add adds c to the flow's counters.
func (r *Recorder) Add(flow string, c Counts) {
	r.mu.Lock()
	r.state(flow).rep.Counts.Add(c)
	r.mu.Unlock()
}

// Error records the flow's latest error.
func (r *Recorder) Error(flow, stage, msg, eventID string, at time.Time) {
	r.mu.Lock()
	r.state(flow).rep.LastError = &Error{Stage: stage, Message: msg, EventID: eventID, Time: at.UTC()}
	r.mu.Unlock()
}

// Breaker records the flow's circuit breaker state and the number of events
// currently waiting for a retry.
func (r *Recorder) Breaker(flow, state string, retrying int64) {
	r.mu.Lock()
	s := r.state(flow)
	if s.rep.Breaker == state && s.rep.Retrying == retrying {
		r.mu.Unlock()
		return
	}
	s.rep.Breaker, s.rep.Retrying = state, retrying
	r.mu.Unlock()
}

// Latency records one successful delivery d after the event's time.
func (r *Recorder) Latency(flow string, d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	i := sort.SearchFloat64s(LatencyBuckets, ms)
	r.mu.Lock()
	s := r.state(flow)
	if s.rep.Latency == nil {
		s.rep.Latency = make([]int64, len(LatencyBuckets))
	}
	s.rep.Latency[i]++
	s.rep.LastSuccess = time.Now().UTC()
	r.mu.Unlock()
}

// Forget drops a flow (deleted): its reports are no longer published.
func (r *Recorder) Forget(flow string) {
	r.mu.Lock()
	delete(r.flows, flow)
	r.mu.Unlock()
}

// Reports returns the reports of the flows that changed since the last
// call (all of them when all is set), stamped with now.
func (r *Recorder) Reports(now time.Time, all bool) []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Report
	for _, s := range r.flows {
		if !s.dirty && !all {
			continue
		}
		s.dirty = false
		rep := s.rep
		rep.Time = now.UTC()
		if rep.Latency != nil {
			rep.Latency = append([]int64(nil), rep.Latency...)
		}
		out = append(out, rep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flow < out[j].Flow })
	return out
}

// Records is Reports rendered as samsa.stats records.
func (r *Recorder) Records(now time.Time, all bool) []*kgo.Record {
	reps := r.Reports(now, all)
	out := make([]*kgo.Record, 0, len(reps))
	for i := range reps {
		rec, err := reps[i].Record()
		if err == nil {
			out = append(out, rec)
		}
	}
	return out
}

// InstanceID returns a short random-enough id for this process: host name
// (the pod name on Kubernetes) and start time.
func InstanceID(host string) string {
	host = strings.NewReplacer("/", "-", " ", "-").Replace(host)
	return fmt.Sprintf("%s-%x", host, time.Now().UnixNano()&0xffffffffff)
}
