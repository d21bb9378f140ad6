package ingest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Every bad request gets its documented status and a JSON error naming the
// problem, and nothing reaches Kafka.
func TestBadInputs(t *testing.T) {
	h := newHarness(t, testBrokers(t), func(c *Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxBufferedBytes = 1 << 20
		c.MaxEventBytes = 8 << 10
	})
	keyed := h.putSource(keyedSource(uniqueName("bad"))).GetName()
	gh := uniqueName("bad-gh")
	h.putSource(&samsav1.Source{Name: gh, Auth: &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "github", Secret: h.seal("gh-secret")}}})
	stripe := uniqueName("bad-stripe")
	h.putSource(&samsav1.Source{Name: stripe, Auth: &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "stripe", Secret: h.seal("whsec_s")}}})
	sw := uniqueName("bad-sw")
	swSecret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	h.putSource(&samsav1.Source{Name: sw, Auth: &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "standard-webhooks", Secret: h.seal(swSecret)}}})
	native := uniqueName("bad-native")
	nativeTopic := kafkatest.Topic(t)
	h.putSource(&samsav1.Source{Name: native, Topic: nativeTopic, Format: "json", Auth: keyedSource("x").Auth})

	body := []byte(`{"amount":12}`)
	sign := func(sig *samsav1.Signature, secret string, b []byte, at time.Time) []string {
		hdr, err := signHeaders(sig, secret, b, at, "msg_1")
		if err != nil {
			t.Fatal(err)
		}
		return hdr
	}
	now := time.Now()
	forgedSW := sign(&samsav1.Signature{Preset: "standard-webhooks"}, "whsec_"+strings.Repeat("A", 32), body, now)
	lines := func(n int) []byte { return []byte(strings.Repeat("{\"n\":1}\n", n)) }

	cases := []struct {
		name    string
		source  string
		ct      string
		body    []byte
		hdr     []string
		status  int
		message string
	}{
		{"malformed JSON", keyed, "application/json", []byte(`{"a" 1}`), bearer, 400, "line 1, column 6: invalid JSON: unexpected character '1' after an object key"},
		{"truncated JSON", keyed, "application/json", []byte(`{"a": [1, 2`), bearer, 400, "invalid JSON: unexpected end of input"},
		{"empty body", keyed, "application/json", nil, bearer, 400, "empty body"},
		{"wrong content type", keyed, "text/plain", body, bearer, 415, `unsupported content type "text/plain"`},
		{"missing content type", keyed, "", body, bearer, 415, "missing Content-Type"},
		{"form post", keyed, "application/x-www-form-urlencoded", []byte("a=1"), bearer, 415, "unsupported content type"},
		{"compressed body", keyed, "application/json", []byte("\x1f\x8b\x08\x00"), with(bearer, "Content-Encoding", "gzip"), 415, `unsupported Content-Encoding "gzip": send the body uncompressed`},
		{"invalid UTF-8", keyed, "application/json", []byte("{\"a\":\"\xff\"}"), bearer, 400, "invalid UTF-8 byte 0xff"},
		{"raw control character", keyed, "application/json", []byte("{\"a\":\"x\x01y\"}"), bearer, 400, "raw control character U+0001"},
		{"too deep", keyed, "application/json", []byte(strings.Repeat("[", 65) + strings.Repeat("]", 65)), bearer, 400, "nesting deeper than 64 levels"},
		{"too big", keyed, "application/x-ndjson", lines(10000), bearer, 413, "larger than the limit of 65536 bytes"},
		{"too many events", keyed, "application/x-ndjson", lines(1001), bearer, 413, "more than 1000 events"},
		{"event too large for a record", keyed, "application/json", []byte(`"` + strings.Repeat("x", 9000) + `"`), bearer, 413, "more than the 8192 bytes a record may hold"},
		{"bad line in a batch", keyed, "application/x-ndjson", []byte("{}\n{}\n{\"a\":}\n{}\n"), bearer, 400, "line 3, column 6: invalid JSON"},
		{"bad event in a CloudEvents batch", keyed, "application/cloudevents-batch+json", []byte(`[{"specversion":"1.0","id":"a"},{"specversion":"1.0"}]`), bearer, 400, "event 2 (line 1): missing required attribute id"},
		{"duplicate ids in a batch", keyed, "application/cloudevents-batch+json", []byte(`[{"specversion":"1.0","id":"a"},{"specversion":"1.0","id":"b"},{"specversion":"1.0","id":"a"}]`), bearer, 400, `event 3: id "a" is also the id of event 1`},
		{"bad ce-id", keyed, "application/json", body, with(bearer, "Ce-Id", "id\twith tab"), 400, "ce-id or Idempotency-Key header): non-printable character"},
		{"too long idempotency key", keyed, "application/json", body, with(bearer, "Idempotency-Key", strings.Repeat("k", 300)), 400, "longer than 256 bytes"},
		{"bad ce-time", keyed, "application/json", body, with(bearer, "Ce-Time", "now"), 400, "not an RFC 3339 time"},
		{"missing API key", keyed, "application/json", body, nil, 401, "missing credentials"},
		{"wrong API key", keyed, "application/json", body, []string{"Authorization", "Bearer nope"}, 401, "invalid API key"},
		{"not a bearer", keyed, "application/json", body, []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "malformed Authorization header"},
		{"bad GitHub signature", gh, "application/json", body, sign(&samsav1.Signature{Preset: "github"}, "wrong", body, now), 401, "signature mismatch in X-Hub-Signature-256"},
		{"missing GitHub signature", gh, "application/json", body, nil, 401, "header X-Hub-Signature-256 is absent"},
		{"expired Stripe timestamp", stripe, "application/json", body, sign(&samsav1.Signature{Preset: "stripe"}, "whsec_s", body, now.Add(-10*time.Minute)), 401, "outside the tolerance of 5m0s"},
		{"forged Standard Webhooks signature", sw, "application/json", body, forgedSW, 401, "signature mismatch in webhook-signature"},
		{"unknown source", uniqueName("nobody"), "application/json", body, bearer, 404, "unknown source"},
		{"native-topic source", native, "application/json", body, bearer, 409, "does not accept events over the receiver"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.post(c.source, c.ct, c.body, c.hdr...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			if !strings.Contains(r.err, c.message) {
				t.Fatalf("error %q does not contain %q", r.err, c.message)
			}
			if len(r.ids) != 0 {
				t.Fatalf("ids %v on an error", r.ids)
			}
		})
	}

	// gRPC shares the validation: a sample of the same mistakes.
	for _, tc := range grpcBadCases(keyed) {
		t.Run("grpc "+tc.name, func(t *testing.T) { tc.run(t, h) })
	}

	for _, s := range []string{keyed, gh, stripe, sw} {
		if n := h.endOffsets(kafka.SourceTopic(s)); n != 0 {
			t.Errorf("source %s: %d records produced by bad requests", s, n)
		}
	}
	if n := h.endOffsets(nativeTopic); n != 0 {
		t.Errorf("native topic: %d records", n)
	}
	// The check above can fail: one good request is seen.
	h.mustAccept(keyed, "application/json", body, bearer...)
	if n := h.endOffsets(kafka.SourceTopic(keyed)); n != 1 {
		t.Errorf("after one good request: %d records, want 1", n)
	}
	if n := h.metric("samsa_receiver_auth_failures_total", map[string]string{"source": stripe, "reason": "timestamp_expired"}); n != 1 {
		t.Errorf("timestamp_expired failures: %v", n)
	}
	if n := h.metric("samsa_receiver_rejections_total", map[string]string{"source": keyed, "reason": "content_type"}); n != 4 {
		t.Errorf("content_type rejections: %v", n)
	}
	_ = http.StatusOK
}
