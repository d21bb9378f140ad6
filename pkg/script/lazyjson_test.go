package script

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// withEagerData decodes event.data whole, as before lazy decoding: the
// reference the lazy decoding is compared with.
func withEagerData() Option { return func(c *config) { c.eagerData = true } }

// lazySeeds are payloads covering what the lazy decoder must get right.
var lazySeeds = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	`{"id":"ord_1","customer":{"id":"c","email":"x@y"},"amount":125,"items":[{"sku":"A","qty":2,"price":25.5}]}`,
	`[1,-2,3.5,1e10,-0,0.0,123456789012345678901234567890]`,
	`"\u00e9\ud83d\ude00\n\\\""`,
	"\"\xff\xfe\"",
	"{\"\xff\":\"\xfe\"}",
	`{"a":1,"a":2,"b":{"x":1,"x":[2]},"a":3}`,
	`  null  `,
	`{ "a" : [ 1 , { "b" : "c" } ] , "d" : { } , "e" : [ ] }`,
	`{"k\u0041":"\/","k\\":"\u001f\u001F\t\u0009","e":1E5,"f":-0,"g":-0.0,"h":1.50}`,
	`{"a":{"b":{"c":{"d":{"e":[[[{"f":1}]]]}}}}}`,
	`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"11":11,"12":12,"13":13,"14":14,"15":15,"16":16,"17":17,"18":18,"1":19,"19":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"a":9,"i":10,"j":11}}`,
	`{}`, `[]`, `[{}]`, `{"":""}`, `1`, `"s"`, `true`,
	`{`, `[1,]`, `01`, `1e999`, `"\ud800"`, ``, `{"a":1}x`, `{"a" 1}`, `{"a":1,}`, `[1 2]`,
	`{"a":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`,
	`[` + strings.Repeat("9", 4301) + `]`,
	`{"big":` + strings.Repeat("9", 400) + `.5}`,
}

// TestLazyDecodeMatchesEager checks the scanner and lazy decoder against
// decodeJSON on the seeds and on random JSON: the same errors, the same
// allocation charged, equal values and the same encoding.
func TestLazyDecodeMatchesEager(t *testing.T) {
	for _, s := range lazySeeds {
		checkLazyDecode(t, s, 1<<30)
		checkLazyDecode(t, s, int64(len(s)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		s := randomJSON(rng)
		checkLazyDecode(t, s, 1<<30)
		checkLazyDecode(t, s, rng.Int64N(4096))
		if len(s) > 2 {
			cut := rng.IntN(len(s))
			checkLazyDecode(t, s[:cut], 1<<30)
			checkLazyDecode(t, s[:cut]+s[cut+1:], 1<<30)
		}
	}
}

func FuzzLazyDecode(f *testing.F) {
	for _, s := range lazySeeds {
		f.Add([]byte(s), uint16(0))
	}
	f.Fuzz(func(t *testing.T, payload []byte, limit uint16) {
		lim := int64(1 << 30)
		if limit > 0 {
			lim = int64(limit)
		}
		checkLazyDecode(t, string(payload), lim)
	})
}

func checkLazyDecode(t *testing.T, s string, limit int64) {
	t.Helper()
	want, wantSize, wantErr := decodeJSON(s, limit, keyCache{})
	var doc jsonDoc
	doc.keys = keyCache{}
	doc.reset()
	got, gotSize, gotErr := doc.load(s, limit)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%.200q limit %d: error %v, want %v", s, limit, gotErr, wantErr)
	}
	if errors.Is(wantErr, ErrAllocLimit) != errors.Is(gotErr, ErrAllocLimit) {
		t.Fatalf("%.200q limit %d: error %v, want %v", s, limit, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if gotSize != wantSize {
		t.Fatalf("%.200q: size %d, want %d", s, gotSize, wantSize)
	}
	if eq, err := equalValues(got, want); (err != nil && err != errCompareDepth) || (err == nil && !eq) {
		t.Fatalf("%.200q: lazy value differs from the decoded one (%v)", s, err)
	}
	if r, w := realize(got).String(), want.String(); r != w {
		t.Fatalf("%.200q: str %s, want %s", s, r, w)
	}
	we := jsonEncoder{limit: 1 << 30}
	if err := we.encode(want); err != nil {
		t.Fatalf("%.200q: %v", s, err)
	}
	// Encode the lazy value untouched, then again after reading it all.
	for pass := range 2 {
		ge := jsonEncoder{limit: 1 << 30}
		if err := ge.encode(got); err != nil {
			t.Fatalf("%.200q: %v", s, err)
		}
		if string(ge.buf) != string(we.buf) {
			t.Fatalf("%.200q (pass %d): encoded as %s, want %s", s, pass, ge.buf, we.buf)
		}
		if ok, _ := canonicalJSON(string(we.buf)); !ok {
			t.Fatalf("%.200q: the encoder's output %s is not canonical", s, we.buf)
		}
		if strings.TrimSpace(s) == string(we.buf) {
			if ok, _ := canonicalJSON(strings.TrimSpace(s)); !ok {
				t.Fatalf("%.200q is canonical but not recognized as such", s)
			}
		}
		_ = got.String()
	}
}

// randomJSON returns a random JSON text with white space, duplicate keys,
// escapes, invalid UTF-8 and numbers of every form.
func randomJSON(rng *rand.Rand) string {
	var b strings.Builder
	randomValue(rng, &b, 0)
	return b.String()
}

func randomValue(rng *rand.Rand, b *strings.Builder, depth int) {
	ws := func() {
		if rng.IntN(8) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n"}[rng.IntN(4)])
		}
	}
	ws()
	n := rng.IntN(10)
	if depth > 5 {
		n = 4 + rng.IntN(6)
	}
	switch n {
	case 0, 1:
		b.WriteByte('{')
		for i := range rng.IntN(12) {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			randomString(rng, b, true)
			ws()
			b.WriteByte(':')
			randomValue(rng, b, depth+1)
		}
		ws()
		b.WriteByte('}')
	case 2, 3:
		b.WriteByte('[')
		for i := range rng.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomValue(rng, b, depth+1)
		}
		ws()
		b.WriteByte(']')
	case 4, 5:
		randomString(rng, b, false)
	case 6, 7:
		b.WriteString([]string{"0", "-0", "1", "-17", "25.5", "1.0", "-0.0", "1e5", "1E-7", "2.5e+3", "0.1",
			"123456789012345678", "1234567890123456789", "-98765432109876543210", "1e308", "4.9e-324",
			"100000000000000000000.0", "1.5e21", "0.000001", "0.0000001", "3.14159265358979"}[rng.IntN(21)])
	case 8:
		b.WriteString([]string{"true", "false", "null"}[rng.IntN(3)])
	default:
		b.WriteString(strconv.Itoa(rng.IntN(1000)))
	}
	ws()
}

func randomString(rng *rand.Rand, b *strings.Builder, key bool) {
	if key && rng.IntN(3) > 0 {
		// few distinct keys, so that objects have duplicates
		b.WriteString([]string{`"a"`, `"b"`, `"c"`, `"id"`, `"a\u0062"`, `""`}[rng.IntN(6)])
		return
	}
	b.WriteByte('"')
	for range rng.IntN(8) {
		b.WriteString([]string{"x", "é", "\xff", `\"`, `\\`, `\/`, `\n`, `\t`, `\b`, `\u0001`, `\u001F`, `\u00e9`,
			`\ud83d\ude00`, `\ud800`, "\u2028", "\x7f", " ", "ab"}[rng.IntN(18)])
	}
	b.WriteByte('"')
}

// lazyScripts exercise what a script can do with event.data. Each must
// behave the same whether the payload is decoded lazily or not.
var lazyScripts = []struct{ filter, transform string }{
	{"", "def transform(event):\n    return emit(event.data)\n"},
	{"", `
def transform(event):
    d = event.data
    r = json.decode(event.raw)
    out = []
    stack = [d]
    n = 0
    while stack and n < 100:
        n += 1
        v = stack.pop()
        t = type(v)
        out.append(t)
        if t == "dict":
            out.append([len(v), sorted(v.keys()), [k in v for k in ["a", "b", "", "id"]], v.get("a", "none"), bool(v)])
            out.append([x for x in v])
            for k, x in v.items():
                stack.append(x)
            out.append(len(v.values()))
        elif t == "list":
            out.append(len(v))
            stack.extend(v)
        else:
            out.append(v)
    out.append([d == r, r == d, [d] == [r], d != r, d in [r], r in [d], (d,) == (r,), [r] == [d]])
    out.append([str(d) == str(r), repr(d), json.encode(d), "%s" % (d,), "{}".format(d), "{x}".format(x=d)])
    out.append([str([d, r]), str({"d": d})])
    return emit(out)
`},
	{"", `
def transform(event):
    d = event.data
    if type(d) == "dict":
        keys = list(d.keys())
        if keys:
            d[keys[0]] = {"changed": True}
            d.pop(keys[-1])
        d["new"] = [1, 2]
        for k in d:
            pass
        d.setdefault("sd", 3)
        e = dict(d, extra=1)
        f = dict(**d) if all([type(k) == "string" for k in d]) else {}
        g = d | {"u": 1}
        h = {"u": 1} | d
        d |= {"v": 2}
        acc = {}
        acc |= d
        return emit([d, e, f, g, h, acc, len(d), str(d), d == e, e == d, sorted(d.items())[:1] == sorted(e.items())[:1]])
    if type(d) == "list":
        for x in d:
            if type(x) == "dict":
                x["seen"] = True
        d.append("end")
        return emit([d, d.index("end"), d == d[:]])
    return emit(d)
`},
	{"", `
def transform(event):
    d = event.data
    if type(d) == "dict":
        for k in sorted(d.keys())[:2]:
            v = d[k]
            if type(v) == "dict":
                v["touched"] = 1
            elif type(v) == "list":
                v.append(0)
    return emit(d)
`},
	{"", `
def transform(event):
    d = event.data
    if type(d) == "list" and d:
        x = d[0]
        l = list(d)
        l.remove(x)
        return emit([l, d.index(x), x in d, x not in d, d.count if False else 0, sorted([str(y) for y in d])])
    if type(d) == "dict" and d:
        v = d.values()[0]
        return emit([v, v in d.values(), d.values().index(v), [v] == d.values()[:1], min([[v], [v]]), max([[1], [v]]) == [v]])
    return None
`},
	{`type(event.data) == "dict" and event.data.get("a") != None`, "def transform(event):\n    return event.data\n"},
	{"", "def transform(event):\n    return event.data\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit({\"k\": d[\"a\"] if type(d) == \"dict\" and \"a\" in d else d, \"w\": [d, d]})\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit(d < d)\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit(sorted([d, d]))\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit(d[\"missing\"])\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit([d.nope if False else 1, hasattr(d, \"get\"), hasattr(d, \"nope\"), dir(d), type(d.get) if type(d) == \"dict\" else 0])\n"},
	{"", "def transform(event):\n    d = event.data\n    d[\"x\"] = 1\n    return emit(d)\n"},
	{"", "def transform(event):\n    d = event.data\n    for k in d:\n        d[k + \"x\"] = 1\n    return emit(d)\n"},
	{"", "def transform(event):\n    d = event.data\n    print(d)\n    return emit([d == d, d != d, [d, [d]] == [d, [d]], {\"a\": d} == {\"a\": d}])\n"},
	{"", "def transform(event):\n    d = event.data\n    d[\"self\"] = d\n    return emit(str(d))\n"},
	{"", "def transform(event):\n    d = event.data\n    l = [d]\n    d[\"l\"] = l\n    return emit([str(l), repr(d)])\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit([d.items(), d.keys(), d.values(), d.get(\"a\"), d.get([]) if False else 0, {} in [d], [] in [d]])\n"},
	{"", "def transform(event):\n    return emit(event.data.get([]))\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit([[] in d, {} in d, \"a\" in d, 1 in d])\n"},
	{"", "def transform(event):\n    return emit(event.data.popitem())\n"},
	{"", "def transform(event):\n    d = event.data\n    d.clear()\n    return emit([d, len(d), d == {}])\n"},
	{"", "def transform(event):\n    d = event.data\n    d.update(a=1, z=[2])\n    return emit(d)\n"},
	{"", "def transform(event):\n    return emit(max(event.data))\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit([d == json.decode(event.raw), json.decode(event.raw) == d, d in [json.decode(event.raw)]])\n"},
	{"", "def transform(event):\n    return emit(event.data + event.data)\n"},
	{"", "def transform(event):\n    return emit(event.data * 2)\n"},
	{"", "def transform(event):\n    return emit(-event.data)\n"},
	{"", "def transform(event):\n    return emit(event.data[1:])\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit(\"%(a)s\" % d)\n"},
	{"", "def transform(event):\n    return emit(hash(event.data))\n"},
	{"", "def transform(event):\n    return emit(event.data.get())\n"},
	{"", "def transform(event):\n    return emit(event.data.keys(1))\n"},
	{"", "def transform(event):\n    return emit({event.data: 1})\n"},
	{"", "def transform(event):\n    return emit(set([event.data]))\n"},
	{"", "def transform(event):\n    d = event.data\n    return emit([x for x in d if x] if type(d) != \"dict\" else [k for k, v in d.items() if v == v])\n"},
	{"", "def transform(event):\n    return emit(list(event.data.elems()) if type(event.data) == \"string\" else len(event.data))\n"},
}

// TestLazyScriptsMatchEager runs every script on the seeds and random JSON
// with both decoders and compares the results.
func TestLazyScriptsMatchEager(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	payloads := append([]string(nil), lazySeeds...)
	for range 300 {
		payloads = append(payloads, randomJSON(rng))
	}
	for i := range lazyScripts {
		lazy, eager := lazyPrograms(t, i)
		for _, p := range payloads {
			compareRuns(t, i, lazy, eager, p)
		}
	}
}

func FuzzLazyScripts(f *testing.F) {
	for i, s := range lazySeeds {
		f.Add([]byte(s), uint8(i))
	}
	type pair struct{ lazy, eager *Program }
	progs := make([]pair, len(lazyScripts))
	for i := range lazyScripts {
		progs[i].lazy, progs[i].eager = lazyPrograms(f, i)
	}
	f.Fuzz(func(t *testing.T, payload []byte, which uint8) {
		i := int(which) % len(lazyScripts)
		compareRuns(t, i, progs[i].lazy, progs[i].eager, string(payload))
	})
}

func lazyPrograms(t testing.TB, i int) (lazy, eager *Program) {
	t.Helper()
	s := lazyScripts[i]
	return mustCompile(t, s.filter, s.transform, WithPrint(func(string) {})),
		mustCompile(t, s.filter, s.transform, WithPrint(func(string) {}), withEagerData())
}

func compareRuns(t *testing.T, i int, lazy, eager *Program, payload string) {
	t.Helper()
	ev := testEvent(payload)
	want, wantErr := eager.Run(context.Background(), ev)
	got, gotErr := lazy.Run(context.Background(), ev)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("script %d on %.300q:\nlazy  %s %v\neager %s %v", i, payload, describe(got), gotErr, describe(want), wantErr)
	}
	var ge, we *Error
	if errors.As(gotErr, &ge) != errors.As(wantErr, &we) {
		t.Fatalf("script %d on %.300q: error %#v, want %#v", i, payload, gotErr, wantErr)
	}
	if ge != nil && (ge.Stage != we.Stage || ge.Line != we.Line || ge.Col != we.Col || ge.Msg != we.Msg) {
		t.Fatalf("script %d on %.300q: error %#v, want %#v", i, payload, ge, we)
	}
	for _, s := range []error{ErrStepLimit, ErrTimeout, ErrAllocLimit, ErrOutputLimit} {
		if errors.Is(gotErr, s) != errors.Is(wantErr, s) {
			t.Fatalf("script %d on %.300q: error %v, want %v", i, payload, gotErr, wantErr)
		}
	}
}

func describe(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kept=%v", r.Kept)
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, " [%s %s]", o.ContentType, o.Data)
	}
	return b.String()
}

// TestPayloadNotRetained checks that nothing a run returns refers to the
// event's bytes, which the lazy decoder reads in place: the caller may
// reuse them once Run has returned.
func TestPayloadNotRetained(t *testing.T) {
	const payload = `{"type":"t.v2","key":"k-1","sub":"s/1","attrs":{"a":"x","long_key_` + "0123456789012345678901234567890123456789012345678901234567890123456789" + `":"y"},"n":"abc"}`
	var printed []string
	p := mustCompile(t, "", `
def transform(event):
    d = event.data
    print(d["n"], d)
    out = emit({"n": d["n"], "keys": d.keys()}, type=d["type"], key=d["key"], subject=d["sub"],
        attributes=dict(d["attrs"]))
    return [out, d["attrs"], {k: v for k, v in d["attrs"].items()}]
`, WithPrint(func(s string) { printed = append(printed, s) }))
	failing := mustCompile(t, "", "def transform(event):\n    fail(event.data[\"n\"])\n")
	for range 3 { // a state reused from run to run
		ev := testEvent(payload)
		res := run(t, p, ev)
		_, err := failing.Run(context.Background(), ev)
		want := fmt.Sprintf("%v|%s|%v", describeAll(res), printed, err)
		for i := range ev.Data {
			ev.Data[i] = 'X'
		}
		if got := fmt.Sprintf("%v|%s|%v", describeAll(res), printed, err); got != want {
			t.Fatalf("overwriting the payload after the run changed the results:\n%s\nwant\n%s", got, want)
		}
	}
}

func describeAll(r Result) string {
	var b strings.Builder
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, "[%s %s %s %s %s %v]", o.Data, o.Type, o.Key, o.Subject, o.ContentType, o.Attributes)
	}
	return b.String()
}
