package script

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/event"
)

// identity re-encodes the payload. (Returning event.data itself would fan
// out a JSON array and drop null.)
const identity = "def transform(event):\n    return emit(event.data)\n"

func testEvent(data string) *event.Event {
	return &event.Event{
		ID:          "evt-1",
		Source:      "shop",
		Type:        "order.created",
		Subject:     "orders/42",
		Time:        time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC),
		Key:         "cus_42",
		ContentType: "application/json",
		Data:        []byte(data),
		Attributes:  map[string]string{"tenant": "acme", "region": "eu"},
	}
}

// mustCompile compiles with a generous time limit (tests run on loaded
// machines and under the race detector); opts may override it.
func mustCompile(t testing.TB, filter, transform string, opts ...Option) *Program {
	t.Helper()
	p, err := Compile(filter, transform, append([]Option{WithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func run(t testing.TB, p *Program, ev *event.Event) Result {
	t.Helper()
	res, err := p.Run(context.Background(), ev)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// transformOne runs a transform on data and returns the single output's data.
func transformOne(t *testing.T, transform, data string) string {
	t.Helper()
	res := run(t, mustCompile(t, "", transform), testEvent(data))
	if !res.Kept || len(res.Outputs) != 1 {
		t.Fatalf("got %+v, want one output", res)
	}
	return string(res.Outputs[0].Data)
}

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"int", `12`, `12`},
		{"zero", `0`, `0`},
		{"negative int", `-7`, `-7`},
		{"minus zero int", `-0`, `0`},
		{"int64 max", `9223372036854775807`, `9223372036854775807`},
		{"int64 min", `-9223372036854775808`, `-9223372036854775808`},
		{"big int", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"negative big int", `-98765432109876543210987654321`, `-98765432109876543210987654321`},
		{"float", `1.5`, `1.5`},
		{"negative float", `-0.25`, `-0.25`},
		{"integral float", `2.0`, `2.0`},
		{"exponent", `1e3`, `1000.0`},
		{"negative exponent", `1.5e-10`, `1.5e-10`},
		{"large exponent", `2.5E+30`, `2.5e+30`},
		{"float precision", `0.1`, `0.1`},
		{"string", `"hello"`, `"hello"`},
		{"empty string", `""`, `""`},
		{"unicode", `"héllo wörld ☃ 😀"`, `"héllo wörld ☃ 😀"`},
		{"escapes", `"q\"b\\s\/n\nt\tr\rb\bf\f"`, `"q\"b\\s/n\nt\tr\rb\bf\f"`},
		{"unicode escapes", `"\u00e9\u2603\ud83d\ude00"`, `"é☃😀"`},
		{"control escape", `"\u0001\u001f"`, `"\u0001\u001f"`},
		{"lone surrogate", `"\ud800x"`, "\"\uFFFDx\""},
		{"invalid utf8", "\"a\xffb\"", "\"a\uFFFDb\""},
		{"html stays", `"<a&b>"`, `"<a&b>"`},
		{"true", `true`, `true`},
		{"false", `false`, `false`},
		{"null", `null`, `null`},
		{"empty array", `[]`, `[]`},
		{"empty object", `{}`, `{}`},
		{"nested", `{"a":[1,{"b":null,"c":[true,false]}],"d":{"e":{"f":"g"}}}`, `{"a":[1,{"b":null,"c":[true,false]}],"d":{"e":{"f":"g"}}}`},
		{"key order kept", `{"z":1,"a":2,"m":3}`, `{"z":1,"a":2,"m":3}`},
		{"duplicate keys", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{"white space", " \n\t{ \"a\" : [ 1 , 2 ] }\r\n", `{"a":[1,2]}`},
		{"empty payload", ``, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transformOne(t, identity, tt.in); got != tt.want {
				t.Errorf("identity(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestJSONTypesInStarlark(t *testing.T) {
	const transform = `
def transform(event):
    return {k: [type(v), repr(v)] for k, v in event.data.items()}
`
	got := transformOne(t, transform, `{"i":12,"n":-3,"big":123456789012345678901234567890,"f":1.5,"e":1e2,"s":"x","t":true,"z":null,"l":[1],"o":{}}`)
	want := `{"i":["int","12"],"n":["int","-3"],"big":["int","123456789012345678901234567890"],"f":["float","1.5"],"e":["float","100.0"],"s":["string","\"x\""],"t":["bool","True"],"z":["NoneType","None"],"l":["list","[1]"],"o":["dict","{}"]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestStarlarkToJSON(t *testing.T) {
	tests := []struct {
		name, expr, want string
	}{
		{"int", `42`, `42`},
		{"negative", `-5`, `-5`},
		{"big int", `1 << 100`, `1267650600228229401496703205376`},
		{"float", `2.5`, `2.5`},
		{"integral float", `4 / 2`, `2.0`},
		{"tiny float", `1e-7`, `1e-7`},
		{"huge float", `1e21`, `1e+21`},
		{"string", `"é\n\"\x01"`, `"é\n\"\u0001"`},
		{"bool", `True`, `true`},
		{"none in list", `emit([None])`, `[null]`},
		{"tuple", `{"t": (1, "a")}`, `{"t":[1,"a"]}`},
		{"nested", `{"a": {"b": [1, 2.0, {"c": None}]}}`, `{"a":{"b":[1,2.0,{"c":null}]}}`},
		{"dict order", `{"b": 1, "a": 2}`, `{"b":1,"a":2}`},
		{"time", `{"t": time.parse("2024-01-02T03:04:05.5Z")}`, `{"t":"2024-01-02T03:04:05.5Z"}`},
		{"emitted array", `emit([1, 2])`, `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := transformOne(t, "def transform(event):\n    return "+tt.expr+"\n", `{}`)
			if got != tt.want {
				t.Errorf("%s -> %s, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestInvalidPayload(t *testing.T) {
	for _, data := range []string{`{`, `{"a":}`, `[1,]`, `01`, `1.`, `+1`, `"\x"`, "\"a\nb\"", `nul`, `{"a":1}x`, `1e999`, `[` + strings.Repeat("[", 2000) + `]`} {
		p := mustCompile(t, "", identity)
		_, err := p.Run(context.Background(), testEvent(data))
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(se.Msg, "event.data") || se.Line != 2 {
			t.Errorf("payload %.20q: got %v, want an *Error on line 2 about event.data", data, err)
		}
	}
}

func TestEventAttributes(t *testing.T) {
	const transform = `
def transform(event):
    return {
        "id": event.id, "source": event.source, "type": event.type,
        "subject": event.subject, "time": event.time, "key": event.key,
        "content_type": event.content_type, "attributes": event.attributes,
        "raw": str(event.raw), "has_data": event.data != None,
    }
`
	got := transformOne(t, transform, `{"a":1}`)
	want := `{"id":"evt-1","source":"shop","type":"order.created","subject":"orders/42","time":"2024-05-01T12:00:00.123456Z","key":"cus_42","content_type":"application/json","attributes":{"region":"eu","tenant":"acme"},"raw":"{\"a\":1}","has_data":true}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEventReadOnly(t *testing.T) {
	tests := []struct{ body, want string }{
		{`event.type = "x"`, "can't assign to .type field of event"},
		{`event.attributes["x"] = "y"`, "frozen"},
		{`event.nope`, "event has no .nope field or method"},
	}
	for _, tt := range tests {
		p := mustCompile(t, "", "def transform(event):\n    "+tt.body+"\n    return None\n")
		_, err := p.Run(context.Background(), testEvent(`{}`))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.body, err, tt.want)
		}
	}
}

func TestDataIsMutableCopy(t *testing.T) {
	const transform = `
def transform(event):
    d = event.data
    d["total"] = d["amount"] * 2
    d.pop("secret")
    return d
`
	p := mustCompile(t, "", transform)
	ev := testEvent(`{"amount":21,"secret":"x"}`)
	for range 2 { // the second run must see a fresh copy
		if got := string(run(t, p, ev).Outputs[0].Data); got != `{"amount":21,"total":42}` {
			t.Fatalf("got %s", got)
		}
	}
}

func TestNonJSONPayload(t *testing.T) {
	ev := testEvent("plain text \xff")
	ev.ContentType = "text/plain; charset=utf-8"
	// The payload is bytes; returning it passes it through verbatim.
	res := run(t, mustCompile(t, "", identity), ev)
	if o := res.Outputs[0]; string(o.Data) != "plain text \xff" || o.ContentType != ev.ContentType {
		t.Errorf("got %q %q", o.Data, o.ContentType)
	}
	got := transformOneEvent(t, "def transform(event):\n    return {\"type\": type(event.data), \"text\": str(event.data)}\n", ev)
	if got != "{\"type\":\"bytes\",\"text\":\"plain text \uFFFD\"}" {
		t.Errorf("got %s", got)
	}
	for ct, want := range map[string]bool{"": true, "application/json": true, "Application/JSON; charset=utf-8": true, "application/cloudevents+json": true, "text/json": true, "text/plain": false, "application/octet-stream": false} {
		if isJSON(ct) != want {
			t.Errorf("isJSON(%q) = %v", ct, !want)
		}
	}
}

func transformOneEvent(t *testing.T, transform string, ev *event.Event) string {
	t.Helper()
	res := run(t, mustCompile(t, "", transform), ev)
	if len(res.Outputs) != 1 {
		t.Fatalf("got %d outputs", len(res.Outputs))
	}
	return string(res.Outputs[0].Data)
}

func TestFilter(t *testing.T) {
	tests := []struct {
		filter string
		data   string
		kept   bool
	}{
		{``, `{}`, true},
		{`   `, `{}`, true},
		{`True`, `{}`, true},
		{`False`, `{}`, false},
		{`event.type == "order.created"`, `{}`, true},
		{`event.type == "order.deleted"`, `{}`, false},
		{`event.type == "order.created" and event.data["amount"] >= 10`, `{"amount":10}`, true},
		{`event.type == "order.created" and event.data["amount"] >= 10`, `{"amount":9.5}`, false},
		{`event.data["items"]`, `{"items":[1]}`, true}, // truthiness
		{`event.data["items"]`, `{"items":[]}`, false},
		{`event.data.get("note")`, `{"note":null}`, false},
		{`event.data.get("n", 0)`, `{"n":3}`, true},
		{`"x"`, `{}`, true},
		{`""`, `{}`, false},
		{`event.attributes.get("tenant") in ("acme", "globex")`, `{}`, true},
		{`re.search("^order\\.", event.type) != None`, `{}`, true},
		{"event.type == \"order.created\" and\n    event.data[\"amount\"] > 1 # multi-line", `{"amount":2}`, true},
		{`any([x["qty"] > 1 for x in event.data["items"]])`, `{"items":[{"qty":1},{"qty":2}]}`, true},
	}
	for _, tt := range tests {
		p := mustCompile(t, tt.filter, "")
		res := run(t, p, testEvent(tt.data))
		if res.Kept != tt.kept {
			t.Errorf("filter %q on %s: kept = %v, want %v", tt.filter, tt.data, res.Kept, tt.kept)
		}
		if res.Kept && (len(res.Outputs) != 1 || string(res.Outputs[0].Data) != tt.data) {
			t.Errorf("filter %q: kept event not passed through: %+v", tt.filter, res.Outputs)
		}
		if !res.Kept && len(res.Outputs) != 0 {
			t.Errorf("filter %q: outputs for a filtered-out event", tt.filter)
		}
	}
}

func TestFilterSkipsTransform(t *testing.T) {
	p := mustCompile(t, `event.data["ok"]`, "def transform(event):\n    fail(\"should not run\")\n")
	if res := run(t, p, testEvent(`{"ok":false}`)); res.Kept {
		t.Errorf("kept")
	}
	if _, err := p.Run(context.Background(), testEvent(`{"ok":true}`)); err == nil || !strings.Contains(err.Error(), "should not run") {
		t.Errorf("got %v", err)
	}
}

func TestTransformResults(t *testing.T) {
	tests := []struct {
		name, transform string
		want            []Output // Data compared as strings
		kept            bool
	}{
		{
			name:      "drop",
			transform: "def transform(event):\n    return None\n",
			kept:      true,
		},
		{
			name:      "drop implicitly",
			transform: "def transform(event):\n    pass\n",
			kept:      true,
		},
		{
			name:      "empty fan-out",
			transform: "def transform(event):\n    return []\n",
			kept:      true,
		},
		{
			name:      "new payload keeps metadata",
			transform: "def transform(event):\n    return {\"order\": event.data[\"id\"]}\n",
			kept:      true,
			want:      []Output{{Data: []byte(`{"order":"o1"}`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}}},
		},
		{
			name:      "scalar payload",
			transform: "def transform(event):\n    return event.data[\"id\"]\n",
			kept:      true,
			want:      []Output{{Data: []byte(`"o1"`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}}},
		},
		{
			name: "fan-out",
			transform: `
def transform(event):
    return [{"sku": item["sku"]} for item in event.data["items"]]
`,
			kept: true,
			want: []Output{
				{Data: []byte(`{"sku":"A"}`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}},
				{Data: []byte(`{"sku":"B"}`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}},
			},
		},
		{
			name: "fan-out skips None, tuple",
			transform: `
def transform(event):
    return (None, 1, None, [2])
`,
			kept: true,
			want: []Output{
				{Data: []byte(`1`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}},
				{Data: []byte(`[2]`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}},
			},
		},
		{
			name: "emit changes metadata",
			transform: `
def transform(event):
    return emit({"id": event.data["id"]}, type="order.v2", key="o1", subject="",
                attributes=dict(event.attributes, tenant="globex", retries=3, test=True))
`,
			kept: true,
			want: []Output{{Data: []byte(`{"id":"o1"}`), ContentType: "application/json", Type: "order.v2", Subject: "", Key: "o1", Attributes: map[string]string{"tenant": "globex", "region": "eu", "retries": "3", "test": "true"}}},
		},
		{
			name: "emit event keeps payload",
			transform: `
def transform(event):
    return emit(event, type="renamed", attributes={})
`,
			kept: true,
			want: []Output{{Data: []byte(`{"id":"o1","items":[{"sku":"A"},{"sku":"B"}]}`), ContentType: "application/json", Type: "renamed", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{}}},
		},
		{
			name: "return event passes through",
			transform: `
def transform(event):
    return [event, emit(None, key="")]
`,
			kept: true,
			want: []Output{
				{Data: []byte(`{"id":"o1","items":[{"sku":"A"},{"sku":"B"}]}`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}},
				{Data: []byte(`null`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "", Attributes: map[string]string{"tenant": "acme", "region": "eu"}},
			},
		},
		{
			name: "bytes payload",
			transform: `
def transform(event):
    return b"\x00raw"
`,
			kept: true,
			want: []Output{{Data: []byte("\x00raw"), ContentType: "application/octet-stream", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}}},
		},
		{
			name: "helpers and constants at top level",
			transform: `
RATE = {"eur": 1.1}

def cents(x):
    return int(x * 100)

def transform(event):
    return {"usd_cents": cents(event.data["amount"] * RATE["eur"])}
`,
			kept: true,
			want: []Output{{Data: []byte(`{"usd_cents":1100}`), ContentType: "application/json", Type: "order.created", Subject: "orders/42", Key: "cus_42", Attributes: map[string]string{"tenant": "acme", "region": "eu"}}},
		},
	}
	const data = `{"id":"o1","items":[{"sku":"A"},{"sku":"B"}],"amount":10}`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent(data)
			if tt.name == "emit event keeps payload" || tt.name == "return event passes through" {
				ev.Data = []byte(`{"id":"o1","items":[{"sku":"A"},{"sku":"B"}]}`)
			}
			res := run(t, mustCompile(t, "", tt.transform), ev)
			if res.Kept != tt.kept {
				t.Fatalf("kept = %v", res.Kept)
			}
			if len(res.Outputs) != len(tt.want) {
				t.Fatalf("got %d outputs %+v, want %d", len(res.Outputs), res.Outputs, len(tt.want))
			}
			for i, got := range res.Outputs {
				want := tt.want[i]
				if string(got.Data) != string(want.Data) || got.ContentType != want.ContentType || got.Type != want.Type ||
					got.Subject != want.Subject || got.Key != want.Key || !maps.Equal(got.Attributes, want.Attributes) {
					t.Errorf("output %d:\n got  %+v (%s)\n want %+v (%s)", i, got, got.Data, want, want.Data)
				}
			}
		})
	}
}

func TestNoTransformIsIdentity(t *testing.T) {
	ev := testEvent(`{"a": 1}`)
	res := run(t, mustCompile(t, "", ""), ev)
	o := res.Outputs[0]
	if !res.Kept || string(o.Data) != `{"a": 1}` || o.Type != ev.Type || o.Key != ev.Key || o.ContentType != ev.ContentType {
		t.Errorf("got %+v", res)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, filter, transform string
		stage                   string
		line, col               int
		msg                     string
	}{
		{"transform syntax", "", "def transform(event):\n    return (1,\n", StageTransform, 3, 1, "got outdent, want primary expression"},
		{"transform undefined", "", "def transform(event):\n    d = event.data\n    return amout + d\n", StageTransform, 3, 12, "undefined: amout"},
		{"transform indentation", "", "def transform(event):\nreturn 1\n", StageTransform, 2, 7, "got return, want indent"},
		{"no transform function", "", "def transfrom(event):\n    return 1\n", StageTransform, 1, 1, "does not define a function transform(event)"},
		{"transform not a function", "", "transform = 1\n", StageTransform, 1, 1, "transform is a int"},
		{"transform arity", "", "def transform():\n    return 1\n", StageTransform, 1, 1, "must take one parameter"},
		{"transform extra params", "", "def transform(event, other):\n    return 1\n", StageTransform, 1, 1, "parameter other has no default value"},
		{"load", "", "load(\"x.star\", \"y\")\ndef transform(event):\n    return 1\n", StageTransform, 1, 1, "load is not supported"},
		{"top-level failure", "", "X = {}[\"k\"]\ndef transform(event):\n    return 1\n", StageTransform, 1, 7, `key "k" not in dict`},
		{"top-level event", "", "X = event.data\ndef transform(event):\n    return 1\n", StageTransform, 1, 5, "undefined: event"},
		{"filter syntax", `event.type ==`, "", StageFilter, 1, 14, "got end of file, want primary expression"},
		{"filter undefined", `event.type == typ`, "", StageFilter, 1, 15, "undefined: typ"},
		{"filter statement", `x = 1`, "", StageFilter, 1, 4, "got '=' after expression"},
		{"filter multi-line undefined", "event.type == \"x\" and\n  event.data[\"a\"] > limit", "", StageFilter, 2, 21, "undefined: limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.filter, tt.transform)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if se.Stage != tt.stage || se.Line != tt.line || se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got %s %d:%d %q, want %s %d:%d containing %q", se.Stage, se.Line, se.Col, se.Msg, tt.stage, tt.line, tt.col, tt.msg)
			}
			if want := fmt.Sprintf("line %d, column %d: ", tt.line, tt.col); !strings.HasPrefix(se.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", se.Error(), want)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	tests := []struct {
		name, filter, transform, data string
		stage                         string
		line, col                     int
		msg                           string
	}{
		{"key error", "", "def transform(event):\n    d = event.data\n    return d[\"amout\"]\n", `{"amount":1}`, StageTransform, 3, 13, `key "amout" not in dict`},
		{"type error", "", "def transform(event):\n    return event.data[\"a\"] + 1\n", `{"a":"x"}`, StageTransform, 2, 28, "unknown binary op: string + int"},
		{"fail", "", "def transform(event):\n    if not event.data.get(\"id\"):\n        fail(\"missing id\")\n", `{}`, StageTransform, 3, 13, "fail: missing id"},
		{"nested call", "", "def check(d):\n    return d[\"x\"][5]\n\ndef transform(event):\n    return check(event.data)\n", `{"x":[1]}`, StageTransform, 2, 18, "index 5 out of range"},
		{"recursion", "", "def f(n):\n    return f(n - 1)\n\ndef transform(event):\n    return f(3)\n", `{}`, StageTransform, 2, 12, "called recursively"},
		{"filter error", `event.data["a"] > 1`, "", `{}`, StageFilter, 1, 11, `key "a" not in dict`},
		{"filter compare", `event.data["a"] > 1`, "", `{"a":"s"}`, StageFilter, 1, 17, "string > int not implemented"},
		{"unencodable function", "", "def transform(event):\n    return {\"f\": transform}\n", `{}`, StageTransform, 0, 0, `cannot encode a value of type function as JSON (at result["f"])`},
		{"unencodable nan", "", "def transform(event):\n    return {\"a\": [1, float(\"nan\")]}\n", `{}`, StageTransform, 0, 0, `cannot encode nan as JSON (at result["a"][1])`},
		{"unencodable inf", "", "def transform(event):\n    return [1, {\"x\": float(\"inf\")}]\n", `{}`, StageTransform, 0, 0, `cannot encode +inf as JSON (at result[1]["x"])`},
		{"unencodable set", "", "def transform(event):\n    return set([1])\n", `{}`, StageTransform, 0, 0, "cannot encode a value of type set"},
		{"unencodable key", "", "def transform(event):\n    return {1: 2}\n", `{}`, StageTransform, 0, 0, "keys must be strings"},
		{"unencodable bytes", "", "def transform(event):\n    return {\"b\": b\"x\"}\n", `{}`, StageTransform, 0, 0, "cannot encode bytes"},
		{"unencodable cycle", "", "def transform(event):\n    l = []\n    l.append(l)\n    return l\n", `{}`, StageTransform, 0, 0, "nested deeper than"},
		{"emit unencodable", "", "def transform(event):\n    return emit({\"x\": float(\"nan\")})\n", `{}`, StageTransform, 2, 16, `emit: cannot encode nan as JSON (at data["x"])`},
		{"emit bad type", "", "def transform(event):\n    return emit({}, type=1)\n", `{}`, StageTransform, 2, 16, "for parameter type: got int, want str"},
		{"emit bad attributes", "", "def transform(event):\n    return emit({}, attributes={\"a\": [1]})\n", `{}`, StageTransform, 2, 16, `attributes["a"]: got list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.filter, tt.transform)
			_, err := p.Run(context.Background(), testEvent(tt.data))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if se.Stage != tt.stage || se.Line != tt.line || se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got %s %d:%d %q, want %s %d:%d containing %q", se.Stage, se.Line, se.Col, se.Msg, tt.stage, tt.line, tt.col, tt.msg)
			}
		})
	}
}

func TestConcurrentRun(t *testing.T) {
	const transform = `
SEEN = {"fixed": True}

def transform(event):
    d = event.data
    d["double"] = d["n"] * 2
    d["tag"] = "%s-%d" % (event.key, d["n"])
    return [d, emit({"n": d["n"]}, key=event.key)]
`
	p := mustCompile(t, `event.data["n"] % 3 != 0`, transform)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				n := g*1000 + i
				ev := testEvent(fmt.Sprintf(`{"n":%d}`, n))
				ev.Key = fmt.Sprintf("k%d", g)
				res, err := p.Run(context.Background(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				if n%3 == 0 {
					if res.Kept {
						t.Errorf("n=%d kept", n)
					}
					continue
				}
				want := fmt.Sprintf(`{"n":%d,"double":%d,"tag":"k%d-%d"}`, n, 2*n, g, n)
				if len(res.Outputs) != 2 || string(res.Outputs[0].Data) != want || res.Outputs[1].Key != ev.Key {
					t.Errorf("n=%d: got %+v", n, res.Outputs)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestContextCancelled(t *testing.T) {
	p := mustCompile(t, "", identity)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Run(ctx, testEvent(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}

	// Cancelled while running: Run returns the context's error, not an *Error.
	p = mustCompile(t, "", "def transform(event):\n    while True:\n        x = 1\n", WithTimeout(0), WithMaxSteps(1<<62))
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Run(ctx, testEvent(`{}`))
	var se *Error
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &se) {
		t.Errorf("got %v", err)
	}
}

func TestPrint(t *testing.T) {
	var mu sync.Mutex
	var got []string
	p := mustCompile(t, "", "def transform(event):\n    print(\"id\", event.id, [1, 2], sep=\"|\")\n    print(\"x\" * 10000)\n", WithPrint(func(msg string) {
		mu.Lock()
		got = append(got, msg)
		mu.Unlock()
	}))
	run(t, p, testEvent(`{}`))
	if len(got) != 2 || got[0] != "id|evt-1|[1, 2]" || len(got[1]) > maxPrintLen+20 {
		t.Errorf("got %q", got)
	}
	// Without WithPrint, print is discarded.
	run(t, mustCompile(t, "", "def transform(event):\n    print(event)\n"), testEvent(`{}`))
}
