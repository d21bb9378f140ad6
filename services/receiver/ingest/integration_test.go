package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/secret"
	"github.com/samsa-dev/samsa/pkg/ulid"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

const apiKey = "sk_test_0123456789abcdef"

func keyedSource(name string) *samsav1.Source {
	return &samsav1.Source{Name: name, Partitions: 3, Auth: &samsav1.SourceAuth{
		ApiKeys: []*samsav1.ApiKey{{Name: "ci", Hash: secret.HashKey(apiKey)}},
	}}
}

var bearer = []string{"Authorization", "Bearer " + apiKey}

func with(hdr []string, more ...string) []string { return append(slices.Clone(hdr), more...) }

// Events in every format arrive in the source topic, decodable, with the
// ids the receiver answered, in order per key.
func TestIngestEveryFormat(t *testing.T) {
	h := newHarness(t, testBrokers(t), nil)
	src := h.putSource(keyedSource(uniqueName("formats")))
	name := src.GetName()

	want := map[string]func(t *testing.T, e *event.Event){}
	expect := func(ids []string, n int, check func(t *testing.T, i int, e *event.Event)) {
		t.Helper()
		if len(ids) != n {
			t.Fatalf("%d ids, want %d", len(ids), n)
		}
		for i, id := range ids {
			want[id] = func(t *testing.T, e *event.Event) { check(t, i, e) }
		}
	}

	// application/json, headers in binary mode.
	ids := h.mustAccept(name, "application/json", []byte(`{"order":1}`), with(bearer,
		"Ce-Id", "order-1", "Ce-Type", "order.created", "Ce-Subject", "orders/1", "Samsa-Key", "cust-1",
		"Ce-Time", "2025-06-01T10:00:00.5Z", "Ce-Tenant", "acme",
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")...)
	expect(ids, 1, func(t *testing.T, _ int, e *event.Event) {
		if e.ID != "order-1" || e.Type != "order.created" || e.Subject != "orders/1" || e.Key != "cust-1" ||
			string(e.Data) != `{"order":1}` || e.ContentType != "application/json" || e.Source != name ||
			!e.Time.Equal(time.Date(2025, 6, 1, 10, 0, 0, 5e8, time.UTC)) || e.Attributes["tenant"] != "acme" ||
			e.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
			t.Errorf("json event: %+v", e)
		}
	})

	// NDJSON without ids: generated ULIDs.
	before := time.Now().Add(-time.Second)
	ids = h.mustAccept(name, "application/x-ndjson", []byte("{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"), with(bearer, "Samsa-Key", "cust-2")...)
	expect(ids, 3, func(t *testing.T, i int, e *event.Event) {
		ts, err := ulid.Time(e.ID)
		if err != nil || ts.Before(before) || string(e.Data) != fmt.Sprintf(`{"n":%d}`, i) || e.Key != "cust-2" {
			t.Errorf("ndjson event %d: %+v (ulid time %v, %v)", i, e, ts, err)
		}
	})
	if !slices.IsSorted(ids) {
		t.Errorf("generated ids of one batch are not sorted: %v", ids)
	}

	// CloudEvents, structured mode, single.
	ids = h.mustAccept(name, "application/cloudevents+json", []byte(`{"specversion":"1.0","id":"ce-1","source":"/shop","type":"t.single",
		"partitionkey":"cust-3","datacontenttype":"text/plain","data":"hello"}`), bearer...)
	expect(ids, 1, func(t *testing.T, _ int, e *event.Event) {
		if e.ID != "ce-1" || e.Type != "t.single" || e.Key != "cust-3" || string(e.Data) != "hello" ||
			e.ContentType != "text/plain" || e.Attributes["source"] != "/shop" {
			t.Errorf("cloudevent: %+v", e)
		}
	})

	// CloudEvents batch, with data_base64.
	ids = h.mustAccept(name, "application/cloudevents-batch+json", []byte(`[
		{"specversion":"1.0","id":"b-1","type":"t.batch","data":{"x":1}},
		{"specversion":"1.0","id":"b-2","type":"t.batch","data_base64":"AAEC"}]`), bearer...)
	expect(ids, 2, func(t *testing.T, i int, e *event.Event) {
		switch i {
		case 0:
			if e.ID != "b-1" || string(e.Data) != `{"x":1}` || e.ContentType != "application/json" {
				t.Errorf("batch event 1: %+v", e)
			}
		case 1:
			if e.ID != "b-2" || string(e.Data) != "\x00\x01\x02" || e.ContentType != "application/octet-stream" {
				t.Errorf("batch event 2: %+v", e)
			}
		}
	})

	// gRPC, unary and streaming.
	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ic := samsav1.NewIngestServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+apiKey)
	resp, err := ic.Publish(ctx, &samsav1.PublishRequest{Source: name, Events: []*samsav1.IngestEvent{
		{Id: "g-1", Type: "t.grpc", Key: "cust-4", Data: []byte(`{"g":1}`), Attributes: map[string]string{"region": "eu"}},
		{Type: "t.grpc", ContentType: "application/octet-stream", Data: []byte{0xff, 0}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	expect(resp.GetIds(), 2, func(t *testing.T, i int, e *event.Event) {
		if i == 0 && (e.ID != "g-1" || e.Attributes["region"] != "eu" || e.Key != "cust-4" || string(e.Data) != `{"g":1}`) {
			t.Errorf("grpc event 1: %+v", e)
		}
		if i == 1 && (string(e.Data) != "\xff\x00" || e.ContentType != "application/octet-stream") {
			t.Errorf("grpc event 2: %+v", e)
		}
	})
	stream, err := ic.PublishStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := stream.Send(&samsav1.PublishStreamRequest{Source: name, Events: []*samsav1.IngestEvent{
			{Id: fmt.Sprintf("s-%d", i), Key: "cust-5", Data: []byte(strconv.Itoa(i))},
		}}); err != nil {
			t.Fatal(err)
		}
		ack, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		expect(ack.GetIds(), 1, func(t *testing.T, _ int, e *event.Event) {
			if e.ID != fmt.Sprintf("s-%d", i) || string(e.Data) != strconv.Itoa(i) {
				t.Errorf("stream event %d: %+v", i, e)
			}
		})
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}

	evs := decodeAll(t, h.records(kafka.SourceTopic(name), len(want), 30*time.Second))
	if len(evs) != len(want) {
		t.Fatalf("%d events in the topic, want %d", len(evs), len(want))
	}
	for _, e := range evs {
		check, ok := want[e.ID]
		if !ok {
			t.Fatalf("unexpected event %s in the topic", e.ID)
		}
		delete(want, e.ID)
		check(t, e)
	}
	if n := h.metric("samsa_receiver_events_total", map[string]string{"source": name}); n != float64(len(evs)) {
		t.Errorf("samsa_receiver_events_total = %v, want %d", n, len(evs))
	}
	if n := h.metric("samsa_receiver_ack_latency_seconds", map[string]string{"source": name}); n != 8 {
		t.Errorf("ack latency observations = %v, want 8 (one per request)", n)
	}
}

// Events with the same key stay in order, across requests and within one.
func TestOrderPerKey(t *testing.T) {
	h := newHarness(t, testBrokers(t), nil)
	name := h.putSource(keyedSource(uniqueName("order"))).GetName()
	const keys, requests, perRequest = 4, 10, 20
	for r := 0; r < requests; r++ {
		for k := 0; k < keys; k++ {
			var b strings.Builder
			for i := 0; i < perRequest; i++ {
				fmt.Fprintf(&b, "{\"seq\":%d}\n", r*perRequest+i)
			}
			h.mustAccept(name, "application/x-ndjson", []byte(b.String()), with(bearer, "Samsa-Key", fmt.Sprintf("key-%d", k))...)
		}
	}
	recs := h.records(kafka.SourceTopic(name), keys*requests*perRequest, 30*time.Second)
	// Records come back in partition order; per key, seq must increase.
	last := map[string]int{}
	for _, e := range decodeAll(t, recs) {
		var p struct{ Seq int }
		if err := json.Unmarshal(e.Data, &p); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[e.Key]; ok && p.Seq != prev+1 {
			t.Fatalf("key %s: seq %d after %d", e.Key, p.Seq, prev)
		}
		last[e.Key] = p.Seq
	}
	if len(last) != keys {
		t.Fatalf("%d keys, want %d", len(last), keys)
	}
}

// A retried request with the same idempotency key gets the same ids.
func TestRetryKeepsIDs(t *testing.T) {
	h := newHarness(t, testBrokers(t), nil)
	name := h.putSource(keyedSource(uniqueName("retry"))).GetName()

	single := func() []string {
		return h.mustAccept(name, "application/json", []byte(`{"a":1}`), with(bearer, "Idempotency-Key", "pay-42")...)
	}
	if a, b := single(), single(); !slices.Equal(a, b) || a[0] != "pay-42" {
		t.Errorf("json retry: ids %v then %v, want [pay-42] twice", a, b)
	}
	batch := func() []string {
		return h.mustAccept(name, "application/x-ndjson", []byte("1\n2\n3\n"), with(bearer, "Idempotency-Key", "batch-7")...)
	}
	if a, b := batch(), batch(); !slices.Equal(a, b) || !slices.Equal(a, []string{"batch-7-0", "batch-7-1", "batch-7-2"}) {
		t.Errorf("ndjson retry: ids %v then %v", a, b)
	}
	ce := func() []string {
		return h.mustAccept(name, "application/cloudevents-batch+json",
			[]byte(`[{"specversion":"1.0","id":"x-1"},{"specversion":"1.0","id":"x-2"}]`), bearer...)
	}
	if a, b := ce(), ce(); !slices.Equal(a, b) {
		t.Errorf("cloudevents retry: ids %v then %v", a, b)
	}
	// Documented: without a key, a retry is a new event with a new id.
	a := h.mustAccept(name, "application/json", []byte(`{}`), bearer...)
	b := h.mustAccept(name, "application/json", []byte(`{}`), bearer...)
	if a[0] == b[0] {
		t.Errorf("two requests without a key got the same id %s", a[0])
	}
}

// Sources are added, changed and deleted while the receiver runs.
func TestSourceChangesWithoutRestart(t *testing.T) {
	h := newHarness(t, testBrokers(t), nil)
	name := uniqueName("live")
	if r := h.post(name, "application/json", []byte(`{}`), bearer...); r.status != http.StatusNotFound || !strings.Contains(r.err, "unknown source") {
		t.Fatalf("before creation: %d %s", r.status, r.raw)
	}
	h.putSource(keyedSource(name))
	h.mustAccept(name, "application/json", []byte(`{}`), bearer...)

	// A new key replaces the old one.
	src := keyedSource(name)
	src.Auth.ApiKeys[0].Hash = secret.HashKey("rotated-key")
	h.putSource(src)
	if r := h.post(name, "application/json", []byte(`{}`), bearer...); r.status != http.StatusUnauthorized || !strings.Contains(r.err, "invalid API key") {
		t.Fatalf("old key after rotation: %d %s", r.status, r.raw)
	}
	h.mustAccept(name, "application/json", []byte(`{}`), "Authorization", "Bearer rotated-key")

	// A rate limit takes effect.
	src.RateLimit = &samsav1.RateLimit{PerSecond: 0.001, Burst: 2}
	h.putSource(src)
	h.mustAccept(name, "application/x-ndjson", []byte("1\n2\n"), "Authorization", "Bearer rotated-key")
	r := h.post(name, "application/json", []byte(`{}`), "Authorization", "Bearer rotated-key")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.err, "rate limit") {
		t.Fatalf("over the rate limit: %d %s (Retry-After %q)", r.status, r.raw, r.header.Get("Retry-After"))
	}
	if r := h.post(name, "application/x-ndjson", []byte("1\n2\n3\n"), "Authorization", "Bearer rotated-key"); r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.err, "burst") {
		t.Fatalf("batch above the burst: %d %s", r.status, r.raw)
	}

	h.deleteSource(name)
	if r := h.post(name, "application/json", []byte(`{}`), "Authorization", "Bearer rotated-key"); r.status != http.StatusNotFound {
		t.Fatalf("after deletion: %d %s", r.status, r.raw)
	}
	if n := h.endOffsets(kafka.SourceTopic(name)); n != 4 {
		t.Fatalf("%d records in the topic, want 4", n)
	}
}

// Webhook senders authenticate with signatures whose secrets are sealed in
// the store.
func TestSignedWebhooks(t *testing.T) {
	h := newHarness(t, testBrokers(t), nil)
	body := []byte(`{"action":"opened","number":7}`)
	now := time.Now()

	for _, c := range []struct {
		sig    *samsav1.Signature
		secret string
		check  func(t *testing.T, e *event.Event)
	}{
		{&samsav1.Signature{Preset: "github"}, "gh-secret", func(t *testing.T, e *event.Event) {
			if e.ID != "delivery-1" || e.Type != "pull_request" {
				t.Errorf("github event id %q type %q", e.ID, e.Type)
			}
		}},
		{&samsav1.Signature{Preset: "stripe"}, "whsec_stripe", nil},
		{&samsav1.Signature{Preset: "standard-webhooks"}, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", func(t *testing.T, e *event.Event) {
			if e.ID != "msg_1" {
				t.Errorf("standard webhooks event id %q, want the webhook-id", e.ID)
			}
		}},
		{&samsav1.Signature{Preset: "generic", Header: "X-Signature", Algorithm: "sha512", Encoding: "base64", Prefix: "v1="}, "generic", nil},
	} {
		t.Run(c.sig.Preset, func(t *testing.T) {
			name := uniqueName(c.sig.Preset)
			sig := &samsav1.Signature{Preset: c.sig.Preset, Secret: h.seal(c.secret), Header: c.sig.Header, Algorithm: c.sig.Algorithm, Encoding: c.sig.Encoding, Prefix: c.sig.Prefix}
			h.putSource(&samsav1.Source{Name: name, Auth: &samsav1.SourceAuth{Signature: sig}})
			signed := &samsav1.Signature{Preset: c.sig.Preset, Header: c.sig.Header, Algorithm: c.sig.Algorithm, Encoding: c.sig.Encoding, Prefix: c.sig.Prefix}
			hdr, err := signHeaders(signed, c.secret, body, now, "msg_1")
			if err != nil {
				t.Fatal(err)
			}
			hdr = append(hdr, "X-GitHub-Delivery", "delivery-1", "X-GitHub-Event", "pull_request")
			h.mustAccept(name, "application/json", body, hdr...)
			if r := h.post(name, "application/json", []byte(`{"action":"closed","number":7}`), hdr...); r.status != http.StatusUnauthorized || !strings.Contains(r.err, "signature mismatch") {
				t.Errorf("tampered body: %d %s", r.status, r.raw)
			}
			evs := decodeAll(t, h.records(kafka.SourceTopic(name), 1, 30*time.Second))
			if len(evs) != 1 || string(evs[0].Data) != string(body) {
				t.Fatalf("events %+v", evs)
			}
			if c.check != nil {
				c.check(t, evs[0])
			}
		})
	}
	if n := h.metric("samsa_receiver_auth_failures_total", map[string]string{"reason": "bad_signature"}); n != 4 {
		t.Errorf("bad_signature failures counted: %v, want 4", n)
	}
}

// A source without auth is refused unless the receiver runs --insecure.
func TestSourceWithoutAuth(t *testing.T) {
	brokers := testBrokers(t)
	secure := newHarness(t, brokers, nil)
	name := uniqueName("open")
	secure.putSource(&samsav1.Source{Name: name})
	if r := secure.post(name, "application/json", []byte(`{}`)); r.status != http.StatusUnauthorized || !strings.Contains(r.err, "--insecure") {
		t.Fatalf("secure receiver: %d %s", r.status, r.raw)
	}
	dev := newHarness(t, brokers, func(c *Config) { c.Insecure = true; c.SecretKeys = nil })
	dev.putSource(&samsav1.Source{Name: name})
	dev.mustAccept(name, "application/json", []byte(`{}`))
}

func TestRequestIDAndHealth(t *testing.T) {
	h := newHarness(t, testBrokers(t), nil)
	name := h.putSource(keyedSource(uniqueName("rid"))).GetName()
	r := h.post(name, "application/json", []byte(`{}`), with(bearer, "X-Request-Id", "req-123")...)
	if r.status != http.StatusAccepted || r.header.Get("X-Request-Id") != "req-123" {
		t.Fatalf("status %d, X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	r = h.post(name, "application/json", []byte(`{`), bearer...)
	if _, err := ulid.Time(r.header.Get("X-Request-Id")); r.status != http.StatusBadRequest || err != nil {
		t.Fatalf("status %d, generated X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := h.http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if n := h.metric("samsa_receiver_requests_total", map[string]string{"source": name, "code": "202", "transport": "http"}); n != 1 {
		t.Errorf("202 requests counted: %v", n)
	}
	if n := h.metric("samsa_receiver_rejections_total", map[string]string{"source": name, "reason": "malformed"}); n != 1 {
		t.Errorf("malformed rejections counted: %v", n)
	}
	req, _ := http.NewRequest(http.MethodGet, h.url+"/v1/sources/"+name+"/events", nil)
	if r := h.do(req); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET events: %d %s", r.status, r.raw)
	}
}

func TestConfigRefusesToStartWithoutKeys(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--secret-keys") {
		t.Fatalf("Validate without keys = %v", err)
	}
	cfg.Insecure = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate --insecure = %v", err)
	}
	cfg.MaxBufferedBytes = cfg.MaxBodyBytes
	if err := cfg.Validate(); err == nil {
		t.Fatal("a buffer smaller than two bodies was accepted")
	}
}

// Run returns (with the error) when a server cannot serve, instead of
// waiting for the other one.
func TestRunStopsWhenAServerFails(t *testing.T) {
	brokers := testBrokers(t)
	kcfg := &kafka.Config{Brokers: brokers, ReplicationFactor: 1}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn.Close() // gRPC's Serve fails at once
	cfg := DefaultConfig()
	cfg.Insecure = true
	r, err := New(cfg, kcfg, nil, nil, nil, WithListeners(httpLn, grpcLn))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil after its gRPC listener failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run kept running after its gRPC server failed")
	}
}
