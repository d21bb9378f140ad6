package delivery

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// metrics are the deliverer's Prometheus metrics, per flow and destination
// type.
type metrics struct {
	attempts      *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	failures      *prometheus.CounterVec
	retries       *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	breaker       *prometheus.GaugeVec
	paused        *prometheus.GaugeVec
	maintenance   *prometheus.GaugeVec
	lag           *prometheus.GaugeVec
	buffered      *prometheus.GaugeVec
	bufferedBytes *prometheus.GaugeVec
	inFlight      *prometheus.GaugeVec
	commits       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	fd := []string{"flow", "destination"}
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_deliverer_attempts_total", Help: "Delivery attempts.",
		}, fd),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_deliverer_delivered_total", Help: "Events delivered successfully.",
		}, fd),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_deliverer_failures_total", Help: "Failed attempts by class (retryable or permanent) and reason (an HTTP status class, timeout, connection, refused, ...).",
		}, []string{"flow", "destination", "class", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_deliverer_retries_total", Help: "Retries scheduled after a retryable failure.",
		}, fd),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_deliverer_dead_lettered_total", Help: "Events written to the flow's dead-letter topic.",
		}, fd),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_deliverer_delivery_latency_seconds",
			Help:    "Time from the event's time to its successful delivery.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400},
		}, fd),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_breaker_state", Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
		}, []string{"flow"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_paused", Help: "1 while the flow's delivery is held (paused or in a maintenance window).",
		}, []string{"flow"}),
		maintenance: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_maintenance", Help: "1 while a maintenance window of the flow is active.",
		}, []string{"flow"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_lag", Help: "Events in the delivery topic not yet finished (delivered or dead-lettered), on the partitions this replica owns.",
		}, []string{"flow"}),
		buffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_buffered", Help: "Events held in memory (waiting, in flight, retrying).",
		}, []string{"flow"}),
		bufferedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_buffered_bytes", Help: "Memory the flow's buffered events hold (records and decoded envelopes), which --max-buffered-bytes bounds over all flows.",
		}, []string{"flow"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_deliverer_in_flight", Help: "Events being attempted right now.",
		}, []string{"flow"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_deliverer_offset_commits_total", Help: "Offset commits by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.delivered, m.failures, m.retries, m.deadLettered, m.latency,
			m.breaker, m.paused, m.maintenance, m.lag, m.buffered, m.bufferedBytes, m.inFlight, m.commits)
	}
	return m
}

// flowMetrics are one flow's series for one destination type, looked up
// once rather than per event.
type flowMetrics struct {
	attempts, delivered, retries, deadLettered prometheus.Counter
	latency                                    prometheus.Observer
	failures                                   *prometheus.CounterVec
	flow, typ                                  string
}

func (m *metrics) forFlow(flow, typ string) *flowMetrics {
	return &flowMetrics{
		attempts:     m.attempts.WithLabelValues(flow, typ),
		delivered:    m.delivered.WithLabelValues(flow, typ),
		retries:      m.retries.WithLabelValues(flow, typ),
		deadLettered: m.deadLettered.WithLabelValues(flow, typ),
		latency:      m.latency.WithLabelValues(flow, typ),
		failures:     m.failures,
		flow:         flow,
		typ:          typ,
	}
}

// forget removes a deleted flow's series.
func (m *metrics) forget(flow string) {
	l := prometheus.Labels{"flow": flow}
	for _, v := range []*prometheus.CounterVec{m.attempts, m.delivered, m.failures, m.retries, m.deadLettered} {
		v.DeletePartialMatch(l)
	}
	m.latency.DeletePartialMatch(l)
	for _, v := range []*prometheus.GaugeVec{m.breaker, m.paused, m.maintenance, m.lag, m.buffered, m.bufferedBytes, m.inFlight} {
		v.DeletePartialMatch(l)
	}
}

// reason turns a result's status into a bounded label value.
func reason(r destination.Result) string {
	s := r.Status
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' {
		switch s {
		case "408", "429":
			return s
		}
		return s[:1] + "xx"
	}
	if strings.HasPrefix(s, "pg-") && len(s) >= 5 {
		return "pg-" + s[3:5] // SQLSTATE class
	}
	switch s {
	case "timeout", "connection", "refused", "tls", "request", "decode", "kafka", "canceled", "config":
		return s
	}
	return "other"
}

// Recorder receives per-flow statistics; *stats.Recorder implements it (the
// stats publisher of samsa.stats).
type Recorder interface {
	Add(flow string, c stats.Counts)
	Error(flow, stage, msg, eventID string, at time.Time)
	Breaker(flow, state string, retrying int64)
	Latency(flow string, d time.Duration)
	Forget(flow string)
}

type nopRecorder struct{}

func (nopRecorder) Add(string, stats.Counts)                        {}
func (nopRecorder) Error(string, string, string, string, time.Time) {}
func (nopRecorder) Breaker(string, string, int64)                   {}
func (nopRecorder) Latency(string, time.Duration)                   {}
func (nopRecorder) Forget(string)                                   {}
