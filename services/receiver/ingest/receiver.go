// Package ingest is the receiver: Samsa's front door. It accepts events
// over HTTP (POST /v1/sources/{source}/events: a JSON payload, NDJSON
// batches, CloudEvents structured single and batch) and gRPC
// (samsa.v1.IngestService), authenticates the caller per source, validates
// and wraps each event in the Avro envelope, and produces it to the
// source's topic with the idempotent producer and acks=all. A request is
// answered 202 only once Kafka acknowledged every one of its events; any
// failure fails the whole request, which the caller retries with the same
// ids.
//
// Every request, whatever its transport, goes through Receiver.ingest:
// source lookup, auth, decoding, validation, rate limit, ids, produce,
// metrics. docs/ingest.md documents the contract for producers.
//
// Besides its Prometheus metrics, which only its own /metrics serves, the
// receiver counts ingest per source and publishes the counts to samsa.stats
// every Config.StatsInterval and when it stops (stats.SourceRecorder): the
// control service sums them over every replica for its sources page.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/ingestauth"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/secret"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/pkg/ulid"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Receiver is the ingest service. Create it with New, run it with Run.
type Receiver struct {
	cfg      Config
	kcfg     *kafka.Config
	log      *zap.Logger
	reg      prometheus.Registerer
	store    *flow.Store
	ownStore bool
	box      *secret.Box
	health   *telemetry.Health

	cl      *kgo.Client
	prod    *producer
	metrics *metrics
	// counters are the per-source counts that the receiver publishes to
	// samsa.stats through statsCl (nil when Config.StatsInterval is 0).
	counters *stats.SourceRecorder
	statsCl  *kgo.Client
	sources  *sources
	ids      ulid.Generator
	kafkaOK  atomic.Bool
	draining atomic.Bool

	httpLn, grpcLn net.Listener
	handler        http.Handler
	grpcSrv        *grpc.Server

	eventsPool sync.Pool // *[]event.Event
	bodyPool   sync.Pool // *[]byte
}

// Option configures a Receiver beyond its Config.
type Option func(*Receiver)

// WithListeners makes the receiver serve on ln (HTTP) and grpcLn (gRPC;
// nil keeps Config.GRPCAddr) instead of binding Config's addresses: for
// tests, and for a process that picks its own ports.
func WithListeners(httpLn, grpcLn net.Listener) Option {
	return func(r *Receiver) { r.httpLn, r.grpcLn = httpLn, grpcLn }
}

// WithSecretBox opens source secrets with box instead of one built from
// Config.SecretKeys (a process running several services shares one).
func WithSecretBox(box *secret.Box) Option { return func(r *Receiver) { r.box = box } }

// WithHealth adds the receiver's readiness checks to h instead of a Health
// of its own.
func WithHealth(h *telemetry.Health) Option { return func(r *Receiver) { r.health = h } }

// New returns a receiver producing through a client built from kcfg. store
// is the flow store to read sources from; when nil, the receiver creates
// one over samsa.flows and runs it itself. reg receives the metrics; when
// it is also a prometheus.Gatherer, /metrics serves it.
func New(cfg Config, kcfg *kafka.Config, store *flow.Store, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	r := &Receiver{cfg: cfg, kcfg: kcfg, log: log, reg: reg, store: store}
	for _, o := range opts {
		o(r)
	}
	if r.box == nil && len(cfg.SecretKeys) > 0 {
		box, err := secret.New(cfg.SecretKeys...)
		if err != nil {
			return nil, fmt.Errorf("receiver: --secret-keys: %w", err)
		}
		r.box = box
	}
	if r.health == nil {
		r.health = telemetry.NewHealth()
	}
	if r.store == nil {
		s, err := flow.NewStore(kcfg, log.Named("flows"))
		if err != nil {
			return nil, fmt.Errorf("receiver: flow store: %w", err)
		}
		r.store, r.ownStore = s, true
	}
	cl, err := kcfg.NewClient(log, producerOpts(&cfg)...)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r.cl = cl
	// A new instance id per start: the reports of earlier runs keep their
	// counts in their own keys.
	host, _ := os.Hostname()
	r.counters = stats.NewSourceRecorder(stats.InstanceID(host))
	if cfg.StatsInterval > 0 {
		// A client of its own: the producer's buffer limits are sized for
		// events, and a stats write must never take their room.
		if r.statsCl, err = kcfg.NewClient(log.Named("stats")); err != nil {
			cl.Close()
			return nil, fmt.Errorf("receiver: %w", err)
		}
	}
	r.prod = newProducer(cl, &r.cfg)
	r.metrics = newMetrics(reg,
		func() float64 { return float64(r.prod.buffered.Load()) },
		func() float64 { return float64(r.prod.inflight.Load()) })
	var open func(string) (string, error)
	if r.box != nil {
		open = r.box.Open
	}
	r.sources = &sources{store: r.store, open: open, metrics: r.metrics, counters: r.counters, log: log}
	r.health.Add("flows", telemetry.ChanCheck(r.store.Ready(), "flow store has not caught up with samsa.flows"))
	r.health.Add("kafka", func() error {
		if !r.kafkaOK.Load() {
			return errors.New("kafka has not answered yet")
		}
		return nil
	})
	r.health.Add("receiver", func() error {
		if r.draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	})
	r.handler = r.newHandler()
	r.grpcSrv = r.newGRPCServer()
	return r, nil
}

// Handler is the receiver's HTTP API: ingest, /metrics, /healthz, /readyz.
func (r *Receiver) Handler() http.Handler { return r.handler }

// RegisterGRPC registers the IngestService on s, for a process serving
// several services on one gRPC server.
func (r *Receiver) RegisterGRPC(s grpc.ServiceRegistrar) {
	samsav1.RegisterIngestServiceServer(s, &ingestServer{r: r})
}

// Run serves until ctx is cancelled, then drains: it stops accepting, lets
// in-flight requests finish (and so their events be acknowledged), flushes
// the producer and closes it.
func (r *Receiver) Run(ctx context.Context) error {
	defer r.cl.Close()
	if r.statsCl != nil {
		defer r.statsCl.Close()
	}
	httpLn, grpcLn := r.httpLn, r.grpcLn
	var err error
	if httpLn == nil {
		if httpLn, err = net.Listen("tcp", r.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("receiver: listen http: %w", err)
		}
	}
	if grpcLn == nil && r.cfg.GRPCAddr != "" {
		if grpcLn, err = net.Listen("tcp", r.cfg.GRPCAddr); err != nil {
			httpLn.Close()
			return fmt.Errorf("receiver: listen grpc: %w", err)
		}
	}

	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.Background())
	defer func() {
		stopBg()
		wg.Wait()
	}()
	if r.ownStore {
		wg.Go(func() {
			if err := r.store.Run(bgCtx); err != nil && bgCtx.Err() == nil {
				r.log.Error("flow store stopped", zap.Error(err))
			}
		})
	}
	wg.Go(func() { r.pingKafka(bgCtx) })
	// The stats publisher stops after the drain below, so that its final
	// reports count every request served.
	statsCtx, stopStats := context.WithCancel(context.Background())
	defer stopStats()
	statsDone := make(chan struct{})
	if r.statsCl != nil {
		go func() {
			defer close(statsDone)
			opts := []stats.PublishOpt{stats.FinalTimeout(min(5*time.Second, r.cfg.DrainTimeout))}
			if r.cfg.StatsTopic != "" {
				opts = append(opts, stats.PublishTo(r.cfg.StatsTopic))
			}
			stats.PublishSources(statsCtx, r.statsCl, r.counters, r.cfg.StatsInterval, r.log.Named("stats"), opts...)
		}()
	} else {
		close(statsDone)
	}
	stopWatch := r.store.Watch(func(c flow.Change) {
		if c.Kind == flow.KindSource && c.Deleted() {
			r.sources.forget(c.Name)
		}
	})
	defer stopWatch()

	srv := &http.Server{
		Handler:           r.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    256 << 10,
		ErrorLog:          zap.NewStdLog(r.log.Named("http")),
	}
	// If one server fails, the other stops too: serveCtx ends both.
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	errc := make(chan error, 2)
	go func() { errc <- telemetry.Serve(serveCtx, srv, httpLn, r.cfg.DrainTimeout, r.log) }()
	servers := 1
	if grpcLn != nil {
		servers++
		go func() { errc <- r.serveGRPC(serveCtx, grpcLn) }()
	}
	r.log.Info("receiver listening", zap.String("http", httpLn.Addr().String()), zap.Stringer("grpc", addrOf(grpcLn)),
		zap.Bool("insecure", r.cfg.Insecure))

	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		servers--
	}
	r.draining.Store(true)
	stopServing()
	for ; servers > 0; servers-- {
		if err := <-errc; err != nil && first == nil && !errors.Is(err, http.ErrServerClosed) {
			first = err
		}
	}
	// The servers returned: every handler did, and a handler returns only
	// once its events are acknowledged or failed. Flush whatever remains.
	fctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	defer cancel()
	if err := r.cl.Flush(fctx); err != nil {
		r.log.Warn("producer did not flush before the drain timeout", zap.Error(err))
	}
	stopStats()
	<-statsDone
	r.log.Info("receiver stopped")
	if errors.Is(first, http.ErrServerClosed) {
		first = nil
	}
	return first
}

func addrOf(ln net.Listener) fmt.Stringer {
	if ln == nil {
		return stringer("disabled")
	}
	return ln.Addr()
}

type stringer string

func (s stringer) String() string { return string(s) }

// pingKafka marks Kafka as reachable once the cluster answers.
func (r *Receiver) pingKafka(ctx context.Context) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.cl.Ping(pctx)
		cancel()
		if err == nil {
			r.kafkaOK.Store(true)
			return
		}
		r.log.Warn("kafka not reachable yet", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// request is one ingest request after transport decoding. Both transports
// build one and hand it to ingest.
type request struct {
	source    string
	transport string // http, grpc
	requestID string
	bytes     int // payload size, for metrics
	// authenticate checks the caller's credentials with the source's
	// verifier.
	authenticate func(v *ingestauth.Verifier) error
	// decode returns the request's events, appended to dst, with their
	// data validated; ids may be empty (generated later).
	decode func(st *sourceState, now time.Time, dst []event.Event) ([]event.Event, error)
}

// ingest is the one path every request takes: source lookup, auth,
// decoding, validation, rate limit, ids, produce, metrics and logs. It
// returns the events' ids once Kafka acknowledged all of them.
func (r *Receiver) ingest(in *request) (ids []string, err error) {
	start := time.Now()
	var st *sourceState
	var n int
	defer func() { r.record(in, st, n, start, err) }()

	if st, err = r.sources.get(in.source); err != nil {
		return nil, err
	}
	if st.native() {
		return nil, errorf(ErrNativeSource, "source %q reads topic %s in format %q, which producers write directly: it does not accept events over the receiver",
			st.name, st.topic, st.format)
	}
	if st.configErr != nil {
		return nil, errorf(ErrSourceConfig, "source %q cannot authenticate requests: its auth configuration is unusable (the operator can see why in the receiver's log)", st.name)
	}
	if !st.verifier.Configured() {
		if !r.cfg.Insecure {
			return nil, &Error{Kind: ErrUnauthenticated, reason: "no_auth_configured",
				Msg: fmt.Sprintf("source %q has no ingest auth configured (API keys or a signature); only a receiver running with --insecure accepts such sources", st.name)}
		}
	} else if err := in.authenticate(st.verifier); err != nil {
		var ae *ingestauth.Error
		if errors.As(err, &ae) {
			st.m.parent.authFailures.WithLabelValues(st.name, string(ae.Reason)).Inc()
			st.counts.AuthFailure(string(ae.Reason))
			return nil, &Error{Kind: ErrUnauthenticated, Msg: ae.Msg}
		}
		return nil, err
	}

	ep := r.getEvents()
	defer r.putEvents(ep)
	events, err := in.decode(st, start, (*ep)[:0])
	if err != nil {
		// The parser may have filled part of the slice before failing.
		clear((*ep)[:cap(*ep)])
		return nil, err
	}
	*ep = events // keeps a grown slice, and tells putEvents what to clear
	if len(events) > r.cfg.MaxEvents {
		return nil, errorf(ErrTooManyEvents, "%d events in one request, more than %d: split the batch", len(events), r.cfg.MaxEvents)
	}
	ids = make([]string, len(events))
	missing := 0
	for i := range events {
		e := &events[i]
		if err := checkEvent(e); err != nil {
			if len(events) > 1 {
				return nil, errorf(err.(*Error).Kind, "event %d: %s", i+1, err.Error())
			}
			return nil, err
		}
		e.Source = st.name
		if e.ID == "" {
			missing++
		}
		ids[i] = e.ID
	}
	if len(events) > 1 && missing < len(events) {
		if err := uniqueIDs(events); err != nil {
			return nil, err
		}
	}
	if err := st.reserve(len(events), start); err != nil {
		return nil, err
	}
	if missing > 0 {
		gen := make([]string, missing)
		r.ids.Fill(start, gen)
		for i := range events {
			if events[i].ID == "" {
				events[i].ID, gen = gen[0], gen[1:]
				ids[i] = events[i].ID
			}
		}
	}
	span := startIngestSpan(st.name, events)
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if r.cfg.CreateTopics {
		st.ensureTopic(context.Background(), r.cl, r.kcfg, r.cfg.MaxEventBytes, ensureTimeout, r.log)
	}
	if err := r.prod.produce(st.topic, events, st.m.ackLatency); err != nil {
		return nil, err
	}
	n = len(events)
	return ids, nil
}

// ensureTimeout bounds creating a source's topic and waiting for its
// partition leaders, once per source.
const ensureTimeout = 15 * time.Second

// uniqueIDs refuses a batch that gives two events the same id: downstream,
// the second would be taken for a retry of the first and dropped.
func uniqueIDs(events []event.Event) error {
	seen := make(map[string]int, len(events))
	for i := range events {
		id := events[i].ID
		if id == "" {
			continue
		}
		if j, dup := seen[id]; dup {
			return errorf(ErrMalformed, "event %d: id %q is also the id of event %d: ids must be unique", i+1, id, j+1)
		}
		seen[id] = i
	}
	return nil
}

// record counts a finished request and logs failures.
func (r *Receiver) record(in *request, st *sourceState, n int, start time.Time, err error) {
	source := ""
	if st != nil {
		source = st.name
		st.m.bytes.Add(float64(in.bytes))
		st.counts.Request(in.bytes)
	}
	s := answer{http: http.StatusAccepted}
	if err != nil {
		s = statusOf(err)
		r.metrics.rejections.WithLabelValues(source, s.reason).Inc()
		if st != nil {
			st.counts.Rejection(s.reason)
		}
	} else {
		st.m.events.Add(float64(n))
		st.counts.Events(n)
	}
	r.metrics.requests.WithLabelValues(source, in.transport, statusText(s.http)).Inc()
	if err == nil {
		if ce := r.log.Check(zap.DebugLevel, "ingest request accepted"); ce != nil {
			ce.Write(zap.String("request_id", in.requestID), zap.String("source", source), zap.String("transport", in.transport),
				zap.Int("events", n), zap.Duration("elapsed", time.Since(start)))
		}
		return
	}
	fields := []zap.Field{
		zap.String("request_id", in.requestID), zap.String("source", in.source), zap.String("transport", in.transport),
		zap.Int("status", s.http), zap.String("reason", s.reason), zap.Duration("elapsed", time.Since(start)), zap.Error(err),
	}
	switch {
	case s.http >= 500:
		r.log.Warn("ingest request failed", fields...)
	case s.http == http.StatusUnauthorized:
		r.log.Info("ingest request unauthenticated", fields...)
	default:
		r.log.Debug("ingest request rejected", fields...)
	}
}

func (r *Receiver) getEvents() *[]event.Event {
	if p, ok := r.eventsPool.Get().(*[]event.Event); ok {
		return p
	}
	s := make([]event.Event, 0, 128)
	return &s
}

func (r *Receiver) putEvents(p *[]event.Event) {
	if cap(*p) > 4096 {
		return
	}
	// Drop the references to the request's buffers before pooling.
	clear(*p)
	*p = (*p)[:0]
	r.eventsPool.Put(p)
}

// tracer records the receiver's spans (the global provider: tracing is
// configured by the binary, or by a test).
var tracer = telemetry.Tracer("receiver")

// startIngestSpan starts the span of one request: its parent is the
// request's trace context (the traceparent header, which the first event
// carries), or none, and then the trace starts here. Events whose trace
// context was the request's continue the span's trace. With tracing off
// the span does not record and nothing changes.
func startIngestSpan(source string, events []event.Event) trace.Span {
	var first event.Event
	if len(events) > 0 {
		first = events[0]
	}
	ctx, span := tracer.Start(telemetry.EventContext(context.Background(), &first), "samsa.ingest",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("samsa.source", source), attribute.Int("samsa.events", len(events))))
	if !span.IsRecording() {
		return span
	}
	var c event.Event
	telemetry.InjectEvent(ctx, &c)
	for i := range events {
		if e := &events[i]; e.TraceParent == "" || e.TraceParent == first.TraceParent {
			e.TraceParent, e.TraceState = c.TraceParent, c.TraceState
		}
	}
	return span
}
