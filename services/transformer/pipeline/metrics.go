package pipeline

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Dead-letter stages the transformer reports, besides the script's
// "filter" and "transform".
const (
	// StageDecode: the source record is not an event of the source's
	// format (a corrupt envelope, invalid JSON on a json source).
	StageDecode = "decode"
	// StageEncode: a transform's result cannot be written as an envelope
	// (invalid UTF-8, too large for a Kafka record).
	StageEncode = "encode"
)

type metrics struct {
	in       *prometheus.CounterVec
	filtered *prometheus.CounterVec
	out      *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	records  *prometheus.CounterVec
	txns     *prometheus.CounterVec
	txnTime  prometheus.Histogram
	batch    prometheus.Histogram
	lag      *prometheus.GaugeVec
	flows    prometheus.Gauge
	sessions prometheus.Counter

	mu       sync.Mutex
	perFlow  map[string]*flowMetrics
	lagSeen  map[lagKey]bool
	stageSet []string
}

type lagKey struct {
	topic     string
	partition int32
}

// flowMetrics are one flow's series, resolved once per table so that the
// per-event path does no label lookups.
type flowMetrics struct {
	in, filtered, out prometheus.Counter
	errors            map[string]prometheus.Counter // by stage
	latency           prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_transformer_events_in_total",
			Help: "Events a flow evaluated (committed transactions only).",
		}, []string{"flow"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_transformer_events_filtered_total",
			Help: "Events a flow's filter rejected or its transform dropped.",
		}, []string{"flow"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_transformer_events_out_total",
			Help: "Events written to a flow's delivery topic (a fan-out counts each output).",
		}, []string{"flow"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_transformer_errors_total",
			Help: "Events dead-lettered by the transformer, by stage (decode, filter, transform, encode).",
		}, []string{"flow", "stage"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_transformer_transform_seconds",
			Help:    "Time to run a flow's filter and transform on one event.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1},
		}, []string{"flow"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_transformer_records_in_total",
			Help: "Source records consumed in committed transactions.",
		}, []string{"topic"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_transformer_transactions_total",
			Help: "Transactions by outcome: committed, aborted (rebalance or failed write, redone) or failed (session restarted).",
		}, []string{"outcome"}),
		txnTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "samsa_transformer_transaction_seconds",
			Help:    "Time from the start of a batch to the end of its transaction.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "samsa_transformer_batch_records",
			Help:    "Source records per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_transformer_lag_records",
			Help: "Records of an assigned source partition not yet consumed, as of the last fetch.",
		}, []string{"topic", "partition"}),
		flows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "samsa_transformer_flows",
			Help: "Flows the transformer currently runs.",
		}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samsa_transformer_session_restarts_total",
			Help: "Times the Kafka session (group member and transactional producer) was recreated after an error.",
		}),
		perFlow:  map[string]*flowMetrics{},
		lagSeen:  map[lagKey]bool{},
		stageSet: []string{StageDecode, "filter", "transform", StageEncode},
	}
	if reg != nil {
		reg.MustRegister(m.in, m.filtered, m.out, m.errors, m.latency, m.records, m.txns, m.txnTime, m.batch, m.lag, m.flows, m.sessions)
	}
	return m
}

func (m *metrics) flow(name string) *flowMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fm, ok := m.perFlow[name]; ok {
		return fm
	}
	fm := &flowMetrics{
		in:       m.in.WithLabelValues(name),
		filtered: m.filtered.WithLabelValues(name),
		out:      m.out.WithLabelValues(name),
		latency:  m.latency.WithLabelValues(name),
		errors:   map[string]prometheus.Counter{},
	}
	for _, s := range m.stageSet {
		fm.errors[s] = m.errors.WithLabelValues(name, s)
	}
	m.perFlow[name] = fm
	return fm
}

// forget drops a deleted flow's series.
func (m *metrics) forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.perFlow, name)
	m.in.DeleteLabelValues(name)
	m.filtered.DeleteLabelValues(name)
	m.out.DeleteLabelValues(name)
	m.latency.DeleteLabelValues(name)
	for _, s := range m.stageSet {
		m.errors.DeleteLabelValues(name, s)
	}
}

func (m *metrics) setLag(topic string, partition int32, lag int64) {
	if lag < 0 {
		lag = 0
	}
	m.mu.Lock()
	m.lagSeen[lagKey{topic, partition}] = true
	m.mu.Unlock()
	m.lag.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(lag))
}

// dropLag removes the lag series of partitions this replica no longer owns.
func (m *metrics) dropLag(parts map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			k := lagKey{topic, p}
			if m.lagSeen[k] {
				delete(m.lagSeen, k)
				m.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
			}
		}
	}
}

func (m *metrics) dropAllLag() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.lagSeen {
		m.lag.DeleteLabelValues(k.topic, strconv.Itoa(int(k.partition)))
	}
	m.lagSeen = map[lagKey]bool{}
}
