package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/samsa-dev/samsa/pkg/event"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var testLimits = limits{maxEvents: 1000, maxDepth: 64}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func parse(t *testing.T, ct string, h http.Header, body string, preset string) ([]event.Event, error) {
	t.Helper()
	md, mt, err := parseMedia(ct)
	if err != nil {
		return nil, err
	}
	evs, err := parseBody(md, mt, h, []byte(body), testNow, preset, testLimits, nil)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		if err := checkEvent(&evs[i]); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

func TestValidateAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `0`, `-0.5e+10`, `"a\u00e9\n"`, `{"a":[1,true,false,null,{"b":"c"}]}`, ` {"x" : 1 } `,
		`"\u0000"`, `"é漢字🙂"`, `1E5`, `[[[[]]]]`,
		``, `{`, `{"a"}`, `{"a":}`, `[1,]`, `01`, `1.`, `.5`, `-`, `+1`, `"\x"`, `"\u12"`, `tru`, `nul`, `{"a":1,}`,
		"\"a\tb\"", "\"\x01\"", `{} {}`, `[1 2]`, `{"a" 1}`, `"abc`, `NaN`, `1e`, `[`, `]`,
	} {
		want := json.Valid([]byte(s))
		got := validate([]byte(s), 64) == nil
		if got != want {
			t.Errorf("validate(%q) ok=%v, encoding/json says %v", s, got, want)
		}
	}
}

func TestValidateRejectsWhatEncodingJSONLetsThrough(t *testing.T) {
	for _, c := range []struct{ in, msg string }{
		{"\"\xff\"", "invalid UTF-8 byte 0xff in a string"},
		{"{\"a\xc3\":1}", "invalid UTF-8"},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), "nesting deeper than 64 levels"},
		{"\"a\nb\"", `raw control character U+000A in a string`},
	} {
		err := validate([]byte(c.in), 64)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("validate(%q) = %v, want an error containing %q", c.in, err, c.msg)
		}
	}
	if err := validate([]byte(strings.Repeat("[", 64)+strings.Repeat("]", 64)), 64); err != nil {
		t.Errorf("64 levels refused: %v", err)
	}
}

func TestParseFormats(t *testing.T) {
	cases := []struct {
		name   string
		ct     string
		h      http.Header
		body   string
		preset string
		check  func(t *testing.T, evs []event.Event)
	}{
		{
			name: "json with headers", ct: "application/json; charset=UTF-8",
			h:    headers("Ce-Id", "evt-1", "Ce-Type", "order.created", "Ce-Subject", "orders/1", "Ce-Time", "2025-01-02T03:04:05.123Z", "Ce-Source", "/shop", "Ce-Region", "eu", "Samsa-Key", "cust-7", "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Tracestate", "a=b"),
			body: "  {\"amount\": 12}\n",
			check: func(t *testing.T, evs []event.Event) {
				e := evs[0]
				want := event.Event{ID: "evt-1", Type: "order.created", Subject: "orders/1", Time: time.Date(2025, 1, 2, 3, 4, 5, 123e6, time.UTC),
					Key: "cust-7", ContentType: "application/json", Data: []byte(`{"amount": 12}`),
					Attributes:  map[string]string{"source": "/shop", "region": "eu"},
					TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "a=b"}
				eqEvent(t, e, want)
			},
		},
		{
			name: "json idempotency key, time now", ct: "application/json", h: headers("Idempotency-Key", "k1"), body: `[1,2]`,
			check: func(t *testing.T, evs []event.Event) {
				eqEvent(t, evs[0], event.Event{ID: "k1", Time: testNow, ContentType: "application/json", Data: []byte(`[1,2]`)})
			},
		},
		{
			name: "vendor json type kept", ct: "application/vnd.github+json", body: `{}`,
			check: func(t *testing.T, evs []event.Event) {
				if evs[0].ContentType != "application/vnd.github+json" {
					t.Errorf("content type %q", evs[0].ContentType)
				}
			},
		},
		{
			name: "github delivery id and event type", ct: "application/json", preset: "github",
			h: headers("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event", "push"), body: `{}`,
			check: func(t *testing.T, evs []event.Event) {
				if evs[0].ID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || evs[0].Type != "push" {
					t.Errorf("id %q type %q", evs[0].ID, evs[0].Type)
				}
			},
		},
		{
			name: "standard webhooks id", ct: "application/json", preset: "standard-webhooks", h: headers("Webhook-Id", "msg_1"), body: `{}`,
			check: func(t *testing.T, evs []event.Event) {
				if evs[0].ID != "msg_1" {
					t.Errorf("id %q", evs[0].ID)
				}
			},
		},
		{
			name: "percent-encoded ce header", ct: "application/json", h: headers("Ce-Subject", "caf%C3%A9 au lait"), body: `{}`,
			check: func(t *testing.T, evs []event.Event) {
				if evs[0].Subject != "café au lait" {
					t.Errorf("subject %q", evs[0].Subject)
				}
			},
		},
		{
			name: "ndjson ids from idempotency key, blank lines skipped", ct: "application/x-ndjson",
			h: headers("Idempotency-Key", "batch-9", "Ce-Type", "t"), body: "{\"n\":1}\r\n\n  {\"n\":2}  \n{\"n\":3}",
			check: func(t *testing.T, evs []event.Event) {
				if len(evs) != 3 {
					t.Fatalf("%d events", len(evs))
				}
				for i, want := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
					if string(evs[i].Data) != want || evs[i].ID != "batch-9-"+string(rune('0'+i)) || evs[i].Type != "t" {
						t.Errorf("event %d: id %q type %q data %q", i, evs[i].ID, evs[i].Type, evs[i].Data)
					}
				}
			},
		},
		{
			name: "ndjson without key: ids left to generate", ct: "application/ndjson", body: "1\n2\n",
			check: func(t *testing.T, evs []event.Event) {
				if len(evs) != 2 || evs[0].ID != "" || evs[1].ID != "" {
					t.Errorf("%+v", evs)
				}
			},
		},
		{
			name: "cloudevent structured", ct: "application/cloudevents+json; charset=utf-8", h: headers("Samsa-Key", "hdr-key"),
			body: `{"specversion":"1.0","id":"ce-1","source":"/s","type":"t.x","subject":"sub","time":"2025-05-05T05:05:05Z",
				"datacontenttype":"application/json","dataschema":"https://x/s.json","data":{"a":[1,2]},"comexampleext":42,"flag":true,"nothing":null}`,
			check: func(t *testing.T, evs []event.Event) {
				eqEvent(t, evs[0], event.Event{ID: "ce-1", Type: "t.x", Subject: "sub", Time: time.Date(2025, 5, 5, 5, 5, 5, 0, time.UTC),
					Key: "hdr-key", ContentType: "application/json", Data: []byte(`{"a":[1,2]}`),
					Attributes: map[string]string{"source": "/s", "dataschema": "https://x/s.json", "comexampleext": "42", "flag": "true"}})
			},
		},
		{
			name: "cloudevent text data, partitionkey, trace extension", ct: "application/cloudevents+json", h: headers("Samsa-Key", "hdr-key", "Traceparent", "hdr-tp"),
			body: `{"specversion":"1.0","id":"ce-2","datacontenttype":"text/plain","data":"h\u00e9llo\n","partitionkey":"pk","traceparent":"00-abc-def-01"}`,
			check: func(t *testing.T, evs []event.Event) {
				eqEvent(t, evs[0], event.Event{ID: "ce-2", Time: testNow, Key: "pk", ContentType: "text/plain", Data: []byte("héllo\n"), TraceParent: "00-abc-def-01"})
			},
		},
		{
			name: "cloudevent base64", ct: "application/cloudevents+json",
			body: `{"specversion":"1.0","id":"ce-3","data_base64":"AAEC/w=="}`,
			check: func(t *testing.T, evs []event.Event) {
				eqEvent(t, evs[0], event.Event{ID: "ce-3", Time: testNow, ContentType: "application/octet-stream", Data: []byte{0, 1, 2, 255}})
			},
		},
		{
			name: "cloudevents batch", ct: "application/cloudevents-batch+json",
			body: `[{"specversion":"1.0","id":"a","data":1}, {"specversion":"1.0","id":"b","data":{"x":"y"}} ]`,
			check: func(t *testing.T, evs []event.Event) {
				if len(evs) != 2 || evs[0].ID != "a" || string(evs[0].Data) != "1" || evs[1].ID != "b" || string(evs[1].Data) != `{"x":"y"}` {
					t.Errorf("%+v", evs)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.h
			if h == nil {
				h = http.Header{}
			}
			evs, err := parse(t, c.ct, h, c.body, c.preset)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, evs)
			for i := range evs {
				evs[i].Source = "s"
				if evs[i].ID == "" {
					evs[i].ID = "generated"
				}
				if _, err := event.Encode(&evs[i]); err != nil {
					t.Errorf("event %d does not encode: %v", i, err)
				}
			}
		})
	}
}

func eqEvent(t *testing.T, got, want event.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Subject != want.Subject || !got.Time.Equal(want.Time) ||
		got.Key != want.Key || got.ContentType != want.ContentType || !bytes.Equal(got.Data, want.Data) ||
		got.TraceParent != want.TraceParent || got.TraceState != want.TraceState || len(got.Attributes) != len(want.Attributes) {
		t.Fatalf("event\n got %+v\nwant %+v", got, want)
	}
	for k, v := range want.Attributes {
		if got.Attributes[k] != v {
			t.Fatalf("attribute %s = %q, want %q (all: %v)", k, got.Attributes[k], v, got.Attributes)
		}
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65)
	cases := []struct {
		name string
		ct   string
		h    http.Header
		body string
		kind error
		msg  string
	}{
		{"no content type", "", nil, `{}`, ErrUnsupportedMedia, "missing Content-Type"},
		{"text/plain", "text/plain", nil, `{}`, ErrUnsupportedMedia, `unsupported content type "text/plain"`},
		{"latin-1", "application/json; charset=iso-8859-1", nil, `{}`, ErrUnsupportedMedia, `unsupported charset "iso-8859-1"`},
		{"empty json", "application/json", nil, " \n", ErrMalformed, "empty body"},
		{"truncated json", "application/json", nil, `{"a": [1, 2`, ErrMalformed, "line 1, column 12: invalid JSON: unexpected end of input in an array"},
		{"malformed json line 2", "application/json", nil, "{\n  \"a\" 1}", ErrMalformed, "line 2, column 7: invalid JSON: unexpected character '1' after an object key"},
		{"trailing garbage", "application/json", nil, `{} x`, ErrMalformed, "line 1, column 4: invalid JSON: unexpected character 'x' after the JSON value"},
		{"invalid utf-8", "application/json", nil, "{\"a\":\"\xc3\x28\"}", ErrMalformed, "invalid UTF-8 byte 0xc3"},
		{"too deep", "application/json", nil, deep, ErrMalformed, "nesting deeper than 64 levels"},
		{"ndjson bad line 3", "application/x-ndjson", nil, "{}\n{}\n{\"a\":\n{}", ErrMalformed, "line 3, column 6: invalid JSON: unexpected end of input"},
		{"ndjson empty", "application/x-ndjson", nil, "\n\n", ErrMalformed, "empty body"},
		{"ndjson too many", "application/x-ndjson", nil, strings.Repeat("1\n", 1001), ErrTooManyEvents, "line 1001: more than 1000 events"},
		{"bad ce-id", "application/json", headers("Ce-Id", "a\x01b"), `{}`, ErrMalformed, "event id (ce-id or Idempotency-Key header): non-printable character"},
		{"long idempotency key", "application/json", headers("Idempotency-Key", strings.Repeat("k", 257)), `{}`, ErrMalformed, "longer than 256 bytes"},
		{"ids disagree", "application/json", headers("Ce-Id", "a", "Idempotency-Key", "b"), `{}`, ErrMalformed, "disagree"},
		{"bad ce-time", "application/json", headers("Ce-Time", "yesterday"), `{}`, ErrMalformed, `header ce-time: "yesterday" is not an RFC 3339 time`},
		{"bad attribute name", "application/json", headers("Ce-My-Ext", "x"), `{}`, ErrMalformed, `attribute "my-ext"`},
		{"bad percent", "application/json", headers("Ce-Subject", "%zz"), `{}`, ErrMalformed, "invalid percent-encoding"},
		{"ce not object", "application/cloudevents+json", nil, `[1]`, ErrMalformed, "must be a JSON object"},
		{"ce missing id", "application/cloudevents+json", nil, `{"specversion":"1.0"}`, ErrMalformed, "line 1: missing required attribute id"},
		{"ce bad specversion", "application/cloudevents+json", nil, `{"specversion":"0.3","id":"x"}`, ErrMalformed, `specversion must be "1.0"`},
		{"ce data and base64", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","data":1,"data_base64":"AA=="}`, ErrMalformed, "mutually exclusive"},
		{"ce bad base64", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","data_base64":"!!"}`, ErrMalformed, "not valid base64"},
		{"ce object extension", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","ext":{}}`, ErrMalformed, "attribute ext must be a string, number or boolean"},
		{"ce id not string", "application/cloudevents+json", nil, `{"specversion":"1.0","id":5}`, ErrMalformed, "attribute id must be a string"},
		{"ce text data not string", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","datacontenttype":"text/plain","data":5}`, ErrMalformed, "must be a JSON string"},
		{"ce bad time", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","time":"noon"}`, ErrMalformed, `time "noon"`},
		{"ce truncated", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x"`, ErrMalformed, "unexpected end of input"},
		{"ce batch not array", "application/cloudevents-batch+json", nil, `{"specversion":"1.0","id":"x"}`, ErrMalformed, "must be a JSON array"},
		{"ce batch empty", "application/cloudevents-batch+json", nil, `[]`, ErrMalformed, "empty batch"},
		{"ce batch element 2 bad", "application/cloudevents-batch+json", nil, "[{\"specversion\":\"1.0\",\"id\":\"a\"},\n{\"specversion\":\"1.0\"}]", ErrMalformed, "event 2 (line 2): missing required attribute id"},
		{"ce batch non-object", "application/cloudevents-batch+json", nil, `[{"specversion":"1.0","id":"a"}, 7]`, ErrMalformed, "event 2 (line 1): a CloudEvent must be a JSON object"},
		{"ce batch too many", "application/cloudevents-batch+json", nil, "[" + strings.Repeat(`{"specversion":"1.0","id":"a"},`, 1000) + `{"specversion":"1.0","id":"a"}]`, ErrTooManyEvents, "more than 1000 events"},
		{"ce reserved extension", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","Bad":"1"}`, ErrMalformed, `attribute "Bad"`},
		{"ce deep data", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"x","data":` + deep + `}`, ErrMalformed, "nesting deeper than 64 levels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.h
			if h == nil {
				h = http.Header{}
			}
			_, err := parse(t, c.ct, h, c.body, "")
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.kind, c.msg)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "abc", `a"b\c`, "tab\there", "é漢字"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil || got != s {
			t.Errorf("appendJSONString(%q) round-trips to %q, %v", s, got, err)
		}
	}
}

// FuzzParseBody checks the parsers on arbitrary bodies: they never panic,
// every payload they accept as JSON is valid UTF-8 JSON, and every event
// that passes checkEvent can be encoded, so that validation, not Kafka,
// is where a request fails (nothing half-written).
func FuzzParseBody(f *testing.F) {
	f.Add(uint8(0), []byte(`{"a":1}`), "id-1")
	f.Add(uint8(1), []byte("{\"a\":1}\n[2]\n\"x\"\n"), "")
	f.Add(uint8(2), []byte(`{"specversion":"1.0","id":"a","data":{"b":[1,2]},"ext":"v","data_base64":null}`), "")
	f.Add(uint8(3), []byte(`[{"specversion":"1.0","id":"a","datacontenttype":"text/plain","data":"x"},{"specversion":"1.0","id":"b","data_base64":"AA=="}]`), "")
	f.Add(uint8(0), []byte("\"\xff\""), "")
	f.Add(uint8(1), []byte(strings.Repeat("[", 70)), "k")
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, id string) {
		md := media(kind % 4)
		h := http.Header{}
		if id != "" {
			h.Set("Idempotency-Key", id)
		}
		evs, err := parseBody(md, ContentTypeJSON, h, body, testNow, "", limits{maxEvents: 50, maxDepth: 16}, nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Msg == "" {
				t.Fatalf("error %v is not an *Error with a message", err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > 50 {
			t.Fatalf("%d events", len(evs))
		}
		for i := range evs {
			e := &evs[i]
			if isJSONType(e.ContentType) && len(e.Data) > 0 && (!json.Valid(e.Data) || !utf8.Valid(e.Data)) {
				t.Fatalf("event %d: accepted invalid JSON data %q", i, e.Data)
			}
			if checkEvent(e) != nil {
				continue
			}
			e.Source = "s"
			if e.ID == "" {
				e.ID = "generated"
			}
			if _, err := event.Encode(e); err != nil {
				t.Fatalf("event %d passed validation but does not encode: %v", i, err)
			}
		}
	})
}

func BenchmarkParseNDJSON100(b *testing.B) {
	body := ndjsonBody(100, 300)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	h := http.Header{}
	dst := make([]event.Event, 0, 128)
	for b.Loop() {
		evs, err := parseBody(mediaNDJSON, ContentTypeJSON, h, body, testNow, "", testLimits, dst[:0])
		if err != nil || len(evs) != 100 {
			b.Fatal(err, len(evs))
		}
	}
}

// ndjsonBody returns n lines of JSON payloads of about size bytes each.
func ndjsonBody(n, size int) []byte {
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		start := buf.Len()
		buf.WriteString(`{"order_id":"ord-`)
		buf.WriteString(strings.Repeat("0", 6))
		buf.WriteString(`","customer":{"id":"cust-42","name":"Zoë Example","tier":"gold"},"items":[{"sku":"A-1","qty":2,"price":9.99},{"sku":"B-7","qty":1,"price":24.5}],"note":"`)
		for buf.Len()-start < size-3 {
			buf.WriteByte('x')
		}
		buf.WriteString("\"}\n")
	}
	return buf.Bytes()
}

func TestSpecialMatchesByteTable(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			w := uint64(0)
			for i := 7; i >= 0; i-- {
				w = w<<8 | uint64(b[i])
			}
			if got, want := special(w), !strSafe[c]; got != want {
				t.Fatalf("special with byte %#02x at %d = %v, want %v", c, pos, got, want)
			}
		}
	}
}
