package script

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStdlib evaluates expressions in a transform and compares the JSON of
// their value.
func TestStdlib(t *testing.T) {
	tests := []struct {
		name, expr, want string
	}{
		// json
		{"json.encode", `json.encode({"b": [1, 2.5, None, True], "a": "é\n"})`, `"{\"b\":[1,2.5,null,true],\"a\":\"é\\n\"}"`},
		{"json.encode big int", `json.encode(1 << 70)`, `"1180591620717411303424"`},
		{"json.decode", `json.decode('{"x": [1, 1.0, "s", null, false]}')`, `{"x":[1,1.0,"s",null,false]}`},
		{"json.decode bytes", `json.decode(b'[1]')`, `[1]`},
		{"json.decode default", `json.decode("{oops", default={"bad": True})`, `{"bad":true}`},
		{"json round trip", `json.decode(json.encode({"k": [1, {"z": 0.5}]}))`, `{"k":[1,{"z":0.5}]}`},

		// time
		{"time.parse", `time.parse("2024-05-01T12:30:00+02:00").unix`, `1714559400`},
		{"time.parse layout", `time.format(time.parse("01/05/2024 08:00", "02/01/2006 15:04"))`, `"2024-05-01T08:00:00Z"`},
		{"time.parse location", `time.format(time.parse("2024-05-01 08:00", "2006-01-02 15:04", "UTC"), time.RFC3339_NANO)`, `"2024-05-01T08:00:00Z"`},
		{"time.format string", `time.format("2024-05-01T12:00:00.5Z", "2006-01-02")`, `"2024-05-01"`},
		{"time.format event", `time.format(event.time, "15:04:05.000")`, `"12:00:00.123"`},
		{"time fields", `[time.parse("2024-05-01T12:30:45Z").year, time.parse("2024-05-01T12:30:45Z").hour]`, `[2024,12]`},
		{"time arithmetic", `time.format(time.parse("2024-05-01T00:00:00Z") + 90 * time.minute)`, `"2024-05-01T01:30:00Z"`},
		{"time difference", `(time.parse("2024-05-01T00:01:00Z") - time.parse("2024-05-01T00:00:00Z")).seconds`, `60.0`},
		{"time.now", `time.format(time.now())`, `"2030-01-02T03:04:05Z"`},
		{"time.now stable", `time.now() == time.now()`, `true`},
		{"time.from_timestamp", `time.format(time.from_timestamp(0))`, `"1970-01-01T00:00:00Z"`},
		{"time.parse_duration", `time.parse_duration("1h30m").minutes`, `90.0`},
		{"time in output", `time.parse("2024-05-01T12:00:00.25Z")`, `"2024-05-01T12:00:00.25Z"`},

		// hash
		{"hash.sha256", `hash.sha256("abc")`, `"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"`},
		{"hash.sha256 bytes", `hash.sha256(b"abc")`, `"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"`},
		{"hash.sha256 base64", `hash.sha256("abc", encoding="base64")`, `"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="`},
		{"hash.md5", `hash.md5("abc")`, `"900150983cd24fb0d6963f7d28e17f72"`},
		{"hash.sha1", `hash.sha1("abc")`, `"a9993e364706816aba3e25717850c26c9cd0d89d"`},
		{"hash.sha512", `hash.sha512("abc")[:16]`, `"ddaf35a193617aba"`},
		{"hash.hmac_sha256", `hash.hmac_sha256("key", "The quick brown fox jumps over the lazy dog")`, `"f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"`},
		{"hash.hmac", `hash.hmac("key", "The quick brown fox jumps over the lazy dog", algorithm="sha1")`, `"de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"`},
		{"hash.hmac base64url", `hash.hmac("key", "msg", encoding="base64url")`, `"LZPLwb4We8sWN6SiPL_wGnh48MUO6DOVTqUiG7G4xig"`},
		{"hash bytes", `len(hash.sha256("x", encoding="bytes"))`, `32`},

		// base64
		{"base64.encode", `base64.encode("hello?>")`, `"aGVsbG8/Pg=="`},
		{"base64.encode url", `base64.encode("hello?>", url=True, padding=False)`, `"aGVsbG8_Pg"`},
		{"base64.decode", `base64.decode("aGVsbG8/Pg==")`, `"hello?>"`},
		{"base64.decode unpadded", `base64.decode("aGVsbG8_Pg", url=True)`, `"hello?>"`},
		{"base64 bytes", `base64.encode(b"\x00\xff")`, `"AP8="`},

		// re
		{"re.match", `re.match("(\\w+)@(\\w+)", "jane@example.com x").groups()`, `["jane","example"]`},
		{"re.match anchored", `re.match("example", "jane@example.com")`, `null`},
		{"re.search", `re.search("ex(am)ple", "jane@example.com").group(1)`, `"am"`},
		{"re.fullmatch", `[re.fullmatch("a+", "aaa") != None, re.fullmatch("a+", "aab") != None]`, `[true,false]`},
		{"re named groups", `re.search("(?P<user>[^@]+)@(?P<host>.+)", "jane@example.com").groupdict()`, `{"user":"jane","host":"example.com"}`},
		{"re group by name", `re.search("(?P<user>[^@]+)@", "jane@x").group("user")`, `"jane"`},
		{"re optional group", `re.match("(a)(b)?", "ac").groups(default="-")`, `["a","-"]`},
		{"re span", `re.search("b+", "abbbc").span()`, `[1,4]`},
		{"re.findall", `re.findall("\\d+", "a1b22c333")`, `["1","22","333"]`},
		{"re.findall group", `re.findall("(\\d)x", "1x2y3x")`, `["1","3"]`},
		{"re.findall groups", `re.findall("(\\w)=(\\d)", "a=1,b=2")`, `[["a","1"],["b","2"]]`},
		{"re.sub", `re.sub("(\\w+)@(\\w+)", "${2}:$1", "jane@example bob@test")`, `"example:jane test:bob"`},
		{"re.sub count", `re.sub("a", "b", "aaa", count=2)`, `"bba"`},
		{"re.sub function", `re.sub("\\d+", lambda m: str(int(m.group()) * 2), "a1b20")`, `"a2b40"`},
		{"re.sub no match", `re.sub("z", "y", "abc")`, `"abc"`},
		{"re.split", `re.split("\\s*,\\s*", "a , b,c")`, `["a","b","c"]`},
		{"re.split groups", `re.split("(-)", "a-b")`, `["a","-","b"]`},
		{"re.split maxsplit", `re.split(",", "a,b,c", maxsplit=1)`, `["a","b,c"]`},
		{"re.escape", `re.escape("a.b*c")`, `"a\\.b\\*c"`},

		// math
		{"math", `[math.floor(2.7), math.ceil(2.1), math.round(2.5), math.sqrt(16.0), math.pow(2, 10)]`, `[2,3,3.0,4.0,1024.0]`},
		{"math constants", `math.pi > 3.14`, `true`},

		// Starlark features
		{"set", `sorted(set([3, 1, 3, 2]))`, `[1,2,3]`},
		{"float division", `7 / 2`, `3.5`},
		{"int division", `7 // 2`, `3`},
		{"string methods", `["a-b".split("-"), "  x ".strip(), "ab".upper(), "Hello".lower(), "a{}c".format("b"), "x".join(["1", "2"]), "aXa".replace("X", "-")]`, `[["a","b"],"x","AB","hello","abc","1x2","a-a"]`},
		{"string format", `"%s=%d %r %x" % ("n", 3, "q", 255)`, `"n=3 \"q\" ff"`},
		{"slices", `["hello"[1:3], "hello"[::-1], [1, 2, 3, 4][1::2], (1, 2, 3)[-2:], str(b"abc"[1:])]`, `["el","olleh",[2,4],[2,3],"bc"]`},
		{"dict methods", `[sorted({"b": 1, "a": 2}.keys()), {"a": 1}.items(), {"a": 1}.get("z", 0)]`, `[["a","b"],[["a",1]],0]`},
		{"dict union", `{"a": 1} | {"b": 2}`, `{"a":1,"b":2}`},
		{"comprehension", `{k: v * 2 for k, v in {"a": 1, "b": 2}.items() if v > 1}`, `{"b":4}`},
		{"lambda", `sorted([1, 3], key=lambda x: -x)`, `[3,1]`},
		{"enumerate zip", `[list(enumerate(["a", "b"])), list(zip([1, 2], ["x", "y"]))]`, `[[[0,"a"],[1,"b"]],[[1,"x"],[2,"y"]]]`},
		{"getattr", `getattr("a,b", "split")(",")`, `["a","b"]`},
		{"getattr default", `getattr("a", "nope", 7)`, `7`},
		{"method value", `[f(",") for f in ["a,b".split]]`, `[["a","b"]]`},
		{"any all min max", `[any([0, 1]), all([1, 0]), min(3, 1, 2), max([1, 5])]`, `[true,false,1,5]`},
		{"str repr", `[str(1), str("s"), repr("s"), str([1, "a"])]`, `["1","s","\"s\"","[1, \"a\"]"]`},
		{"int float", `[int("42"), int(2.9), float("1.5"), int("ff", 16)]`, `[42,2,1.5,255]`},
		{"bytes", `[len(bytes("héllo")), str(b"hi")]`, `[6,"hi"]`},
		{"type", `[type(1), type(1.0), type(""), type([]), type({}), type(None), type(event)]`, `["int","float","string","list","dict","NoneType","event"]`},
		{"augmented", `augmented()`, `{"l":[1,2,3],"d":{"n":3,"l":[1,2],"u":{"a":1,"b":2}},"s":"ab","i":12}`},
		{"spread", `spread(*[1, 2], **{"c": 3})`, `[1,2,3]`},
		{"while", `count_while(5)`, `5`},
	}
	const helpers = `
def augmented():
    l = [1]
    alias = l
    l += [2]
    alias += (3,)
    d = {"n": 1, "l": [1], "u": {"a": 1}}
    d["n"] += 2
    d["l"] += [2]
    d["u"] |= {"b": 2}
    s = "a"
    s += "b"
    i = 3
    i *= 4
    return {"l": l, "d": d, "s": s, "i": i}

def spread(a, b, c):
    return [a, b, c]

def count_while(n):
    i = 0
    while i < n:
        i += 1
    return i
`
	clock := func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile("", helpers+"\ndef transform(event):\n    return emit("+tt.expr+")\n", WithClock(clock), WithTimeout(10*time.Second))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			res, err := p.Run(context.Background(), testEvent(`{}`))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := string(res.Outputs[0].Data); got != tt.want {
				t.Errorf("%s\n got  %s\n want %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestStdlibErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`json.decode("{oops")`, "json.decode: invalid JSON at offset 1"},
		{`json.decode(1)`, "json.decode: for parameter x: got int, want str or bytes"},
		{`json.encode(set())`, "json.encode: cannot encode a value of type set"},
		{`time.parse("yesterday")`, "time.parse: parsing time"},
		{`time.parse("2024-01-01T00:00:00Z", location="Nowhere/Special")`, "time.parse: unknown time zone"},
		{`time.format(1)`, "want time.time or str"},
		{`hash.sha256(1)`, "got int, want str or bytes"},
		{`hash.sha256("x", encoding="hex2")`, "unknown encoding"},
		{`hash.hmac("k", "x", algorithm="crc")`, "unknown algorithm"},
		{`base64.decode("***")`, "base64.decode: illegal base64 data"},
		{`re.match("(", "x")`, "re.match: error parsing regexp"},
		{`re.search("a", "a").group(3)`, "group: no such group 3"},
		{`re.sub("a", 1, "a")`, "want str or function"},
		{`re.sub("a", lambda m: 1, "a")`, "repl returned int, want str"},
		{`"x".nope()`, "string has no .nope field or method"},
	}
	for _, tt := range tests {
		p := mustCompile(t, "", "def transform(event):\n    return "+tt.expr+"\n")
		_, err := p.Run(context.Background(), testEvent(`{}`))
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(se.Msg, tt.want) || se.Line != 2 {
			t.Errorf("%s: got %v, want an error on line 2 containing %q", tt.expr, err, tt.want)
		}
	}
}

func TestRegexpCacheBounded(t *testing.T) {
	p := mustCompile(t, "", "def transform(event):\n    return [re.match(\"x%d\" % i, \"x1\") != None for i in range(600)][1]\n")
	if got := string(run(t, p, testEvent(`{}`)).Outputs[0].Data); got != "true" {
		t.Errorf("got %s", got)
	}
	reCache.Lock()
	n := len(reCache.m)
	reCache.Unlock()
	if n > reCacheSize {
		t.Errorf("cache holds %d patterns", n)
	}
}
