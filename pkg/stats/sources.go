package stats

import (
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// ServiceReceiver is the service name of the receiver's source reports.
const ServiceReceiver = "receiver"

// sourceKeyPrefix starts the first part of a source report's key, where a
// flow report has the flow's name. Flow names never contain ':', so a
// source report can never be taken for a flow's.
const sourceKeyPrefix = "source:"

// Source reports.
//
// Every receiver instance counts, per source, the events Kafka
// acknowledged, the requests and body bytes it received, and the requests
// it refused by reason (authentication failures also by their own reason),
// and publishes the cumulative counts to samsa.stats like the data plane's
// flow reports: every few seconds the sources that changed, and all of them
// once more when it stops. The key is "source:<name>/receiver/<instance>",
// so compaction keeps the latest report of each instance and source, and
// the control service sums them over every instance that ever ran (a
// restarted receiver is a new instance and adds to the totals; a stopped
// one's last report keeps counting).
//
// These counts are not tied to any commit: an instance that dies without
// stopping (SIGKILL, OOM) loses what it counted since its last report, a
// few seconds' worth. That is fine for a dashboard; the receiver's
// Prometheus metrics are the place for alerting.
//
// A source that is deleted and created again under the same name starts
// from zero: every report carries the creation time of the source it
// counted (SourceCreated), and the aggregator only sums the reports of the
// current source.
//
// Compatibility: a source report has no flow counts, and its JSON "flow"
// field holds the first part of its key ("source:<name>"). A reader that
// predates source reports decodes it as the report of a flow that cannot
// exist, which it never shows, instead of rejecting it.

// Ingest are a source's cumulative ingest counters on one receiver
// instance.
type Ingest struct {
	// Events acknowledged by Kafka.
	Events int64 `json:"events,omitempty"`
	// Requests received, whatever their answer.
	Requests int64 `json:"requests,omitempty"`
	// Bytes of request bodies received.
	Bytes int64 `json:"bytes,omitempty"`
	// Rejections count requests answered with an error, by reason.
	Rejections map[string]int64 `json:"rejections,omitempty"`
	// AuthFailures count failed authentications (API keys, webhook
	// signatures), by reason. Those requests are rejections too.
	AuthFailures map[string]int64 `json:"auth_failures,omitempty"`
}

// Add adds o to c.
func (c *Ingest) Add(o Ingest) {
	c.Events += o.Events
	c.Requests += o.Requests
	c.Bytes += o.Bytes
	c.Rejections = addReasons(c.Rejections, o.Rejections)
	c.AuthFailures = addReasons(c.AuthFailures, o.AuthFailures)
}

func addReasons(dst, src map[string]int64) map[string]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int64, len(src))
	}
	for k, n := range src {
		dst[k] += n
	}
	return dst
}

// Equal reports whether c and o count the same.
func (c Ingest) Equal(o Ingest) bool {
	return c.Events == o.Events && c.Requests == o.Requests && c.Bytes == o.Bytes &&
		maps.Equal(c.Rejections, o.Rejections) && maps.Equal(c.AuthFailures, o.AuthFailures)
}

// SourceCounter counts one source's ingest on this instance. The counting
// methods are safe for concurrent use and cost an atomic add (refusals a
// short lock).
type SourceCounter struct {
	name    string
	created time.Time

	events, requests, bytes atomic.Int64

	mu           sync.Mutex
	rejections   map[string]int64
	authFailures map[string]int64

	// published is the last snapshot handed out by Reports (under the
	// recorder's lock).
	published Ingest
}

// Request counts one request with a body of n bytes.
func (c *SourceCounter) Request(n int) {
	c.requests.Add(1)
	c.bytes.Add(int64(n))
}

// Events counts n events acknowledged by Kafka.
func (c *SourceCounter) Events(n int) { c.events.Add(int64(n)) }

// Rejection counts a request refused for reason.
func (c *SourceCounter) Rejection(reason string) {
	c.mu.Lock()
	if c.rejections == nil {
		c.rejections = map[string]int64{}
	}
	c.rejections[reason]++
	c.mu.Unlock()
}

// AuthFailure counts a failed authentication for reason.
func (c *SourceCounter) AuthFailure(reason string) {
	c.mu.Lock()
	if c.authFailures == nil {
		c.authFailures = map[string]int64{}
	}
	c.authFailures[reason]++
	c.mu.Unlock()
}

// Snapshot returns the current counts.
func (c *SourceCounter) Snapshot() Ingest {
	s := Ingest{Events: c.events.Load(), Requests: c.requests.Load(), Bytes: c.bytes.Load()}
	c.mu.Lock()
	if len(c.rejections) > 0 {
		s.Rejections = maps.Clone(c.rejections)
	}
	if len(c.authFailures) > 0 {
		s.AuthFailures = maps.Clone(c.authFailures)
	}
	c.mu.Unlock()
	return s
}

// SourceRecorder holds one receiver instance's ingest counters per source
// and renders them as source reports. It is safe for concurrent use.
type SourceRecorder struct {
	instance string

	mu      sync.Mutex
	sources map[string]*SourceCounter
	// forgotten are deleted sources whose key still holds this instance's
	// last report: the next Records writes tombstones for them.
	forgotten map[string]bool
	// retry makes the next Reports return every source (a publish failed).
	retry bool
}

// NewSourceRecorder returns the recorder of one receiver instance. instance
// must be unique among running receivers; a new one per process start (see
// InstanceID) keeps the totals of earlier runs in their own reports.
func NewSourceRecorder(instance string) *SourceRecorder {
	return &SourceRecorder{instance: instance, sources: map[string]*SourceCounter{}, forgotten: map[string]bool{}}
}

// Source returns the counter of the source name created at created (the
// zero time when unknown). A source created again under the same name (a
// different creation time) gets a new counter from zero; callers resolve
// the counter once per version of the source, not per request.
func (r *SourceRecorder) Source(name string, created time.Time) *SourceCounter {
	created = created.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.sources[name]; ok && c.created.Equal(created) {
		return c
	}
	c := &SourceCounter{name: name, created: created}
	r.sources[name] = c
	// The new counter's report replaces the key's content.
	delete(r.forgotten, name)
	return c
}

// Forget drops a deleted source: its counter is no longer reported, and the
// next Records deletes this instance's report of it (a tombstone).
func (r *SourceRecorder) Forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sources[name]; ok {
		delete(r.sources, name)
		r.forgotten[name] = true
	}
}

// Reports returns the reports of the sources whose counts changed since the
// last call (all of them when all is set), stamped with now. A source
// without any count is never reported.
func (r *SourceRecorder) Reports(now time.Time, all bool) []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	all = all || r.retry
	r.retry = false
	var out []Report
	for _, c := range r.sources {
		s := c.Snapshot()
		if s.Equal(Ingest{}) || (!all && s.Equal(c.published)) {
			continue
		}
		c.published = s
		out = append(out, Report{Source: c.name, SourceCreated: c.created, Service: ServiceReceiver, Instance: r.instance,
			Time: now.UTC(), Ingest: &s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

// Records is Reports rendered as samsa.stats records, after tombstones for
// the reports of sources forgotten since the last call.
func (r *SourceRecorder) Records(now time.Time, all bool) []*kgo.Record {
	return r.records(now, all, false)
}

func (r *SourceRecorder) records(now time.Time, all, final bool) []*kgo.Record {
	r.mu.Lock()
	gone := make([]string, 0, len(r.forgotten))
	for name := range r.forgotten {
		gone = append(gone, name)
	}
	clear(r.forgotten)
	r.mu.Unlock()
	sort.Strings(gone)
	out := make([]*kgo.Record, 0, len(gone))
	for _, name := range gone {
		key := (&Report{Source: name, Service: ServiceReceiver, Instance: r.instance}).Key()
		out = append(out, &kgo.Record{Topic: kafka.StatsTopic, Key: []byte(key)})
	}
	reps := r.Reports(now, all)
	for i := range reps {
		reps[i].Final = final
		if rec, err := reps[i].Record(); err == nil {
			out = append(out, rec)
		}
	}
	return out
}

// failed makes the next Reports return every source again, and restores
// the tombstones of recs.
func (r *SourceRecorder) failed(recs []*kgo.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retry = true
	for _, rec := range recs {
		if rec.Value != nil {
			continue
		}
		if name, ok := sourceOfKey(string(rec.Key)); ok {
			if _, live := r.sources[name]; !live {
				r.forgotten[name] = true
			}
		}
	}
}

// sourceOfKey returns the source of a source report's key.
func sourceOfKey(key string) (string, bool) {
	if len(key) <= len(sourceKeyPrefix) || key[:len(sourceKeyPrefix)] != sourceKeyPrefix {
		return "", false
	}
	rest := key[len(sourceKeyPrefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			return rest[:i], i > 0
		}
	}
	return "", false
}
