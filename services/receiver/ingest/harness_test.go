package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
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
	"github.com/samsa-dev/samsa/pkg/ingestauth"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

// testSecretKey is the receiver's key in tests ("k1:" + 32 bytes, base64).
const testSecretKey = "k1:c2Ftc2EtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyEhISE="

// harness runs a receiver against a Kafka broker with a flows topic of its
// own, and offers helpers to manage sources and read what was produced.
type harness struct {
	t        testing.TB
	kcfg     *kafka.Config
	cl       *kgo.Client // writes samsa.flows records, reads source topics
	flows    string
	stats    string // the receiver's samsa.stats
	store    *flow.Store
	r        *Receiver
	reg      *prometheus.Registry
	box      *secret.Box
	url      string
	grpcAddr string
	http     *http.Client

	cancel  context.CancelFunc
	runErr  chan error
	stopped atomic.Bool
}

// newHarness starts a receiver on brokers; adjust changes its Config.
func newHarness(t testing.TB, brokers []string, adjust func(*Config), opts ...Option) *harness {
	t.Helper()
	h := &harness{t: t, kcfg: &kafka.Config{Brokers: brokers, ReplicationFactor: 1}, flows: kafkatest.Topic(t)}
	h.stats = h.flows + ".stats"
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if testing.Verbose() {
		log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	var err error
	h.cl, err = h.kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	statsSpec := kafka.StatsTopicSpec()
	statsSpec.Name = h.stats
	if err := h.kcfg.EnsureTopics(ctx, h.cl, kafka.TopicSpec{Name: h.flows, Partitions: 1}, statsSpec); err != nil {
		t.Fatal(err)
	}
	h.store, err = flow.NewStore(h.kcfg, log.Named("flows"), flow.WithTopic(h.flows))
	if err != nil {
		t.Fatal(err)
	}
	storeCtx, stopStore := context.WithCancel(context.Background())
	storeDone := make(chan struct{})
	go func() { defer close(storeDone); _ = h.store.Run(storeCtx) }()
	t.Cleanup(func() { stopStore(); <-storeDone })

	h.box, err = secret.New(testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.SecretKeys = []string{testSecretKey}
	cfg.DrainTimeout = 20 * time.Second
	cfg.StatsTopic = h.stats
	if adjust != nil {
		adjust(&cfg)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + httpLn.Addr().String()
	h.grpcAddr = grpcLn.Addr().String()
	h.reg = prometheus.NewRegistry()
	h.r, err = New(cfg, h.kcfg, h.store, log, h.reg, append([]Option{WithListeners(httpLn, grpcLn)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	h.cancel = stop
	h.runErr = make(chan error, 1)
	go func() { h.runErr <- h.r.Run(runCtx) }()
	t.Cleanup(func() { h.stop() })
	h.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(h.http.CloseIdleConnections)
	h.waitReady()
	return h
}

// stop shuts the receiver down and returns Run's error.
func (h *harness) stop() error {
	if h.stopped.Swap(true) {
		return nil
	}
	h.cancel()
	select {
	case err := <-h.runErr:
		return err
	case <-time.After(time.Minute):
		h.t.Errorf("receiver did not stop within a minute")
		return nil
	}
}

func (h *harness) waitReady() {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := h.http.Get(h.url + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				h.t.Fatalf("receiver not ready: %s", body)
			}
		} else if time.Now().After(deadline) {
			h.t.Fatalf("receiver not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uniqueName returns a source name no other test (or run on a shared
// broker) uses.
var nameSeq atomic.Int64

func uniqueName(base string) string {
	return fmt.Sprintf("%s-%d-%d", base, time.Now().UnixNano()%1e9, nameSeq.Add(1))
}

// putSource writes src to the flows topic, as the control service would,
// and waits until the receiver's store has it.
func (h *harness) putSource(src *samsav1.Source) *samsav1.Source {
	h.t.Helper()
	v, err := proto.Marshal(src)
	if err != nil {
		h.t.Fatal(err)
	}
	h.writeFlows(flow.Key(flow.KindSource, src.GetName()), v)
	return src
}

func (h *harness) deleteSource(name string) {
	h.t.Helper()
	h.writeFlows(flow.Key(flow.KindSource, name), nil)
}

func (h *harness) writeFlows(key string, value []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := h.cl.ProduceSync(ctx, &kgo.Record{Topic: h.flows, Key: []byte(key), Value: value})
	r, err := res.First()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.WaitFor(ctx, r.Offset+1); err != nil {
		h.t.Fatal(err)
	}
}

// seal encrypts a secret with the receiver's key, as the control service
// stores it.
func (h *harness) seal(s string) string {
	h.t.Helper()
	sealed, err := h.box.Seal(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return sealed
}

// response is an HTTP answer, decoded.
type response struct {
	status int
	header http.Header
	ids    []string
	err    string
	raw    string
}

func (h *harness) post(source, contentType string, body []byte, hdr ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/v1/sources/"+source+"/events", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	r, err := h.tryDo(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// tryDo sends req and decodes the answer; it is safe outside the test's
// goroutine.
func (h *harness) tryDo(req *http.Request) (response, error) {
	resp, err := h.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	var body struct {
		IDs   []string `json:"ids"`
		Error string   `json:"error"`
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return out, fmt.Errorf("response content type %q, want application/json: %s", ct, raw)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return out, fmt.Errorf("response is not JSON: %v: %s", err, raw)
	}
	out.ids, out.err = body.IDs, body.Error
	return out, nil
}

// mustAccept posts and fails the test unless the answer is 202.
func (h *harness) mustAccept(source, contentType string, body []byte, hdr ...string) []string {
	h.t.Helper()
	r := h.post(source, contentType, body, hdr...)
	if r.status != http.StatusAccepted {
		h.t.Fatalf("status %d, want 202: %s", r.status, r.raw)
	}
	return r.ids
}

// records reads every record of topic, waiting until there are at least
// want (and failing after timeout).
func (h *harness) records(topic string, want int, timeout time.Duration) []*kgo.Record {
	h.t.Helper()
	return readTopic(h.t, h.kcfg, topic, want, timeout)
}

func readTopic(t testing.TB, kcfg *kafka.Config, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kcfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d records after %s, want %d", topic, len(out), timeout, want)
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !strings.Contains(err.Error(), "UNKNOWN_TOPIC") {
				t.Logf("fetch %s: %v", topic, err)
			}
		})
		out = append(out, fs.Records()...)
	}
	return out
}

// endOffsets sums the end offsets of topic's partitions: how many records
// were ever written (0 when the topic does not exist).
func (h *harness) endOffsets(topic string) int64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(h.cl).ListEndOffsets(ctx, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

func decodeAll(t testing.TB, recs []*kgo.Record) []*event.Event {
	t.Helper()
	out := make([]*event.Event, len(recs))
	for i, r := range recs {
		e, err := event.Decode(r.Value)
		if err != nil {
			t.Fatalf("record %d (partition %d offset %d) does not decode: %v", i, r.Partition, r.Offset, err)
		}
		if e.Key != string(r.Key) {
			t.Fatalf("event %s: envelope key %q, record key %q", e.ID, e.Key, r.Key)
		}
		out[i] = e
	}
	return out
}

// counter reads a counter or histogram sample count from the registry.
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// signHeaders signs body as a sender configured with sig would, as header
// name/value pairs.
func signHeaders(sig *samsav1.Signature, plainSecret string, body []byte, now time.Time, id string) ([]string, error) {
	h, err := ingestauth.Sign(sig, plainSecret, body, now, id)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, vs := range h {
		out = append(out, k, vs[0])
	}
	return out, nil
}

// testBrokers is the Kafka of the integration tests: the real broker, or an
// in-process kfake cluster under -short (make test-unit).
func testBrokers(t testing.TB) []string {
	if testing.Short() {
		return kafkatest.Fake(t)
	}
	return kafkatest.Brokers(t)
}
