package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

// The bad-input catalogue (issue 9): every class of bad input, over the
// ingest API (REST and gRPC) and the control API (REST and gRPC), against
// the four services as separate processes on a real broker. Each input gets
// its documented status and a JSON error naming the problem; none of them
// produces a record to any topic or writes to samsa.flows; afterwards every
// service is still ready and a good request still goes all the way through.
// docs/api.md "Bad input" lists the classes.

const (
	biEditorTok = "bi-editor-token-0123456789abcdef"
	biViewerTok = "bi-viewer-token-0123456789abcdef"
	biKey       = "sk_badinput_orders_0123456789"
	biOtherKey  = "sk_badinput_other_0123456789a"
	biGHSecret  = "gh-badinput-secret"
	biWrongTok  = "wrong-token-wrong-token-wrong"
)

// biSWKey is the Standard Webhooks signing key, biSWSecret its whsec_ form.
var (
	biSWKey    = bytes.Repeat([]byte{7}, 32)
	biSWSecret = "whsec_" + base64.StdEncoding.EncodeToString(biSWKey)
)

// Source and flow names of the catalogue.
const (
	biOrders = "bi-orders" // API key biKey; the flow reads it
	biOther  = "bi-other"  // API key biOtherKey
	biSW     = "bi-sw"     // Standard Webhooks signature
	biGH     = "bi-gh"     // GitHub signature
	biNative = "bi-native" // an existing topic, not the receiver's
	biFlow   = "bi-flow"
	biNoSuch = "bi-nosuch"
)

// biCluster is the catalogue's cluster and what it knows about it.
type biCluster struct {
	t        *testing.T
	c        *harness.Cluster
	procs    []*harness.Proc
	ctlGRPC  string // control gRPC address
	rcvGRPC  string // receiver gRPC address
	sink     *harness.Sink
	http     *http.Client
	ctlConn  *grpc.ClientConn
	rcvConn  *grpc.ClientConn
	adminTok string
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	start := time.Now()
	harness.Bin(t, "control") // built once per test binary, shared by every test
	built := time.Now()
	b := newBICluster(t)
	t.Logf("binaries in %s, broker and services ready in %s", built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	before := b.offsets()

	caseStart := time.Now()
	n := 0
	n += b.runHTTP(t, "ingest", b.ingestCases())
	n += b.runGRPC(t, "ingest-grpc", b.ingestGRPCCases())
	n += b.runHTTP(t, "control", b.controlCases())
	n += b.runGRPC(t, "control-grpc", b.controlGRPCCases())
	n += b.runHTTP(t, "roles", b.roleCases())
	n += b.runGRPC(t, "roles-grpc", b.roleGRPCCases())
	n += b.runRaw(t)
	n += b.runDryRuns(t)
	t.Logf("%d bad inputs in %s", n, time.Since(caseStart).Round(time.Millisecond))

	// (2) Nothing was produced or written: every topic (samsa.flows, the
	// source, delivery and dead-letter topics, the native topic) has the
	// end offsets it had before, and no topic was created. samsa.stats is
	// left out: the services report to it on a timer.
	after := b.offsets()
	if d := biDiff(before, after); d != "" {
		t.Errorf("bad inputs changed the topics:\n%s", d)
	}

	// (3) Every service is still up and ready, and logged no panic.
	for _, p := range b.procs {
		if !p.Running() {
			t.Errorf("%s exited", p.Name)
			continue
		}
		if code, body := b.get(p.URL() + "/readyz"); code != http.StatusOK {
			t.Errorf("%s /readyz after the bad inputs: %d %s", p.Name, code, body)
		}
		if tail := p.LogTail(1 << 20); strings.Contains(tail, "panic") {
			t.Errorf("%s logged a panic:\n%s", p.Name, biGrep(tail, "panic"))
		}
	}

	// A good request still works, all the way to the destination, and the
	// offset check above could have failed: the good writes show.
	b.sendGood("after-1")
	if err := b.sink.WaitOK(context.Background(), 2, time.Minute); err != nil {
		t.Errorf("the good event after the bad inputs was not delivered: %v", err)
	}
	if err := b.c.Control().PutSource("bi-after", map[string]any{"partitions": 1}); err != nil {
		t.Errorf("a good PUT after the bad inputs: %v", err)
	}
	final := b.offsets()
	for _, w := range []struct {
		topic string
		grew  bool
	}{{"samsa.flows", true}, {kafka.SourceTopic(biOrders), true}, {kafka.SourceTopic(biOther), false}, {biNativeTopic, false}} {
		if got := final[w.topic].sum() > after[w.topic].sum(); got != w.grew {
			t.Errorf("%s: grew=%v after the good requests, want %v (%v -> %v)", w.topic, got, w.grew, after[w.topic], final[w.topic])
		}
	}
	t.Logf("catalogue: %d bad inputs, %s in all", n, time.Since(start).Round(time.Millisecond))
}

// biNativeTopic is the existing topic of source bi-native.
const biNativeTopic = "bi-native-existing"

func newBICluster(t *testing.T) *biCluster {
	t.Helper()
	c := harness.NewCluster(t)
	b := &biCluster{t: t, c: c, ctlGRPC: harness.FreeAddr(t), rcvGRPC: harness.FreeAddr(t),
		http: &http.Client{Timeout: 20 * time.Second}, adminTok: c.Token}
	// --tokens given twice appends; --grpc-addr given twice takes the last.
	b.procs = append(b.procs,
		c.Start("control", "control-1", "--tokens", "editor:"+biEditorTok+",viewer:"+biViewerTok, "--grpc-addr", b.ctlGRPC),
		c.Start("receiver", "receiver-1", "--grpc-addr", b.rcvGRPC),
		c.Start("transformer", "transformer-1"),
		c.Start("deliverer", "deliverer-1"),
	)
	var err error
	for _, cc := range []struct {
		conn **grpc.ClientConn
		addr string
	}{{&b.ctlConn, b.ctlGRPC}, {&b.rcvConn, b.rcvGRPC}} {
		if *cc.conn, err = grpc.NewClient(cc.addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*cc.conn).Close() })
	}

	// The resources the bad inputs aim at.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.KafkaClient())
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, biNativeTopic); err != nil {
		t.Fatalf("create %s: %v", biNativeTopic, err)
	}
	ctl := c.Control()
	key := func(k string) map[string]any {
		return map[string]any{"apiKeys": []any{map[string]any{"name": "k", "key": k}}}
	}
	for name, src := range map[string]map[string]any{
		biOrders: {"partitions": 1, "auth": key(biKey)},
		biOther:  {"partitions": 1, "auth": key(biOtherKey)},
		biSW:     {"partitions": 1, "auth": map[string]any{"signature": map[string]any{"preset": "standard-webhooks", "secret": biSWSecret}}},
		biGH:     {"partitions": 1, "auth": map[string]any{"signature": map[string]any{"preset": "github", "secret": biGHSecret}}},
		biNative: {"topic": biNativeTopic, "format": "json", "auth": key(biKey)},
	} {
		if err := ctl.PutSource(name, src); err != nil {
			t.Fatalf("source %s: %v", name, err)
		}
	}
	// The receiver learns of sources from samsa.flows: wait until it knows
	// every one (an unauthenticated request is refused, not unknown), so
	// that no case gets a 404 for a source that is merely new.
	for _, name := range []string{biOrders, biOther, biSW, biGH, biNative} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := b.do(http.MethodPost, c.ReceiverURL()+"/v1/sources/"+name+"/events", []string{"Content-Type", "application/json"}, []byte(`{}`))
			if r.err == nil && r.status != http.StatusNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the receiver does not know source %s: %d %v %s", name, r.status, r.err, r.body)
			}
			time.Sleep(50 * time.Millisecond) // polling the receiver's view of samsa.flows
		}
	}
	// One event through the whole pipeline: every service works before the
	// bad inputs. It is sent before the flow exists, so that the flow's
	// start (by time, a minute back) finds it.
	b.sendGood("before-1")
	b.sink = harness.NewSink(t)
	if err := ctl.PutFlow(biFlow, map[string]any{
		"source":      biOrders,
		"destination": map[string]any{"http": map[string]any{"url": b.sink.URL(), "allowPrivateNetwork": true}},
		"delivery":    map[string]any{"retry": map[string]any{"initialBackoff": "100ms", "maxBackoff": "1s"}},
	}); err != nil {
		t.Fatalf("flow: %v", err)
	}
	if err := b.sink.WaitOK(ctx, 1, time.Minute); err != nil {
		t.Fatalf("the good event before the bad inputs: %v", err)
	}
	return b
}

// sendGood posts one good event to bi-orders and fails unless it is accepted.
func (b *biCluster) sendGood(id string) {
	b.t.Helper()
	resp := b.do(http.MethodPost, b.c.ReceiverURL()+"/v1/sources/"+biOrders+"/events",
		[]string{"Authorization", "Bearer " + biKey, "Content-Type", "application/json", "Idempotency-Key", id}, []byte(`{"good":true}`))
	if resp.status != http.StatusAccepted {
		b.t.Fatalf("good event %s: %d %s", id, resp.status, resp.body)
	}
}

// biResp is an HTTP answer.
type biResp struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (b *biCluster) do(method, url string, hdr []string, body []byte) biResp {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return b.doReader(method, url, hdr, rd)
}

// doReader sends body as it is: a reader of unknown length goes chunked.
func (b *biCluster) doReader(method, url string, hdr []string, rd io.Reader) biResp {
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return biResp{err: err}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return biResp{err: err}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return biResp{status: resp.StatusCode, header: resp.Header, body: rb, err: err}
}

func (b *biCluster) get(url string) (int, string) {
	r := b.do(http.MethodGet, url, nil, nil)
	if r.err != nil {
		return 0, r.err.Error()
	}
	return r.status, string(r.body)
}

// biCase is one bad HTTP request and what it must get.
type biCase struct {
	class  string // the catalogue's class (docs/api.md)
	name   string
	method string
	url    string
	hdr    []string // name, value pairs
	body   []byte
	status int
	// msg must be in the error message; code, if set, is the control API's
	// gRPC code name in the body.
	msg  string
	code string
	// chunked sends the body without a Content-Length.
	chunked bool
}

// runHTTP runs the cases: the documented status, a JSON error naming the
// problem (and its code, for the control API), never a 5xx.
func (b *biCluster) runHTTP(t *testing.T, group string, cases []biCase) int {
	t.Run(group, func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.class+"/"+c.name, func(t *testing.T) {
				var r biResp
				if c.chunked {
					r = b.doReader(c.method, c.url, c.hdr, io.MultiReader(bytes.NewReader(c.body)))
				} else {
					r = b.do(c.method, c.url, c.hdr, c.body)
				}
				if r.err != nil {
					t.Fatalf("%s %s: %v", c.method, c.url, r.err)
				}
				if r.status != c.status {
					t.Errorf("status %d, want %d: %s", r.status, c.status, biShort(r.body))
				}
				if c.status < 400 {
					return
				}
				msg, code, ok := biErrorBody(r.body)
				if !ok {
					t.Fatalf("not a JSON error body (Content-Type %q): %s", r.header.Get("Content-Type"), biShort(r.body))
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				if !strings.Contains(msg, c.msg) {
					t.Errorf("error %q does not name the problem: want it to contain %q", msg, c.msg)
				}
				if c.code != "" && code != c.code {
					t.Errorf("code %q, want %q (error %q)", code, c.code, msg)
				}
				if r.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") && strings.HasPrefix(c.url, b.c.ControlURL()) {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
			})
		}
	})
	return len(cases)
}

// biErrorBody reads {"error": "...", "code": "..."} or the streaming
// endpoint's {"error": {"code": N, "message": "..."}}.
func biErrorBody(b []byte) (msg, code string, ok bool) {
	var flat struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(b, &flat); err == nil && flat.Error != "" {
		return flat.Error, flat.Code, true
	}
	var stream struct {
		Error struct {
			Code    codes.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &stream); err == nil && stream.Error.Message != "" {
		return stream.Error.Message, biCodeName(stream.Error.Code), true
	}
	return "", "", false
}

// biCodeName is a gRPC code as the REST error body spells it.
func biCodeName(c codes.Code) string {
	s := c.String() // e.g. InvalidArgument
	var out strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			out.WriteByte('_')
		}
		out.WriteRune(r)
	}
	return strings.ToUpper(out.String())
}

func biShort(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func biGrep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, biShort([]byte(l)))
		}
	}
	return strings.Join(out, "\n")
}

func biWith(hdr []string, kv ...string) []string {
	return append(append([]string(nil), hdr...), kv...)
}

// biSet returns hdr with the value of name replaced.
func biSet(hdr []string, name, value string) []string {
	out := append([]string(nil), hdr...)
	for i := 0; i+1 < len(out); i += 2 {
		if strings.EqualFold(out[i], name) {
			out[i+1] = value
			return out
		}
	}
	return append(out, name, value)
}

// biQuote is s as a JSON string.
func biQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func biDeep(n int) []byte {
	return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
}

// ingestCases are bad requests to the receiver's REST front door.
func (b *biCluster) ingestCases() []biCase {
	ev := func(source string) string { return b.c.ReceiverURL() + "/v1/sources/" + source + "/events" }
	orders := ev(biOrders)
	js := []string{"Authorization", "Bearer " + biKey, "Content-Type", "application/json"}
	nd := []string{"Authorization", "Bearer " + biKey, "Content-Type", "application/x-ndjson"}
	ce := []string{"Authorization", "Bearer " + biKey, "Content-Type", "application/cloudevents+json"}
	batch := []string{"Authorization", "Bearer " + biKey, "Content-Type", "application/cloudevents-batch+json"}
	body := []byte(`{"amount":12}`)
	now := time.Now()
	sw := func(id string, at time.Time, key []byte, b []byte) []string {
		ts := strconv.FormatInt(at.Unix(), 10)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(b)
		return []string{"Content-Type", "application/json", "Webhook-Id", id, "Webhook-Timestamp", ts,
			"Webhook-Signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}
	}
	gh := func(secret string, b []byte) []string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(b)
		return []string{"Content-Type", "application/json", "X-Hub-Signature-256", "sha256=" + hex.EncodeToString(m.Sum(nil))}
	}
	post := func(class, name, url string, hdr []string, body []byte, status int, msg string) biCase {
		return biCase{class: class, name: name, method: http.MethodPost, url: url, hdr: hdr, body: body, status: status, msg: msg}
	}
	huge := bytes.Repeat([]byte(" "), 6<<20) // over the 5 MiB default
	lines := func(n int) []byte { return bytes.Repeat([]byte("{\"n\":1}\n"), n) }
	return []biCase{
		// Malformed and truncated JSON, in every format.
		post("malformed JSON", "object", orders, js, []byte(`{"a" 1}`), 400, "line 1, column 6: invalid JSON"),
		post("malformed JSON", "two values", orders, js, []byte(`{"a":1}{"b":2}`), 400, "after the JSON value"),
		post("malformed JSON", "byte order mark", orders, js, []byte("\xef\xbb\xbf{}"), 400, "invalid JSON"),
		post("malformed JSON", "NDJSON line 3 of 4", orders, nd, []byte("{}\n{}\n{\"a\":}\n{}\n"), 400, "line 3, column 6: invalid JSON"),
		post("malformed JSON", "CloudEvent", orders, ce, []byte(`{"specversion":"1.0",`), 400, "invalid JSON"),
		post("truncated JSON", "object", orders, js, []byte(`{"a": [1, 2`), 400, "unexpected end of input"),
		post("truncated JSON", "string", orders, js, []byte(`"abc`), 400, "unexpected end of input"),
		post("truncated JSON", "empty body", orders, js, nil, 400, "empty body"),
		post("truncated JSON", "CloudEvents batch", orders, batch, []byte(`[{"specversion":"1.0","id":"a"},`), 400, "unexpected end of input"),
		// Wrong types of CloudEvents attributes and structures.
		post("wrong types", "id is a number", orders, ce, []byte(`{"specversion":"1.0","id":5,"type":"t"}`), 400, "attribute id must be a string"),
		post("wrong types", "type is a list", orders, ce, []byte(`{"specversion":"1.0","id":"a","type":["t"]}`), 400, "attribute type must be"),
		post("wrong types", "specversion 0.3", orders, ce, []byte(`{"specversion":"0.3","id":"a"}`), 400, `specversion must be "1.0"`),
		post("wrong types", "batch is an object", orders, batch, []byte(`{"specversion":"1.0","id":"a"}`), 400, "must be a JSON array"),
		post("wrong types", "bad data_base64", orders, ce, []byte(`{"specversion":"1.0","id":"a","data_base64":"!!"}`), 400, "data_base64 is not valid base64"),
		post("wrong types", "ce-time not a time", orders, biWith(js, "Ce-Time", "yesterday"), body, 400, "not an RFC 3339 time"),
		// Huge and deeply nested bodies.
		post("huge body", "6 MiB", orders, js, huge, 413, "larger than the limit of 5242880 bytes"),
		post("huge body", "1001 events", orders, nd, lines(1001), 413, "more than 1000 events"),
		post("huge body", "event over a record's size", orders, js, []byte(`"`+strings.Repeat("x", 1_100_000)+`"`), 413, "bytes a record may hold"),
		post("deep nesting", "65 levels", orders, js, biDeep(65), 400, "nesting deeper than 64 levels"),
		post("deep nesting", "100,000 levels", orders, js, biDeep(100_000), 400, "nesting deeper than 64 levels"),
		post("deep nesting", "in a CloudEvent", orders, ce, []byte(`{"specversion":"1.0","id":"a","type":"t","data":`+string(biDeep(100))+`}`), 400, "nesting deeper than 64 levels"),
		// Invalid UTF-8 and NUL bytes.
		post("invalid UTF-8", "in a string", orders, js, []byte("{\"a\":\"\xff\"}"), 400, "invalid UTF-8"),
		post("invalid UTF-8", "overlong encoding", orders, js, []byte("{\"a\":\"\xc0\xaf\"}"), 400, "invalid UTF-8"),
		post("invalid UTF-8", "partition key", orders, biWith(js, "Samsa-Key", "\xff\xfe"), body, 400, "partition key: invalid UTF-8"),
		post("invalid UTF-8", "charset latin1", orders, biWith(nil, "Authorization", "Bearer "+biKey, "Content-Type", "application/json; charset=latin1"), body, 415, `unsupported charset "latin1"`),
		post("NUL bytes", "raw NUL in a string", orders, js, []byte("{\"a\":\"x\x00y\"}"), 400, "raw control character U+0000"),
		post("NUL bytes", "NUL between values", orders, js, []byte("{}\x00"), 400, "invalid JSON"),
		post("NUL bytes", "NUL in ce-type", orders, biWith(js, "Ce-Type", "a%00b"), body, 400, `type: control character '\x00'`),
		post("NUL bytes", "NUL in the source name", ev("a%00b"), js, body, 404, "unknown source"),
		// Header injection: values the services pass on as headers (ce-*
		// attributes, ids, keys) must not smuggle line breaks or controls.
		post("header injection", "CRLF in ce-type", orders, biWith(js, "Ce-Type", "a%0D%0AX-Evil:%201"), body, 400, `type: control character '\r'`),
		post("header injection", "CRLF in ce-subject", orders, biWith(js, "Ce-Subject", "s%0d%0aHost:%20evil"), body, 400, `subject: control character '\r'`),
		post("header injection", "LF in an extension attribute", orders, biWith(js, "Ce-Tenant", "a%0Ab"), body, 400, `attribute "tenant": control character '\n'`),
		post("header injection", "bad percent-encoding", orders, biWith(js, "Ce-Subject", "a%zz"), body, 400, "header ce-subject: invalid percent-encoding"),
		post("header injection", "tab in Idempotency-Key", orders, biWith(js, "Idempotency-Key", "id\tx"), body, 400, "non-printable character"),
		post("header injection", "CRLF in a CloudEvent id", orders, ce, []byte(`{"specversion":"1.0","id":"a\r\nb","type":"t"}`), 400, "non-printable character"),
		post("header injection", "attribute name", orders, biWith(js, "Ce-Bad_Attr", "x"), body, 400, `attribute "bad_attr": a name is`),
		post("header injection", "ce-id and Idempotency-Key disagree", orders, biWith(js, "Ce-Id", "a", "Idempotency-Key", "b"), body, 400, "disagree"),
		post("header injection", "2 KB partition key", orders, biWith(js, "Samsa-Key", strings.Repeat("k", 2000)), body, 400, "partition key: 2000 bytes"),
		// Unknown fields: CloudEvents extensions must be valid attribute names.
		post("unknown fields", "extension with capitals", orders, ce, []byte(`{"specversion":"1.0","id":"a","type":"t","Bad-Ext":"x"}`), 400, `attribute "Bad-Ext"`),
		post("unknown fields", "traceparent not ASCII", orders, ce, []byte(`{"specversion":"1.0","id":"a","type":"t","traceparent":"\u00e9"}`), 400, "traceparent: want printable ASCII"),
		post("unknown fields", "duplicate ids in a batch", orders, batch, []byte(`[{"specversion":"1.0","id":"a"},{"specversion":"1.0","id":"a"}]`), 400, `id "a" is also the id of event 1`),
		// Names that break topic naming: no such source, ever.
		post("bad names", "capitals and underscore", ev("Bad_Name"), js, body, 404, `unknown source "Bad_Name"`),
		post("bad names", "a Samsa topic", ev("samsa.flows"), js, body, 404, `unknown source "samsa.flows"`),
		post("bad names", "path traversal", ev("..%2F..%2Fx"), js, body, 404, "unknown source"),
		post("bad names", "300 characters", ev(strings.Repeat("a", 300)), js, body, 404, "unknown source"),
		post("bad names", "unknown source", ev(biNoSuch), js, body, 404, `unknown source "bi-nosuch"`),
		post("bad names", "a native topic's source", ev(biNative), js, body, 409, "does not accept events over the receiver"),
		// Content types and methods.
		post("content type", "text/plain", orders, biWith(nil, "Authorization", "Bearer "+biKey, "Content-Type", "text/plain"), body, 415, `unsupported content type "text/plain"`),
		post("content type", "gzip", orders, biWith(js, "Content-Encoding", "gzip"), []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), 415, `unsupported Content-Encoding "gzip": send the body uncompressed`),
		post("content type", "brotli", orders, biWith(js, "Content-Encoding", "br"), body, 415, `unsupported Content-Encoding "br"`),
		post("content type", "missing", orders, biWith(nil, "Authorization", "Bearer "+biKey), body, 415, "missing Content-Type"),
		post("content type", "form", orders, biWith(nil, "Authorization", "Bearer "+biKey, "Content-Type", "application/x-www-form-urlencoded"), []byte("a=1"), 415, "unsupported content type"),
		{class: "content type", name: "GET", method: http.MethodGet, url: orders, hdr: js, status: 405, msg: "method GET not allowed"},
		{class: "content type", name: "unknown path", method: http.MethodPost, url: b.c.ReceiverURL() + "/v2/events", hdr: js, body: body, status: 404, msg: "no such endpoint"},
		// API keys.
		post("credentials", "missing", orders, biWith(nil, "Content-Type", "application/json"), body, 401, "missing credentials"),
		post("credentials", "wrong key", orders, biWith(nil, "Authorization", "Bearer "+biWrongTok, "Content-Type", "application/json"), body, 401, "invalid API key"),
		post("credentials", "another source's key", orders, biWith(nil, "Authorization", "Bearer "+biOtherKey, "Content-Type", "application/json"), body, 401, "invalid API key"),
		post("credentials", "Basic auth", orders, biWith(nil, "Authorization", "Basic dXNlcjpwYXNz", "Content-Type", "application/json"), body, 401, "malformed Authorization header"),
		post("credentials", "control admin token", orders, biWith(nil, "Authorization", "Bearer "+b.adminTok, "Content-Type", "application/json"), body, 401, "invalid API key"),
		post("credentials", "control editor token", orders, biWith(nil, "Authorization", "Bearer "+biEditorTok, "Content-Type", "application/json"), body, 401, "invalid API key"),
		post("credentials", "control viewer token", orders, biWith(nil, "Authorization", "Bearer "+biViewerTok, "Content-Type", "application/json"), body, 401, "invalid API key"),
		// Expired and forged signatures.
		post("signatures", "Standard Webhooks expired", ev(biSW), sw("msg_1", now.Add(-10*time.Minute), biSWKey, body), body, 401, "outside the tolerance"),
		post("signatures", "Standard Webhooks from the future", ev(biSW), sw("msg_1", now.Add(10*time.Minute), biSWKey, body), body, 401, "outside the tolerance"),
		post("signatures", "Standard Webhooks forged", ev(biSW), sw("msg_1", now, bytes.Repeat([]byte{8}, 32), body), body, 401, "signature mismatch in webhook-signature"),
		post("signatures", "Standard Webhooks over another body", ev(biSW), sw("msg_1", now, biSWKey, []byte(`{"amount":1}`)), body, 401, "signature mismatch"),
		post("signatures", "Standard Webhooks for another id", ev(biSW), biSet(sw("msg_1", now, biSWKey, body), "Webhook-Id", "msg_2"), body, 401, "signature mismatch"),
		post("signatures", "Standard Webhooks missing", ev(biSW), biWith(nil, "Content-Type", "application/json"), body, 401, "is absent"),
		post("signatures", "Standard Webhooks garbage", ev(biSW), biSet(sw("msg_1", now, biSWKey, body), "Webhook-Signature", "v1,!!!"), body, 401, "webhook-signature"),
		post("signatures", "Standard Webhooks bad timestamp", ev(biSW), biSet(sw("msg_1", now, biSWKey, body), "Webhook-Timestamp", "soon"), body, 401, "webhook-timestamp"),
		post("signatures", "GitHub forged", ev(biGH), gh("wrong-secret", body), body, 401, "signature mismatch in X-Hub-Signature-256"),
		post("signatures", "GitHub sha1 instead", ev(biGH), biSet(gh(biGHSecret, body), "X-Hub-Signature-256", "sha1=0123"), body, 401, "X-Hub-Signature-256"),
		post("signatures", "GitHub missing", ev(biGH), biWith(nil, "Content-Type", "application/json"), body, 401, "header X-Hub-Signature-256 is absent"),
		post("signatures", "GitHub with an API key instead", ev(biGH), js, body, 401, "this source accepts no API keys"),
	}
}

// runRaw sends requests no well-behaved client sends: control characters
// in header values. Go's HTTP server refuses them before any handler (400,
// plain text, connection closed); the point is that they are refused and
// that nothing is accepted.
func (b *biCluster) runRaw(t *testing.T) int {
	ingest := "POST /v1/sources/" + biOrders + "/events"
	cases := []struct{ name, target, line, hdr string }{
		{"receiver: NUL in ce-type", b.c.ReceiverURL(), ingest, "ce-type: a\x00b"},
		{"receiver: CR in Samsa-Key", b.c.ReceiverURL(), ingest, "Samsa-Key: a\rX-Evil: 1"},
		{"control: NUL in X-Request-Id", b.c.ControlURL(), "PUT /v1/sources/bi-raw", "X-Request-Id: a\x00b"},
	}
	t.Run("raw", func(t *testing.T) {
		for _, c := range cases {
			t.Run("header injection/"+c.name, func(t *testing.T) {
				host := strings.TrimPrefix(c.target, "http://")
				conn, err := net.DialTimeout("tcp", host, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				body := `{"a":1}`
				tok := biKey
				if c.target == b.c.ControlURL() {
					tok = b.adminTok
				}
				fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n\r\n%s",
					c.line, host, tok, len(body), c.hdr, body)
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no HTTP answer: %v", err)
				}
				rb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400: %s", resp.StatusCode, biShort(rb))
				}
			})
		}
	})
	return len(cases)
}

// runDryRuns tests transforms that loop, recurse or allocate without end
// in the dry run (POST /v1/transforms:test): the call answers at once, and
// each event gets the limit it hit, as the transformer would dead-letter it.
func (b *biCluster) runDryRuns(t *testing.T) int {
	cases := []struct{ name, filter, transform, msg string }{
		{"endless loop", "", "def transform(event):\n    while True:\n        pass\n", "transform: line 1, column 1: exceeded the"}, // step or time limit
		{"endless recursion", "", "def f(n):\n    return f(n)\ndef transform(event):\n    return f(1)\n", "function f called recursively"},
		{"doubling a list", "", "def transform(event):\n    x = [1]\n    for i in range(100):\n        x = x + x\n    return len(x)\n", "exceeded the allocation limit"},
		{"doubling a string", "", "def transform(event):\n    s = \"ab\"\n    for i in range(60):\n        s = s + s\n    return s\n", "exceeded the allocation limit"},
		{"100,000 outputs", "", "def transform(event):\n    return [event.data] * 100000\n", "more than 1000 outputs"},
		{"nesting a dict 100,000 deep", "", "def transform(event):\n    x = {}\n    for i in range(100000):\n        x = {\"a\": x}\n    return x\n", "exceeded the"},
		{"filter over 10^8 items", "[x for x in range(100000000)] == []", "", "filter: line 1, column 4: exceeded the"},
	}
	t.Run("dry runs", func(t *testing.T) {
		for _, c := range cases {
			t.Run("transforms/"+c.name, func(t *testing.T) {
				body, _ := json.Marshal(map[string]any{"filter": c.filter, "transform": c.transform, "events": []any{map[string]any{}, map[string]any{}}})
				start := time.Now()
				r := b.do(http.MethodPost, b.c.ControlURL()+"/v1/transforms:test",
					[]string{"Authorization", "Bearer " + biViewerTok, "Content-Type", "application/json"}, body)
				took := time.Since(start)
				if r.err != nil || r.status != http.StatusOK {
					t.Fatalf("%d %v %s", r.status, r.err, biShort(r.body))
				}
				var res struct {
					Results []struct {
						Error string `json:"error"`
					} `json:"results"`
				}
				if err := json.Unmarshal(r.body, &res); err != nil || len(res.Results) != 2 {
					t.Fatalf("results: %v %s", err, biShort(r.body))
				}
				for i, er := range res.Results {
					if !strings.Contains(er.Error, c.msg) {
						t.Errorf("event %d: error %q, want it to contain %q", i+1, er.Error, c.msg)
					}
				}
				// Two events, each bounded by the sandbox's 100ms wall clock.
				if took > 5*time.Second {
					t.Errorf("the dry run took %s", took)
				}
			})
		}
	})
	return len(cases)
}

// biGRPCCase is one bad gRPC call and the status it must get.
type biGRPCCase struct {
	class, name string
	call        func(ctx context.Context) error
	code        codes.Code
	msg         string
}

func (b *biCluster) runGRPC(t *testing.T, group string, cases []biGRPCCase) int {
	t.Run(group, func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.class+"/"+c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				st := status.Convert(c.call(ctx))
				if st.Code() != c.code {
					t.Errorf("code %v, want %v: %q", st.Code(), c.code, st.Message())
				}
				if !strings.Contains(st.Message(), c.msg) {
					t.Errorf("message %q does not name the problem: want it to contain %q", st.Message(), c.msg)
				}
			})
		}
	})
	return len(cases)
}

// biToken returns ctx carrying a bearer token ("" for none).
func biToken(ctx context.Context, tok string) context.Context {
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// rawCodec sends and receives bytes as they are, to put what a proto
// library refuses to encode (invalid UTF-8) on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

// biRawPutSource is a PutSourceRequest whose source name is the raw bytes
// name.
func biRawPutSource(name string) []byte {
	src := protowire.AppendTag(nil, 1, protowire.BytesType)
	src = protowire.AppendString(src, name)
	req := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(req, src)
}

// ingestGRPCCases are bad calls of the receiver's IngestService.
func (b *biCluster) ingestGRPCCases() []biGRPCCase {
	cl := samsav1.NewIngestServiceClient(b.rcvConn)
	pub := func(class, name, tok, source string, evs []*samsav1.IngestEvent, code codes.Code, msg string) biGRPCCase {
		return biGRPCCase{class, name, func(ctx context.Context) error {
			_, err := cl.Publish(biToken(ctx, tok), &samsav1.PublishRequest{Source: source, Events: evs})
			return err
		}, code, msg}
	}
	one := func(e *samsav1.IngestEvent) []*samsav1.IngestEvent {
		if e.Data == nil {
			e.Data = []byte(`{"a":1}`)
		}
		return []*samsav1.IngestEvent{e}
	}
	many := make([]*samsav1.IngestEvent, 1001)
	for i := range many {
		many[i] = &samsav1.IngestEvent{Data: []byte(`1`)}
	}
	stream := func(class, name, tok string, req *samsav1.PublishStreamRequest, code codes.Code, msg string) biGRPCCase {
		return biGRPCCase{class, "stream: " + name, func(ctx context.Context) error {
			st, err := cl.PublishStream(biToken(ctx, tok))
			if err != nil {
				return err
			}
			if err := st.Send(req); err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, code, msg}
	}
	return []biGRPCCase{
		stream("malformed JSON", "first request", biKey, &samsav1.PublishStreamRequest{Source: biOrders, Events: one(&samsav1.IngestEvent{Data: []byte(`{"a" 1}`)})}, codes.InvalidArgument, "event 1: data: line 1, column 6: invalid JSON"),
		stream("credentials", "another source's key", biOtherKey, &samsav1.PublishStreamRequest{Source: biOrders, Events: one(&samsav1.IngestEvent{})}, codes.Unauthenticated, "invalid API key"),
		stream("bad names", "unknown source", biKey, &samsav1.PublishStreamRequest{Source: "Bad_Name", Events: one(&samsav1.IngestEvent{})}, codes.NotFound, "unknown source"),
		pub("malformed JSON", "second event", biKey, biOrders, []*samsav1.IngestEvent{{Data: []byte(`{}`)}, {Data: []byte(`{"a" 1}`)}}, codes.InvalidArgument, "event 2: data: line 1, column 6: invalid JSON"),
		pub("truncated JSON", "data", biKey, biOrders, one(&samsav1.IngestEvent{Data: []byte(`{"a":`)}), codes.InvalidArgument, "unexpected end of input"),
		pub("truncated JSON", "no events", biKey, biOrders, nil, codes.InvalidArgument, "no events"),
		pub("huge body", "1001 events", biKey, biOrders, many, codes.InvalidArgument, "more than 1000"),
		pub("huge body", "6 MiB message", biKey, biOrders, one(&samsav1.IngestEvent{Data: bytes.Repeat([]byte(" "), 6<<20)}), codes.ResourceExhausted, "larger than max"),
		pub("deep nesting", "100,000 levels", biKey, biOrders, one(&samsav1.IngestEvent{Data: biDeep(100_000)}), codes.InvalidArgument, "nesting deeper than 64 levels"),
		pub("invalid UTF-8", "data", biKey, biOrders, one(&samsav1.IngestEvent{Data: []byte("\"\xff\"")}), codes.InvalidArgument, "invalid UTF-8"),
		pub("NUL bytes", "in data", biKey, biOrders, one(&samsav1.IngestEvent{Data: []byte("\"a\x00\"")}), codes.InvalidArgument, "raw control character U+0000"),
		pub("NUL bytes", "in the type", biKey, biOrders, one(&samsav1.IngestEvent{Type: "a\x00b"}), codes.InvalidArgument, "type: control character"),
		pub("header injection", "CRLF in the subject", biKey, biOrders, one(&samsav1.IngestEvent{Subject: "a\r\nHost: evil"}), codes.InvalidArgument, "subject: control character"),
		pub("header injection", "newline in the id", biKey, biOrders, one(&samsav1.IngestEvent{Id: "a\nb"}), codes.InvalidArgument, "id: non-printable character"),
		pub("unknown fields", "reserved attribute", biKey, biOrders, one(&samsav1.IngestEvent{Attributes: map[string]string{"id": "x"}}), codes.InvalidArgument, `attribute "id" is reserved`),
		pub("unknown fields", "attribute name", biKey, biOrders, one(&samsav1.IngestEvent{Attributes: map[string]string{"Bad-Name": "x"}}), codes.InvalidArgument, `attribute "Bad-Name"`),
		pub("bad names", "unknown source", biKey, biNoSuch, one(&samsav1.IngestEvent{}), codes.NotFound, "unknown source"),
		pub("bad names", "capitals", biKey, "Bad_Name", one(&samsav1.IngestEvent{}), codes.NotFound, "unknown source"),
		pub("credentials", "missing", "", biOrders, one(&samsav1.IngestEvent{}), codes.Unauthenticated, "missing credentials"),
		pub("credentials", "another source's key", biOtherKey, biOrders, one(&samsav1.IngestEvent{}), codes.Unauthenticated, "invalid API key"),
		pub("credentials", "control admin token", b.adminTok, biOrders, one(&samsav1.IngestEvent{}), codes.Unauthenticated, "invalid API key"),
	}
}

// controlCases are bad requests to the control REST API, as an admin (or
// without a token, where the class is about credentials).
func (b *biCluster) controlCases() []biCase {
	base := b.c.ControlURL()
	admin := []string{"Authorization", "Bearer " + b.adminTok, "Content-Type", "application/json"}
	put := func(class, name, path, body string, status int, code, msg string) biCase {
		return biCase{class: class, name: name, method: http.MethodPut, url: base + path, hdr: admin, body: []byte(body), status: status, code: code, msg: msg}
	}
	const inv = "INVALID_ARGUMENT"
	dest := `"destination": {"http": {"url": "https://hooks.example.com/x"}}`
	flow := func(extra string) string {
		return `{"source": "` + biOrders + `", ` + dest + extra + `}`
	}
	withURL := func(u string) string {
		return `{"source": "` + biOrders + `", "destination": {"http": {"url": ` + biQuote(u) + `}}}`
	}
	transform := func(code string) string { return flow(`, "transform": ` + biQuote(code)) }
	test := func(body string) []byte { return []byte(body) }
	post := func(class, name, path string, body []byte, status int, code, msg string) biCase {
		return biCase{class: class, name: name, method: http.MethodPost, url: base + path, hdr: admin, body: body, status: status, code: code, msg: msg}
	}
	hugeSrc := `{"description": "` + strings.Repeat("x", 2<<20) + `"}`
	deepData := func(n int) []byte {
		return []byte(`{"filter": "True", "events": [{"data": ` + string(biDeep(n)) + `}]}`)
	}
	ssrf := func(name, u, msg string) biCase {
		return put("SSRF targets", name, "/v1/flows/bi-ssrf", withURL(u), 400, inv, "flow.destination.http.url: "+msg)
	}
	return []biCase{
		// Malformed and truncated JSON.
		put("malformed JSON", "missing colon", "/v1/sources/bi-x", `{"partitions" 3}`, 400, inv, "request body: line 1, column 15: invalid JSON: invalid character '3' after object key"),
		put("malformed JSON", "not JSON at all", "/v1/sources/bi-x", `<source/>`, 400, inv, "request body: line 1, column 1: invalid JSON"),
		put("malformed JSON", "trailing garbage", "/v1/sources/bi-x", `{} x`, 400, inv, "request body: line 1, column 4: invalid JSON: invalid character 'x' after top-level value"),
		put("malformed JSON", "flow", "/v1/flows/bi-x", `{"source": "bi-orders",, }`, 400, inv, "request body: line 1, column 24: invalid JSON"),
		post("malformed JSON", "transform test", "/v1/transforms:test", []byte(`{"filter": True}`), 400, inv, "request body: line 1, column 12: invalid JSON"),
		put("truncated JSON", "object", "/v1/sources/bi-x", `{"partitions": 3`, 400, inv, "request body: invalid JSON: unexpected end of input"),
		put("truncated JSON", "string", "/v1/flows/bi-x", `{"source": "bi-ord`, 400, inv, "request body: invalid JSON: unexpected end of input"),
		// Wrong types.
		put("wrong types", "partitions is a string", "/v1/sources/bi-x", `{"partitions": "three"}`, 400, inv, `invalid value for int32 field partitions: "three"`),
		put("wrong types", "partitions is negative", "/v1/sources/bi-x", `{"partitions": -1}`, 400, inv, "source.partitions: -1 is out of range"),
		put("wrong types", "partitions overflow", "/v1/sources/bi-x", `{"partitions": 1e12}`, 400, inv, "partitions"),
		put("wrong types", "body is a list", "/v1/sources/bi-x", `[1, 2]`, 400, inv, "unexpected token ["),
		put("wrong types", "auth is a string", "/v1/sources/bi-x", `{"auth": "none"}`, 400, inv, "unexpected token \"none\""),
		put("wrong types", "paused is a string", "/v1/flows/bi-x", flow(`, "paused": "yes"`), 400, inv, `invalid value for bool field paused: "yes"`),
		put("wrong types", "version is a word", "/v1/flows/bi-x", flow(`, "version": "abc"`), 400, inv, `invalid value for int64 field version: "abc"`),
		put("wrong types", "two destinations", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com"}, "kafka": {"topic": "t"}}}`, 400, inv, "oneof samsa.v1.Destination.kind is already set"),
		put("wrong types", "timeout is not a duration", "/v1/flows/bi-x", flow(`, "delivery": {"timeout": "forever"}`), 400, inv, `flow.delivery.timeout: "forever" is not a duration`),
		put("wrong types", "timeout out of range", "/v1/flows/bi-x", flow(`, "delivery": {"timeout": "10000h"}`), 400, inv, "flow.delivery.timeout: 10000h is out of range"),
		put("wrong types", "time zone as a path", "/v1/flows/bi-x", flow(`, "delivery": {"maintenanceWindows": [{"cron": "0 2 * * *", "duration": "1h", "timeZone": "../../etc/passwd"}]}`), 400, inv, "is not an IANA time zone"),
		put("wrong types", "cron", "/v1/flows/bi-x", flow(`, "delivery": {"maintenanceWindows": [{"cron": "every sunday", "duration": "1h"}]}`), 400, inv, "flow.delivery.maintenanceWindows[0].cron"),
		put("wrong types", "no destination", "/v1/flows/bi-x", `{"source": "bi-orders"}`, 400, inv, "flow.destination: required"),
		{class: "wrong types", name: "version query is a word", method: http.MethodDelete, url: base + "/v1/flows/" + biFlow + "?version=abc", hdr: admin, status: 400, code: inv, msg: `parsing field "version"`},
		post("wrong types", "1001 sample events", "/v1/transforms:test", []byte(`{"filter": "True", "events": [`+strings.TrimSuffix(strings.Repeat("{},", 1001), ",")+`]}`), 400, inv, "events: 1001 events, at most 1000"),
		// Huge and deeply nested bodies.
		put("huge body", "2 MiB source", "/v1/sources/bi-x", hugeSrc, 413, "RESOURCE_EXHAUSTED", "request body larger than 1048576 bytes"),
		{class: "huge body", name: "2 MiB chunked", method: http.MethodPut, url: base + "/v1/sources/bi-x", hdr: admin, body: []byte(hugeSrc), chunked: true, status: 413, code: "RESOURCE_EXHAUSTED", msg: "request body larger than"},
		post("deep nesting", "5,000 levels of sample data", "/v1/transforms:test", deepData(5000), 400, inv, "request body: JSON nested deeper than"),
		post("deep nesting", "100,000 levels of sample data", "/v1/transforms:test", deepData(100_000), 400, inv, "request body: JSON nested deeper than"),
		// Invalid UTF-8 and NUL bytes.
		put("invalid UTF-8", "description", "/v1/sources/bi-x", "{\"description\": \"\xff\"}", 400, inv, "invalid UTF-8"),
		put("invalid UTF-8", "header value", "/v1/flows/bi-x", "{\"source\": \"bi-orders\", \"destination\": {\"http\": {\"url\": \"https://a.example.com\", \"headers\": {\"X-A\": \"\xc3\x28\"}}}}", 400, inv, "invalid UTF-8"),
		put("NUL bytes", "raw NUL in a string", "/v1/sources/bi-x", "{\"description\": \"a\x00b\"}", 400, inv, "request body: line 1, column 19: invalid JSON: invalid character '\\x00' in string literal"),
		put("NUL bytes", "NUL in the name", "/v1/sources/a%00b", `{}`, 400, inv, `source.name: name "a\x00b" must match`),
		put("NUL bytes", "NUL in a secret header", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "secretHeaders": {"Authorization": "Bearer a\u0000b"}}}}`, 400, inv, "flow.destination.http.secretHeaders[Authorization]: the value holds characters not allowed in a header"),
		put("NUL bytes", "NUL in a header name", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "headers": {"X-A\u0000": "a"}}}}`, 400, inv, "flow.destination.http.headers[X-A\x00]: not a valid header name"),
		// Header injection into what the deliverer sends.
		put("header injection", "CRLF in a header value", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "headers": {"X-A": "a\r\nX-Evil: 1"}}}}`, 400, inv, "flow.destination.http.headers[X-A]: the value holds characters not allowed in a header"),
		put("header injection", "header name with a colon", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "headers": {"X A:": "a"}}}}`, 400, inv, "flow.destination.http.headers[X A:]: not a valid header name"),
		put("header injection", "overriding Host", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "headers": {"Host": "evil.example.com"}}}}`, 400, inv, "headers[Host]: set by Samsa on every request"),
		put("header injection", "overriding webhook-signature", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "headers": {"webhook-signature": "v1,x"}}}}`, 400, inv, "set by Samsa on every request"),
		put("header injection", "CRLF in the URL", "/v1/flows/bi-x", withURL("https://a.example.com/x\r\nHost: evil"), 400, inv, "invalid control character in URL"),
		put("header injection", "signature header name", "/v1/sources/bi-x", `{"auth": {"signature": {"preset": "generic", "secret": "s", "header": "X-Sig\r\nX-Evil", "algorithm": "sha256", "encoding": "hex"}}}`, 400, inv, "source.auth.signature.header"),
		// Unknown fields.
		put("unknown fields", "source", "/v1/sources/bi-x", `{"partitionz": 3}`, 400, inv, `unknown field "partitionz"`),
		put("unknown fields", "flow", "/v1/flows/bi-x", flow(`, "tranform": "x"`), 400, inv, `unknown field "tranform"`),
		put("unknown fields", "nested", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"http": {"url": "https://a.example.com", "method": "DELETE"}}}`, 400, inv, `unknown field "method"`),
		post("unknown fields", "sample event", "/v1/transforms:test", []byte(`{"filter": "True", "events": [{"dta": {}}]}`), 400, inv, `unknown field "dta"`),
		put("unknown fields", "source format", "/v1/sources/bi-x", `{"topic": "bi-native-existing", "format": "xml"}`, 400, inv, "source.format"),
		// Names that break topic naming.
		put("bad names", "capitals and underscore", "/v1/sources/Bad_Name", `{}`, 400, inv, `source.name: name "Bad_Name" must match ^[a-z][a-z0-9-]{0,62}$`),
		put("bad names", "dot", "/v1/sources/a.b", `{}`, 400, inv, `name "a.b" must match`),
		put("bad names", "leading digit", "/v1/flows/1flow", flow(""), 400, inv, `flow.name: name "1flow" must match`),
		put("bad names", "leading dash", "/v1/sources/-a", `{}`, 400, inv, `name "-a" must match`),
		put("bad names", "64 characters", "/v1/sources/a"+strings.Repeat("b", 63), `{}`, 400, inv, "at most 63 characters"),
		put("bad names", "space", "/v1/flows/a%20b", flow(""), 400, inv, `name "a b" must match`),
		put("bad names", "unicode", "/v1/sources/%C3%A9t%C3%A9", `{}`, 400, inv, `name "été" must match`),
		put("bad names", "path traversal", "/v1/sources/..%2Fx", `{}`, 404, "NOT_FOUND", "Not Found"),
		put("bad names", "slash", "/v1/flows/a%2Fb", flow(""), 404, "NOT_FOUND", "Not Found"),
		put("bad names", "reserved topic", "/v1/sources/bi-x", `{"topic": "samsa.flows"}`, 400, inv, `source.topic: "samsa.flows" is reserved`),
		put("bad names", "another source's topic", "/v1/sources/bi-x", `{"topic": "samsa.src.bi-orders"}`, 400, inv, "is reserved for Samsa's own topics"),
		put("bad names", "invalid topic", "/v1/sources/bi-x", `{"topic": "a/b"}`, 400, inv, `source.topic: topic "a/b": character '/' not allowed`),
		put("bad names", "topic ..", "/v1/sources/bi-x", `{"topic": ".."}`, 400, inv, `topic ".." is not a valid name`),
		put("bad names", "topic of 300 characters", "/v1/sources/bi-x", `{"topic": "`+strings.Repeat("t", 300)+`"}`, 400, inv, "source.topic"),
		put("bad names", "flow's source", "/v1/flows/bi-x", `{"source": "Bad Name", `+dest+`}`, 400, inv, `flow.source: name "Bad Name" must match`),
		put("bad names", "unknown source", "/v1/flows/bi-x", `{"source": "bi-nosuch", `+dest+`}`, 400, inv, `flow.source: unknown source "bi-nosuch"`),
		put("bad names", "Kafka destination samsa.flows", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"kafka": {"topic": "samsa.flows"}}}`, 400, inv, "flow.destination.kafka.topic: samsa.flows is one of Samsa's own topics"),
		put("bad names", "Kafka destination loops", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"kafka": {"topic": "samsa.src.bi-orders"}}}`, 400, inv, "every event would loop forever"),
		put("bad names", "Kafka destination with a space", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"kafka": {"topic": "bad topic"}}}`, 400, inv, `topic "bad topic": character ' ' not allowed`),
		put("bad names", "SQL in a table name", "/v1/flows/bi-x", `{"source": "bi-orders", "destination": {"postgres": {"dsn": "postgres://u@db.example.com/x", "table": "x; DROP TABLE y"}}}`, 400, inv, "flow.destination.postgres.table"),
		// Transforms that loop, recurse or allocate without end: refused
		// when their top level runs at validation; in a dry run, each event
		// gets the limit it hit, within a bounded time.
		put("transforms", "compile error", "/v1/flows/bi-x", transform("def transform(event):\n    return amout\n"), 400, inv, "flow.transform: line 2, column 12: undefined: amout"),
		put("transforms", "endless loop at the top level", "/v1/flows/bi-x", transform("while True:\n    pass\ndef transform(event):\n    return event.data\n"), 400, inv, "flow.transform: line 1, column 1: exceeded the"), // step limit, or time limit on a loaded machine
		put("transforms", "recursion at the top level", "/v1/flows/bi-x", transform("def f(n):\n    return f(n + 1)\nx = f(0)\ndef transform(event):\n    return event.data\n"), 400, inv, "function f called recursively"),
		put("transforms", "1 TiB string at the top level", "/v1/flows/bi-x", transform("x = 'a' * (1 << 40)\ndef transform(event):\n    return event.data\n"), 400, inv, "exceeded the allocation limit"),
		put("transforms", "no transform function", "/v1/flows/bi-x", transform("x = 1\n"), 400, inv, "does not define a function transform(event)"),
		put("transforms", "load", "/v1/flows/bi-x", transform("load('os', 'system')\ndef transform(event):\n    return 1\n"), 400, inv, "load is not supported"),
		put("transforms", "filter is a statement", "/v1/flows/bi-x", flow(`, "filter": "import os"`), 400, inv, "flow.filter: line 1, column 1"),
		post("transforms", "dry run compile error", "/v1/transforms:test", test(`{"transform": "def transform(event):\n    return amout\n", "events": [{}]}`), 400, inv, "transform: line 2, column 12: undefined: amout"),
		post("transforms", "redrive filter", "/v1/flows/"+biFlow+"/dlq:redrive", test(`{"filter": "import x"}`), 400, inv, "filter: line 1, column 1"),
		// SSRF targets: refused when the flow is written (the deliverer also
		// refuses them when it dials, after DNS resolution).
		ssrf("loopback", "http://127.0.0.1:8080/", "host 127.0.0.1 is a loopback address"),
		ssrf("localhost", "http://localhost/", "host localhost is a loopback address"),
		ssrf("IPv6 loopback", "http://[::1]/", "host ::1 is a loopback address"),
		ssrf("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/", "host ::ffff:127.0.0.1 is a loopback address"),
		ssrf("cloud metadata address", "http://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is a cloud metadata service"),
		ssrf("cloud metadata name", "http://metadata.google.internal/computeMetadata/v1/", "host metadata.google.internal is a cloud metadata service"),
		ssrf("cloud metadata short name", "http://metadata/", "host metadata is a cloud metadata service"),
		ssrf("private network", "http://10.0.0.1/", "host 10.0.0.1 is a private network address"),
		ssrf("private network 192.168", "https://192.168.1.1/", "host 192.168.1.1 is a private network address"),
		ssrf("unspecified", "http://0.0.0.0/", "host 0.0.0.0 is an unspecified address"),
		ssrf("shared address space", "http://100.64.0.1/", "host 100.64.0.1 is in the shared address space"),
		ssrf("broadcast", "http://255.255.255.255/", "host 255.255.255.255 is a multicast or broadcast address"),
		ssrf("loopback name", "http://api.localhost/", "host api.localhost is a loopback address"),
		ssrf("decimal IPv4", "http://2130706433/", "host 2130706433 is an IPv4 address not in dotted-decimal form"),
		ssrf("hex IPv4", "http://0x7f000001/", "host 0x7f000001 is an IPv4 address not in dotted-decimal form"),
		ssrf("short IPv4", "http://127.1/", "host 127.1 is an IPv4 address not in dotted-decimal form"),
		ssrf("octal IPv4", "http://0177.0.0.1/", "host 0177.0.0.1 is an IPv4 address not in dotted-decimal form"),
		ssrf("NAT64 metadata", "http://[64:ff9b::a9fe:a9fe]/", "host 64:ff9b::a9fe:a9fe is a cloud metadata service (via NAT64)"),
		ssrf("6to4 private", "http://[2002:0a00:0001::1]/", "host 2002:0a00:0001::1 is a private network address (via 6to4)"),
		ssrf("file scheme", "file:///etc/passwd", `scheme "file": want http or https`),
		ssrf("gopher scheme", "gopher://a.example.com/", `scheme "gopher": want http or https`),
		ssrf("credentials in the URL", "http://user:pw@a.example.com/", "credentials in the URL"),
		ssrf("no host", "http:///nohost", "no host"),
		// Credentials (every role against every endpoint: roleCases).
		{class: "credentials", name: "no token", method: http.MethodGet, url: base + "/v1/flows", status: 401, code: "UNAUTHENTICATED", msg: "missing token"},
		{class: "credentials", name: "Basic auth", method: http.MethodGet, url: base + "/v1/flows", hdr: []string{"Authorization", "Basic YWRtaW46YWRtaW4="}, status: 401, code: "UNAUTHENTICATED", msg: "malformed Authorization header"},
		{class: "credentials", name: "empty bearer", method: http.MethodGet, url: base + "/v1/flows", hdr: []string{"Authorization", "Bearer "}, status: 401, code: "UNAUTHENTICATED", msg: "malformed Authorization header"},
		{class: "credentials", name: "truncated admin token", method: http.MethodGet, url: base + "/v1/flows", hdr: []string{"Authorization", "Bearer " + b.adminTok[:len(b.adminTok)-1]}, status: 401, code: "UNAUTHENTICATED", msg: "invalid token"},
		{class: "credentials", name: "an ingest key", method: http.MethodGet, url: base + "/v1/flows", hdr: []string{"Authorization", "Bearer " + biKey}, status: 401, code: "UNAUTHENTICATED", msg: "invalid token"},
		{class: "credentials", name: "token in the query", method: http.MethodGet, url: base + "/v1/flows?access_token=" + b.adminTok, status: 401, code: "UNAUTHENTICATED", msg: "missing token"},
		{class: "credentials", name: "viewer and admin headers", method: http.MethodPut, url: base + "/v1/sources/bi-x", hdr: []string{"Authorization", "Bearer " + biViewerTok, "Authorization", "Bearer " + b.adminTok}, body: []byte(`{}`), status: 403, code: "PERMISSION_DENIED", msg: "role viewer may not call"},
		// Unknown endpoints and methods.
		{class: "endpoints", name: "unknown path", method: http.MethodGet, url: base + "/v2/flows", hdr: admin, status: 404, code: "NOT_FOUND", msg: "no such endpoint"},
		{class: "endpoints", name: "PATCH", method: http.MethodPatch, url: base + "/v1/flows/" + biFlow, hdr: admin, body: []byte(`{}`), status: 405, code: "UNIMPLEMENTED", msg: "Method Not Allowed"},
		{class: "endpoints", name: "form POST to a GET route", method: http.MethodPost, url: base + "/v1/flows/" + biFlow, hdr: biWith(admin[:2], "Content-Type", "application/x-www-form-urlencoded"), body: []byte(`{}`), status: 405, code: "UNIMPLEMENTED", msg: "Method Not Allowed"},
		{class: "endpoints", name: "unknown verb", method: http.MethodPost, url: base + "/v1/flows/" + biFlow + ":explode", hdr: admin, body: []byte(`{}`), status: 405, code: "UNIMPLEMENTED", msg: "Method Not Allowed"},
		{class: "endpoints", name: "unknown flow", method: http.MethodGet, url: base + "/v1/flows/" + biNoSuch + "/status", hdr: admin, status: 404, code: "NOT_FOUND", msg: `flow "bi-nosuch": not found`},
		{class: "endpoints", name: "stale version", method: http.MethodDelete, url: base + "/v1/flows/" + biFlow + "?version=1", hdr: admin, status: 409, code: "ABORTED", msg: "version"},
	}
}

// controlGRPCCases are bad calls of the control gRPC API.
func (b *biCluster) controlGRPCCases() []biGRPCCase {
	src := samsav1.NewSourceServiceClient(b.ctlConn)
	flows := samsav1.NewFlowServiceClient(b.ctlConn)
	trans := samsav1.NewTransformServiceClient(b.ctlConn)
	admin := func(ctx context.Context) context.Context { return biToken(ctx, b.adminTok) }
	putSrc := func(class, name string, s *samsav1.Source, code codes.Code, msg string) biGRPCCase {
		return biGRPCCase{class, name, func(ctx context.Context) error {
			_, err := src.PutSource(admin(ctx), &samsav1.PutSourceRequest{Source: s})
			return err
		}, code, msg}
	}
	httpDest := func(u string) *samsav1.Destination {
		return &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{Url: u}}}
	}
	putFlow := func(class, name string, f *samsav1.Flow, code codes.Code, msg string) biGRPCCase {
		if f.Name == "" {
			f.Name = "bi-x"
		}
		if f.Source == "" {
			f.Source = biOrders
		}
		return biGRPCCase{class, name, func(ctx context.Context) error {
			_, err := flows.PutFlow(admin(ctx), &samsav1.PutFlowRequest{Flow: f})
			return err
		}, code, msg}
	}
	raw := func(class, name, method string, msg []byte, code codes.Code, want string) biGRPCCase {
		return biGRPCCase{class, name, func(ctx context.Context) error {
			var out []byte
			return b.ctlConn.Invoke(admin(ctx), method, &msg, &out, grpc.ForceCodec(rawCodec{}))
		}, code, want}
	}
	deepValue := func(n int) *structpb.Value {
		v := structpb.NewListValue(&structpb.ListValue{})
		for range n {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		}
		return v
	}
	inv := codes.InvalidArgument
	return []biGRPCCase{
		// What protobuf cannot carry is refused by the gRPC runtime itself,
		// before any handler, with INTERNAL and a message naming it.
		raw("malformed protobuf", "garbage", "/samsa.v1.SourceService/PutSource", []byte{0xff, 0xff, 0xff}, codes.Internal, "failed to unmarshal the received message"),
		raw("truncated protobuf", "length past the end", "/samsa.v1.SourceService/PutSource", []byte{0x0a, 0x10, 0x0a}, codes.Internal, "failed to unmarshal the received message"),
		raw("invalid UTF-8", "source name", "/samsa.v1.SourceService/PutSource", biRawPutSource("\xff\xfe"), codes.Internal, "invalid UTF-8"),
		// A field of the wrong wire type is an unknown field to protobuf:
		// the name stays empty, which is invalid.
		raw("wrong types", "name as a varint", "/samsa.v1.SourceService/GetSource", []byte{0x08, 0x01}, codes.InvalidArgument, "name: name is empty"),
		{"deep nesting", "5,000 levels of sample data", func(ctx context.Context) error {
			_, err := trans.Test(admin(ctx), &samsav1.TestRequest{Filter: "True", Events: []*samsav1.TestEvent{{Data: deepValue(5000)}}})
			return err
		}, codes.Internal, "exceeded maximum recursion depth"},
		{"huge body", "2 MiB source", func(ctx context.Context) error {
			_, err := src.PutSource(admin(ctx), &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: "bi-x", Description: strings.Repeat("x", 2<<20)}})
			return err
		}, codes.ResourceExhausted, "larger than max"},
		putSrc("wrong types", "partitions out of range", &samsav1.Source{Name: "bi-x", Partitions: 5000}, inv, "source.partitions: 5000 is out of range"),
		putSrc("NUL bytes", "NUL in the name", &samsav1.Source{Name: "a\x00b"}, inv, `source.name: name "a\x00b" must match`),
		putSrc("bad names", "capitals", &samsav1.Source{Name: "Bad_Name"}, inv, `name "Bad_Name" must match`),
		putSrc("bad names", "empty", &samsav1.Source{}, inv, "source.name"),
		putSrc("bad names", "reserved topic", &samsav1.Source{Name: "bi-x", Topic: "samsa.dlq.bi-flow"}, inv, "is reserved for Samsa's own topics"),
		putSrc("unknown fields", "source format", &samsav1.Source{Name: "bi-x", Topic: biNativeTopic, Format: "xml"}, inv, "source.format"),
		putFlow("header injection", "CRLF in a header value", &samsav1.Flow{Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{Url: "https://a.example.com", Headers: map[string]string{"X-A": "a\r\nX-Evil: 1"}}}}}, inv, "the value holds characters not allowed in a header"),
		putFlow("bad names", "unknown source", &samsav1.Flow{Source: biNoSuch, Destination: httpDest("https://a.example.com")}, inv, `flow.source: unknown source "bi-nosuch"`),
		putFlow("transforms", "endless loop at the top level", &samsav1.Flow{Transform: "while True:\n    pass\ndef transform(event):\n    return 1\n", Destination: httpDest("https://a.example.com")}, inv, "flow.transform: line 1, column 1: exceeded the"),
		putFlow("SSRF targets", "cloud metadata", &samsav1.Flow{Destination: httpDest("http://169.254.169.254/")}, inv, "cloud metadata service"),
		putFlow("SSRF targets", "metadata name", &samsav1.Flow{Destination: httpDest("http://metadata.google.internal/")}, inv, "cloud metadata service"),
		putFlow("SSRF targets", "decimal IPv4", &samsav1.Flow{Destination: httpDest("http://2130706433/")}, inv, "not in dotted-decimal form"),
		putFlow("wrong types", "no destination", &samsav1.Flow{}, inv, "flow.destination: required"),
		{"transforms", "dry run with 1001 events", func(ctx context.Context) error {
			_, err := trans.Test(admin(ctx), &samsav1.TestRequest{Filter: "True", Events: make([]*samsav1.TestEvent, 1001)})
			return err
		}, inv, "1001 events, at most 1000"},
		{"bad names", "status of an unknown flow", func(ctx context.Context) error {
			_, err := flows.GetFlowStatus(admin(ctx), &samsav1.GetFlowStatusRequest{Name: biNoSuch})
			return err
		}, codes.NotFound, `flow "bi-nosuch": not found`},
		{"credentials", "no token", func(ctx context.Context) error {
			_, err := flows.ListFlows(ctx, &samsav1.ListFlowsRequest{})
			return err
		}, codes.Unauthenticated, "missing token"},
		{"credentials", "an ingest key", func(ctx context.Context) error {
			_, err := flows.ListFlows(biToken(ctx, biKey), &samsav1.ListFlowsRequest{})
			return err
		}, codes.Unauthenticated, "invalid token"},
		{"credentials", "viewer writes", func(ctx context.Context) error {
			_, err := src.PutSource(biToken(ctx, biViewerTok), &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: "bi-x"}})
			return err
		}, codes.PermissionDenied, "role viewer may not call samsa.v1.SourceService/PutSource"},
	}
}

// biRoleTokens are the callers of the role matrix: none, a wrong token, an
// ingest key, and a token of each role.
func (b *biCluster) roleTokens() []struct {
	name, tok string
	role      int // 0 none, 1 viewer, 2 editor, 3 admin
} {
	return []struct {
		name, tok string
		role      int
	}{{"no token", "", 0}, {"wrong token", biWrongTok, 0}, {"ingest key", biKey, 0},
		{"viewer", biViewerTok, 1}, {"editor", biEditorTok, 2}, {"admin", b.adminTok, 3}}
}

// roleCases call every REST endpoint with every kind of caller. A call the
// role allows is made so that it changes nothing (a validation error, an
// unknown name, a read): it must get that answer, not 401 or 403.
func (b *biCluster) roleCases() []biCase {
	base := b.c.ControlURL()
	endpoints := []struct {
		method, path, body string
		need               int // role needed
		status             int // the answer once allowed
	}{
		{"GET", "/v1/sources", "", 1, 200},
		{"GET", "/v1/sources/" + biOrders, "", 1, 200},
		{"PUT", "/v1/sources/" + biOrders, `{"partitions": -1}`, 2, 400},
		{"DELETE", "/v1/sources/" + biNoSuch, "", 2, 404},
		{"GET", "/v1/sourcestatuses", "", 1, 200},
		{"GET", "/v1/flows", "", 1, 200},
		{"GET", "/v1/flows/" + biFlow, "", 1, 200},
		{"PUT", "/v1/flows/" + biFlow, `{"source": "` + biOrders + `"}`, 2, 400},
		{"DELETE", "/v1/flows/" + biNoSuch, "", 2, 404},
		{"POST", "/v1/flows/" + biNoSuch + ":pause", `{}`, 2, 404},
		{"POST", "/v1/flows/" + biNoSuch + ":resume", `{}`, 2, 404},
		{"GET", "/v1/flows/" + biFlow + "/status", "", 1, 200},
		{"GET", "/v1/flowstatuses", "", 1, 200},
		{"POST", "/v1/flows/" + biNoSuch + "/dlq:redrive", `{}`, 2, 404},
		{"GET", "/v1/whoami", "", 1, 200},
		{"POST", "/v1/transforms:test", `{"filter": "True", "events": [{}]}`, 1, 200},
	}
	var cases []biCase
	for _, ep := range endpoints {
		for _, tk := range b.roleTokens() {
			c := biCase{class: "roles", name: ep.method + " " + ep.path + " as " + tk.name, method: ep.method, url: base + ep.path,
				hdr: []string{"Content-Type", "application/json"}}
			if ep.body != "" {
				c.body = []byte(ep.body)
			}
			if tk.tok != "" {
				c.hdr = append(c.hdr, "Authorization", "Bearer "+tk.tok)
			}
			switch {
			case tk.role == 0:
				c.status, c.code, c.msg = 401, "UNAUTHENTICATED", "token"
			case tk.role < ep.need:
				c.status, c.code, c.msg = 403, "PERMISSION_DENIED", "may not call"
			default:
				c.status = ep.status
			}
			cases = append(cases, c)
		}
	}
	return cases
}

// roleGRPCCases call every gRPC method of the control API with every kind
// of caller, the same way.
func (b *biCluster) roleGRPCCases() []biGRPCCase {
	src := samsav1.NewSourceServiceClient(b.ctlConn)
	flows := samsav1.NewFlowServiceClient(b.ctlConn)
	trans := samsav1.NewTransformServiceClient(b.ctlConn)
	who := samsav1.NewAuthServiceClient(b.ctlConn)
	type method struct {
		name string
		need int
		ok   codes.Code
		call func(ctx context.Context) error
	}
	e := func(_ any, err error) error { return err }
	methods := []method{
		{"GetSource", 1, codes.OK, func(ctx context.Context) error {
			return e(src.GetSource(ctx, &samsav1.GetSourceRequest{Name: biOrders}))
		}},
		{"ListSources", 1, codes.OK, func(ctx context.Context) error { return e(src.ListSources(ctx, &samsav1.ListSourcesRequest{})) }},
		{"PutSource", 2, codes.InvalidArgument, func(ctx context.Context) error {
			return e(src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: biOrders, Partitions: -1}}))
		}},
		{"DeleteSource", 2, codes.NotFound, func(ctx context.Context) error {
			return e(src.DeleteSource(ctx, &samsav1.DeleteSourceRequest{Name: biNoSuch}))
		}},
		{"ListSourceStatuses", 1, codes.OK, func(ctx context.Context) error {
			return e(src.ListSourceStatuses(ctx, &samsav1.ListSourceStatusesRequest{}))
		}},
		{"GetFlow", 1, codes.OK, func(ctx context.Context) error { return e(flows.GetFlow(ctx, &samsav1.GetFlowRequest{Name: biFlow})) }},
		{"ListFlows", 1, codes.OK, func(ctx context.Context) error { return e(flows.ListFlows(ctx, &samsav1.ListFlowsRequest{})) }},
		{"PutFlow", 2, codes.InvalidArgument, func(ctx context.Context) error {
			return e(flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: &samsav1.Flow{Name: biFlow, Source: biOrders}}))
		}},
		{"DeleteFlow", 2, codes.NotFound, func(ctx context.Context) error {
			return e(flows.DeleteFlow(ctx, &samsav1.DeleteFlowRequest{Name: biNoSuch}))
		}},
		{"PauseFlow", 2, codes.NotFound, func(ctx context.Context) error {
			return e(flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: biNoSuch}))
		}},
		{"ResumeFlow", 2, codes.NotFound, func(ctx context.Context) error {
			return e(flows.ResumeFlow(ctx, &samsav1.ResumeFlowRequest{Name: biNoSuch}))
		}},
		{"GetFlowStatus", 1, codes.OK, func(ctx context.Context) error {
			return e(flows.GetFlowStatus(ctx, &samsav1.GetFlowStatusRequest{Name: biFlow}))
		}},
		{"ListFlowStatuses", 1, codes.OK, func(ctx context.Context) error {
			return e(flows.ListFlowStatuses(ctx, &samsav1.ListFlowStatusesRequest{}))
		}},
		{"RedriveDLQ", 2, codes.NotFound, func(ctx context.Context) error {
			st, err := flows.RedriveDLQ(ctx, &samsav1.RedriveDLQRequest{Name: biNoSuch})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}},
		{"GetCaller", 1, codes.OK, func(ctx context.Context) error { return e(who.GetCaller(ctx, &samsav1.GetCallerRequest{})) }},
		{"Test", 1, codes.OK, func(ctx context.Context) error {
			return e(trans.Test(ctx, &samsav1.TestRequest{Filter: "True", Events: []*samsav1.TestEvent{{}}}))
		}},
	}
	// Every method of the control API is in the matrix.
	covered := map[string]bool{}
	for _, m := range methods {
		covered[m.name] = true
	}
	var missing []string
	for _, sd := range []grpc.ServiceDesc{samsav1.SourceService_ServiceDesc, samsav1.FlowService_ServiceDesc, samsav1.TransformService_ServiceDesc, samsav1.AuthService_ServiceDesc} {
		for _, m := range sd.Methods {
			if !covered[m.MethodName] {
				missing = append(missing, m.MethodName)
			}
		}
		for _, s := range sd.Streams {
			if !covered[s.StreamName] {
				missing = append(missing, s.StreamName)
			}
		}
	}
	if len(missing) > 0 {
		b.t.Errorf("control methods missing from the role matrix: %v", missing)
	}
	var cases []biGRPCCase
	for _, m := range methods {
		for _, tk := range b.roleTokens() {
			c := biGRPCCase{class: "roles", name: m.name + " as " + tk.name, code: m.ok}
			switch {
			case tk.role == 0:
				c.code, c.msg = codes.Unauthenticated, "token"
			case tk.role < m.need:
				c.code, c.msg = codes.PermissionDenied, "may not call"
			}
			tok := tk.tok
			call := m.call
			c.call = func(ctx context.Context) error { return call(biToken(ctx, tok)) }
			cases = append(cases, c)
		}
	}
	return cases
}

// biOffsets are the end offsets of a topic's partitions.
type biOffsets map[int32]int64

func (o biOffsets) sum() int64 {
	var n int64
	for _, v := range o {
		n += v
	}
	return n
}

// offsets returns the end offsets of every topic but Kafka's internal ones
// and samsa.stats (written on a timer).
func (b *biCluster) offsets() map[string]biOffsets {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(b.c.KafkaClient())
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		b.t.Fatalf("list topics: %v", err)
	}
	var names []string
	for _, td := range topics.Sorted() {
		if strings.HasPrefix(td.Topic, "__") || td.Topic == "samsa.stats" {
			continue
		}
		names = append(names, td.Topic)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		b.t.Fatalf("end offsets: %v", err)
	}
	out := map[string]biOffsets{}
	for _, name := range names {
		out[name] = biOffsets{}
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			b.t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// biDiff describes how two offset snapshots differ, or "" if they do not.
func biDiff(before, after map[string]biOffsets) string {
	var lines []string
	for name, a := range after {
		bo, ok := before[name]
		if !ok {
			lines = append(lines, fmt.Sprintf("  new topic %s: %v", name, a))
			continue
		}
		for p, off := range a {
			if bo[p] != off {
				lines = append(lines, fmt.Sprintf("  %s/%d: end offset %d -> %d", name, p, bo[p], off))
			}
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			lines = append(lines, fmt.Sprintf("  topic %s disappeared", name))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
