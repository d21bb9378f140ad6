package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the receiver's Prometheus metrics, all labelled by source.
// Requests for unknown sources are counted under source "", so that
// made-up names cannot grow the label set.
type metrics struct {
	requests     *prometheus.CounterVec
	events       *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	rejections   *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	ackLatency   *prometheus.HistogramVec
	buffered     prometheus.GaugeFunc
	inflight     prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, buffered, inflight func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_receiver_requests_total",
			Help: "Ingest requests by source, transport (http, grpc) and HTTP status (gRPC calls by their HTTP equivalent).",
		}, []string{"source", "transport", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_receiver_events_total",
			Help: "Events acknowledged by Kafka, by source.",
		}, []string{"source"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_receiver_bytes_total",
			Help: "Request body bytes received, by source.",
		}, []string{"source"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_receiver_rejections_total",
			Help: "Requests answered with an error, by source and reason.",
		}, []string{"source", "reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_receiver_auth_failures_total",
			Help: "Failed authentications (API keys and webhook signatures), by source and reason.",
		}, []string{"source", "reason"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_receiver_ack_latency_seconds",
			Help:    "Time from handing a request's events to the producer until Kafka acknowledged all of them, by source.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30},
		}, []string{"source"}),
		buffered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "samsa_receiver_buffered_bytes",
			Help: "Encoded events awaiting Kafka's acknowledgement (bounded by --max-buffered-bytes).",
		}, buffered),
		inflight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "samsa_receiver_inflight_requests",
			Help: "Requests whose events are waiting for Kafka's acknowledgement.",
		}, inflight),
	}
	reg.MustRegister(m.requests, m.events, m.bytes, m.rejections, m.authFailures, m.ackLatency, m.buffered, m.inflight)
	return m
}

// sourceMetrics are the children of one source, resolved once per source
// version rather than per request.
type sourceMetrics struct {
	name       string
	events     prometheus.Counter
	bytes      prometheus.Counter
	ackLatency prometheus.Observer
	parent     *metrics
}

func (m *metrics) source(name string) *sourceMetrics {
	return &sourceMetrics{
		name:       name,
		events:     m.events.WithLabelValues(name),
		bytes:      m.bytes.WithLabelValues(name),
		ackLatency: m.ackLatency.WithLabelValues(name),
		parent:     m,
	}
}

// forget removes a deleted source's series.
func (m *metrics) forget(name string) {
	l := prometheus.Labels{"source": name}
	m.requests.DeletePartialMatch(l)
	m.events.DeletePartialMatch(l)
	m.bytes.DeletePartialMatch(l)
	m.rejections.DeletePartialMatch(l)
	m.authFailures.DeletePartialMatch(l)
	m.ackLatency.DeletePartialMatch(l)
}
