package delivery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/pkg/pgtest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMain(m *testing.M) {
	if rate, ok := os.LookupEnv(envSink); ok {
		runSink(rate)
		return
	}
	code := kafkatest.RunMain(m)
	pgtest.Shutdown()
	os.Exit(code)
}

// testBrokers is the Kafka of the tests: the real broker, or an in-process
// kfake cluster under -short (make test-unit).
func testBrokers(t testing.TB) []string {
	if testing.Short() {
		return kafkatest.Fake(t)
	}
	return kafkatest.Brokers(t)
}

// needPostgres skips t under -short, which starts no external processes.
func needPostgres(t testing.TB) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; not under -short")
	}
}

var nameSeq atomic.Int64

// flowName is a valid flow name unique to this test run.
func flowName() string {
	return fmt.Sprintf("t%x-%d", time.Now().UnixNano()&0xffffffff, nameSeq.Add(1))
}

// env is a real broker, a flows topic of the test's own, a flow store over
// it and a producer.
type env struct {
	t      testing.TB
	ctx    context.Context
	kcfg   *kafka.Config
	topic  string // flows topic
	store  *flow.Store
	cl     *kgo.Client
	adm    *kadm.Client
	log    *zap.Logger
	group  string
	cancel context.CancelFunc
	reg    *prometheus.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	kcfg := &kafka.Config{Brokers: testBrokers(t), ReplicationFactor: 1}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	cl, err := kcfg.NewClient(log, kgo.DefaultProduceTopic("unused"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e := &env{t: t, ctx: ctx, kcfg: kcfg, cl: cl, adm: kadm.NewClient(cl), log: log, cancel: cancel,
		topic: kafkatest.Topic(t), group: "g-" + kafkatest.Topic(t)}
	spec := kafka.FlowsTopicSpec()
	spec.Name = e.topic
	if err := kcfg.EnsureTopics(ctx, cl, spec); err != nil {
		t.Fatal(err)
	}
	store, err := flow.NewStore(kcfg, log, flow.WithTopic(e.topic))
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = store.Run(sctx); close(done) }()
	t.Cleanup(func() { scancel(); <-done })
	e.store = store
	return e
}

// putFlow writes a flow to the flows topic and waits until the store has it.
func (e *env) putFlow(f *samsav1.Flow) {
	e.t.Helper()
	b, err := proto.Marshal(f)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.cl.ProduceSync(e.ctx, &kgo.Record{Topic: e.topic, Key: []byte(flow.Key(flow.KindFlow, f.Name)), Value: b}).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// createTopics creates the delivery and dead-letter topics of a flow.
func (e *env) createTopics(name string, partitions int32) {
	e.t.Helper()
	for _, topic := range []string{kafka.DeliveryTopic(name), kafka.DLQTopic(name)} {
		if err := e.kcfg.EnsureTopics(e.ctx, e.cl, kafka.TopicSpec{Name: topic, Partitions: partitions, Replication: 1}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// produce writes events to the flow's delivery topic, keyed by their key.
func (e *env) produce(name string, evs ...*event.Event) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		v, err := event.Encode(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: kafka.DeliveryTopic(name), Value: v}
		if ev.Key != "" {
			recs[i].Key = []byte(ev.Key)
		}
	}
	if err := e.cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// events makes n events over keys k0..k(keys-1), with ids prefix-i and
// payload {"key":..., "seq": i-th event of its key}.
func events(prefix string, n, keys int) []*event.Event {
	out := make([]*event.Event, n)
	seq := map[string]int{}
	for i := range out {
		k := fmt.Sprintf("k%d", i%keys)
		out[i] = &event.Event{
			ID: fmt.Sprintf("%s-%d", prefix, i), Source: "src", Type: "test.event", Key: k,
			Time: time.Now(), ContentType: "application/json",
			Data: []byte(fmt.Sprintf(`{"key":%q,"seq":%d}`, k, seq[k])),
		}
		seq[k]++
	}
	return out
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// start runs a deliverer over the env's store until the test ends.
func (e *env) start(opts ...Option) *Deliverer {
	e.t.Helper()
	d, _ := e.startStoppable(opts...)
	return d
}

// startStoppable runs a deliverer that stop ends (gracefully) before the
// test does; stop may be called more than once.
func (e *env) startStoppable(opts ...Option) (*Deliverer, func()) {
	e.t.Helper()
	return e.startConfig(nil, opts...)
}

// startConfig is startStoppable with the test configuration changed by mod.
func (e *env) startConfig(mod func(*Config), opts ...Option) (*Deliverer, func()) {
	e.t.Helper()
	cfg := Config{Group: e.group, InstanceID: "test-" + e.group, CommitInterval: 100 * time.Millisecond, DrainTimeout: 5 * time.Second, RevokeTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	d, err := New(cfg, e.kcfg, e.store, nil, e.log, reg, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg = reg
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("deliverer: %v", err)
				}
			case <-time.After(30 * time.Second):
				e.t.Errorf("deliverer did not stop")
			}
		})
	}
	e.t.Cleanup(stop)
	select {
	case <-d.Ready():
	case <-time.After(30 * time.Second):
		e.t.Fatal("deliverer not ready")
	}
	return d, stop
}

// metric returns the value of a counter or gauge of the last started
// deliverer's registry whose labels include want (-1 when absent).
func (e *env) metric(name string, want map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	total, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			found = true
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if !found {
		return -1
	}
	return total
}

// dlqRecords reads the flow's dead-letter topic (read_committed) to its end.
func (e *env) dlqRecords(name string) []*kgo.Record {
	e.t.Helper()
	return e.readAll(kafka.DLQTopic(name))
}

func (e *env) readAll(topic string) []*kgo.Record {
	e.t.Helper()
	ends, err := e.adm.ListCommittedOffsets(e.ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	// Control records (transaction markers) are kept so that the position
	// reaches the last stable offset; they are not returned.
	cl, err := e.kcfg.NewClient(e.log, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("reading %s: %v (still want %v)", topic, ctx.Err(), want)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				if !r.Attrs.IsControl() {
					out = append(out, r)
				}
			}
			if n := len(p.Records); n > 0 && p.Records[n-1].Offset+1 >= want[p.Partition] {
				delete(want, p.Partition)
			}
		})
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver is an HTTP destination on loopback that records requests and
// answers what its handler decides.
type receiver struct {
	t      *testing.T
	secret string
	srv    *http.Server
	ln     net.Listener
	addr   string

	mu       sync.Mutex
	answer   func(r *http.Request, body []byte) (int, http.Header)
	requests []request
}

type request struct {
	at        time.Time
	id        string
	key       string
	seq       int
	status    int
	body      []byte
	signature bool // verified
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, secret: testSecret, ln: ln, addr: ln.Addr().String()}
	r.mu.Lock()
	r.serve(ln)
	r.mu.Unlock()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.srv, r.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener: connections are refused until restart.
func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// restart listens again on the same address.
func (r *receiver) restart() {
	r.t.Helper()
	var ln net.Listener
	var err error
	waitFor(r.t, 10*time.Second, "the receiver's port", func() bool {
		ln, err = net.Listen("tcp", r.addr)
		return err == nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serve(ln)
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) setAnswer(fn func(r *http.Request, body []byte) (int, http.Header)) {
	r.mu.Lock()
	r.answer = fn
	r.mu.Unlock()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	rq := request{at: time.Now(), id: req.Header.Get("webhook-id"), body: body}
	rq.key, rq.seq = parsePayload(body)
	rq.signature = verifySignature(r.secret, req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), body, req.Header.Get("webhook-signature"))
	r.mu.Lock()
	answer := r.answer
	r.mu.Unlock()
	code := 200
	var h http.Header
	if answer != nil {
		code, h = answer(req, body)
	}
	rq.status = code
	r.mu.Lock()
	r.requests = append(r.requests, rq)
	r.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	if code >= 400 {
		fmt.Fprintf(w, "no thanks (%d)", code)
	}
}

func parsePayload(b []byte) (string, int) {
	s := string(b)
	i := strings.Index(s, `"key":"`)
	j := strings.Index(s, `,"seq":`)
	if i < 0 || j < 0 {
		return "", -1
	}
	key := s[i+7 : j-1]
	n, _ := strconv.Atoi(strings.TrimSuffix(s[j+7:], "}"))
	return key, n
}

// delivered returns the successful requests.
func (r *receiver) delivered() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []request
	for _, q := range r.requests {
		if q.status >= 200 && q.status < 300 {
			out = append(out, q)
		}
	}
	return out
}

func (r *receiver) all() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// distinctDelivered counts the distinct event ids delivered.
func (r *receiver) distinctDelivered() int {
	seen := map[string]bool{}
	for _, q := range r.delivered() {
		seen[q.id] = true
	}
	return len(seen)
}

// verifySignature checks a Standard Webhooks signature from the
// specification alone (https://www.standardwebhooks.com/): the secret is
// base64 after "whsec_"; the signed content is msg_id, timestamp and body
// joined by "."; the header holds space-separated "v1,<base64>" entries;
// the timestamp must be within five minutes.
func verifySignature(secret, id, ts string, body []byte, header string) bool {
	if id == "" || ts == "" || header == "" {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte("."))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	expected := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, part := range strings.Fields(header) {
		if v, sig, ok := strings.Cut(part, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(expected)) {
			return true
		}
	}
	return false
}

// httpFlow is a flow delivering to url with a fast retry policy.
func httpFlow(name, url string) *samsav1.Flow {
	return &samsav1.Flow{
		Name: name, Source: "src",
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url: url, SigningSecret: testSecret, AllowPrivateNetwork: true,
		}}},
		Delivery: &samsav1.Delivery{
			Retry:          &samsav1.Retry{InitialBackoff: "20ms", MaxBackoff: "200ms"},
			Timeout:        "2s",
			CircuitBreaker: &samsav1.CircuitBreaker{FailureThreshold: 5, OpenDuration: "200ms"},
			RampUp:         "0s",
		},
	}
}

// checkOrder verifies that per key the first successful deliveries came in
// the order of evs, and that every event of evs arrived.
func checkOrder(t *testing.T, got []request, evs []*event.Event) {
	t.Helper()
	want := map[string][]string{}
	for _, ev := range evs {
		want[ev.Key] = append(want[ev.Key], ev.ID)
	}
	keyOf := map[string]string{}
	for _, ev := range evs {
		keyOf[ev.ID] = ev.Key
	}
	seen := map[string]bool{}
	pos := map[string]int{}
	for _, q := range got {
		if seen[q.id] {
			continue
		}
		seen[q.id] = true
		k, ok := keyOf[q.id]
		if !ok {
			continue
		}
		if i := pos[k]; i >= len(want[k]) || want[k][i] != q.id {
			t.Errorf("key %s: delivered %s at position %d, expected %s", k, q.id, i, want[k][min(i, len(want[k])-1)])
		}
		pos[k]++
	}
	for _, ev := range evs {
		if !seen[ev.ID] {
			t.Errorf("event %s never delivered", ev.ID)
		}
	}
}

type atomicBool = atomic.Bool

// groupLag is the number of records of the flow's delivery topic after the
// test group's committed offsets.
func (e *env) groupLag(name string) int64 {
	e.t.Helper()
	topic := kafka.DeliveryTopic(name)
	ends, err := e.adm.ListEndOffsets(e.ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	committed, err := e.adm.FetchOffsets(e.ctx, e.group)
	if err != nil {
		e.t.Fatal(err)
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, o.Partition)
		at := int64(0)
		if ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		lag += o.Offset - at
	})
	return lag
}

// deleteFlow writes the flow's tombstone and waits until the store applied it.
func (e *env) deleteFlow(name string) {
	e.t.Helper()
	if err := e.cl.ProduceSync(e.ctx, &kgo.Record{Topic: e.topic, Key: []byte(flow.Key(flow.KindFlow, name))}).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// flowStats returns the deliverer's statistics of one flow.
func flowStats(d *Deliverer, name string) (FlowStats, bool) {
	for _, s := range d.Stats() {
		if s.Flow == name {
			return s, true
		}
	}
	return FlowStats{}, false
}
