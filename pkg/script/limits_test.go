package script

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

func runErr(t *testing.T, p *Program, data string) *Error {
	t.Helper()
	_, err := p.Run(context.Background(), testEvent(data))
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("got %v (%T), want *Error", err, err)
	}
	return se
}

func TestStepLimit(t *testing.T) {
	tests := []struct {
		name, filter, transform string
		line                    int
	}{
		{"while loop", "", "def transform(event):\n    n = 0\n    while True:\n        n += 1\n", 4},
		{"nested for loops", "", "def transform(event):\n    n = 0\n    for i in range(100000):\n        for j in range(100000):\n            n += 1\n", 4},
		{"filter comprehension", `len([x for x in range(10000000)]) > 0`, "", 1},
		{"built-in iteration", "", "def transform(event):\n    return max(range(1000000000))\n", 2},
		{"sorted", "", "def transform(event):\n    return sorted(range(1000000000))\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.filter, tt.transform, WithTimeout(0))
			start := time.Now()
			se := runErr(t, p, `{}`)
			if !errors.Is(se, ErrStepLimit) || se.Line != tt.line || !strings.Contains(se.Msg, "step limit of 1000000 steps") {
				t.Errorf("got %q at line %d (%v), want the step limit at line %d", se.Msg, se.Line, se.Unwrap(), tt.line)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}

	// The limit is configurable, and applies to the top-level code too.
	p := mustCompile(t, "", "def transform(event):\n    for i in range(200):\n        pass\n", WithMaxSteps(100))
	if se := runErr(t, p, `{}`); !errors.Is(se, ErrStepLimit) {
		t.Errorf("got %v", se)
	}
	_, err := Compile("", "X = [i for i in range(1000)]\ndef transform(event):\n    return 1\n", WithMaxSteps(100))
	if !errors.Is(err, ErrStepLimit) {
		t.Errorf("top level: got %v", err)
	}
	// A state that hit the limit is reused cleanly.
	p = mustCompile(t, "", "def transform(event):\n    for i in range(event.data):\n        pass\n", WithMaxSteps(1000))
	for i := range 5 {
		if _, err := p.Run(context.Background(), testEvent("10")); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		runErr(t, p, "100000")
	}
}

func TestTimeout(t *testing.T) {
	const loop = "def transform(event):\n    n = 0\n    while True:\n        n += 1\n"
	p := mustCompile(t, "", loop, WithMaxSteps(1<<62), WithTimeout(30*time.Millisecond))
	start := time.Now()
	se := runErr(t, p, `{}`)
	elapsed := time.Since(start)
	if !errors.Is(se, ErrTimeout) || !strings.Contains(se.Msg, "time limit of 30ms") || se.Line < 1 {
		t.Errorf("got %q at line %d", se.Msg, se.Line)
	}
	if elapsed < 30*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("stopped after %s", elapsed)
	}
	// Slow built-ins are cut short too: the limit is checked between them.
	p = mustCompile(t, "", "def transform(event):\n    s = \"ab\" * 100000\n    for i in range(1000000):\n        hash.sha256(s)\n",
		WithMaxSteps(1<<62), WithTimeout(50*time.Millisecond))
	start = time.Now()
	if se := runErr(t, p, `{}`); !errors.Is(se, ErrTimeout) {
		t.Errorf("got %v", se)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("stopped after %s", elapsed)
	}
	// Later runs on the same program are not affected.
	p = mustCompile(t, "", "def transform(event):\n    if event.data:\n        while True:\n            pass\n    return 1\n", WithMaxSteps(1<<62), WithTimeout(10*time.Millisecond))
	for range 3 {
		runErr(t, p, `true`)
		run(t, p, testEvent(`false`))
	}
}

// TestHugeAllocation checks that programs trying to allocate far more
// memory than the budget fail quickly instead of exhausting the process.
func TestHugeAllocation(t *testing.T) {
	tests := []struct{ name, body string }{
		{"string repetition", `return "x" * 1000000000`},
		{"reversed repetition", `return 1000000000 * "x"`},
		{"list repetition", `return [0] * 1000000000`},
		{"tuple repetition", `return (0,) * 1000000000`},
		{"bytes repetition", `return b"x" * 1000000000`},
		{"repetition by a big int", `return "x" * (1 << 100)`},
		{"augmented repetition", "s = \"x\"\n    s *= 1000000000\n    return s"},
		{"list doubling", "l = [0]\n    for i in range(64):\n        l = l + l\n    return len(l)"},
		{"list doubling in place", "l = [0]\n    for i in range(64):\n        l += l\n    return len(l)"},
		{"list extend doubling", "l = [0]\n    for i in range(64):\n        l.extend(l)\n    return len(l)"},
		{"list doubling by repetition", "l = [0]\n    for i in range(64):\n        l = l * 2\n    return len(l)"},
		{"string doubling", "s = \"x\"\n    for i in range(64):\n        s += s\n    return len(s)"},
		{"doubling in a dict", "d = {\"s\": \"x\"}\n    for i in range(64):\n        d[\"s\"] += d[\"s\"]\n    return len(d[\"s\"])"},
		{"string format doubling", "s = \"x\"\n    for i in range(64):\n        s = \"%s%s\" % (s, s)\n    return len(s)"},
		{"str.format doubling", "s = \"x\"\n    for i in range(64):\n        s = \"{}{}\".format(s, s)\n    return len(s)"},
		{"join doubling", "s = \"x\"\n    for i in range(64):\n        s = \"\".join([s, s])\n    return len(s)"},
		{"replace growth", "s = \"xx\"\n    for i in range(64):\n        s = s.replace(\"x\", \"xx\")\n    return len(s)"},
		{"list of a range", `return len(list(range(1000000000)))`},
		{"set of a range", `return len(set(range(1000000000)))`},
		{"tuple of a range", `return len(tuple(range(1000000000)))`},
		{"extend by a range", "l = []\n    l.extend(range(1000000000))\n    return len(l)"},
		{"dict of a zip", `return len(dict(zip(range(1000000000), range(1000000000))))`},
		{"json doubling", "s = \"x\"\n    for i in range(64):\n        s = json.encode([s, s])\n    return len(s)"},
		{"copies kept alive", "big = [0] * 1000000\n    keep = []\n    for i in range(10000):\n        keep.append(big[:])\n    return len(keep)"},
		{"upper copies kept alive", "big = \"x\" * 10000000\n    keep = []\n    for i in range(10000):\n        keep.append(big.upper())\n    return len(keep)"},
		{"str of a shared structure", "x = [0]\n    for i in range(64):\n        x = [x, x]\n    return len(str(x))"},
		{"json of a shared structure", "x = [0]\n    for i in range(64):\n        x = [x, x]\n    return len(json.encode(x))"},
		{"output of a shared structure", "x = [0]\n    for i in range(64):\n        x = [x, x]\n    return x"},
		{"integer squaring", "x = 3\n    for i in range(64):\n        x = x * x\n    return x"},
		{"integer shift", "x = 1\n    for i in range(1000000):\n        x = x << 500\n    return x"},
		{"regexp expansion", "s = \"x\" * 1000\n    for i in range(64):\n        s = re.sub(\"\", s, s)\n    return len(s)"},
		{"call spread", "def f(*a):\n        return a\n    big = [0] * 1000000\n    keep = []\n    for i in range(10000):\n        keep.append(f(*big))\n    return len(keep)"},
		{"int parse", `return int("9" * 100000)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p := mustCompile(t, "", "def transform(event):\n    "+tt.body+"\n", WithTimeout(10*time.Second))
			se := runErr(t, p, `{}`)
			runtime.ReadMemStats(&after)
			if !errors.Is(se, ErrAllocLimit) && !errors.Is(se, ErrStepLimit) && !errors.Is(se, ErrOutputLimit) &&
				!errors.Is(se, ErrTimeout) && !strings.Contains(se.Msg, "digits") {
				t.Errorf("got %q (%v), want a limit error", se.Msg, se.Unwrap())
			}
			if se.Line == 0 && !errors.Is(se, ErrOutputLimit) {
				t.Errorf("no position: %v", se)
			}
			// The race detector makes sync.Pool (used by regexp) drop
			// objects, inflating allocations.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<30 && !raceEnabled {
				t.Errorf("allocated %d MiB", grew>>20)
			}
		})
	}
}

func TestAllocBudgetAllowsNormalWork(t *testing.T) {
	// Building a moderately large result piecewise stays within the budget.
	const transform = `
def transform(event):
    rows = []
    for i in range(2000):
        rows.append({"i": i, "name": "row-%d" % i, "tags": ["a", "b"][:1]})
    s = ""
    for i in range(1000):
        s += "ab"
    return {"rows": len(rows), "s": len(s), "copy": len(list(rows)), "text": len(",".join([r["name"] for r in rows]))}
`
	got := transformOne(t, transform, `{}`)
	if got != `{"rows":2000,"s":2000,"copy":2000,"text":16889}` {
		t.Errorf("got %s", got)
	}
	// The budget is configurable.
	p := mustCompile(t, "", "def transform(event):\n    return \"x\" * 2000\n", WithMaxAllocBytes(1000))
	if se := runErr(t, p, `{}`); !errors.Is(se, ErrAllocLimit) || !strings.Contains(se.Msg, "1000 bytes per event") {
		t.Errorf("got %v", se)
	}
	// Decoding the payload counts.
	p = mustCompile(t, "", identity, WithMaxAllocBytes(10000))
	if se := runErr(t, p, "["+strings.Repeat("{},", 1000)+"{}]"); !errors.Is(se, ErrAllocLimit) || se.Line != 2 {
		t.Errorf("got %v", se)
	}
}

func TestOutputLimits(t *testing.T) {
	p := mustCompile(t, "", "def transform(event):\n    return {\"s\": \"x\" * 2000}\n", WithMaxOutputBytes(1000))
	if se := runErr(t, p, `{}`); !errors.Is(se, ErrOutputLimit) || !strings.Contains(se.Msg, "1000 bytes per event") {
		t.Errorf("got %v", se)
	}
	// The limit is the total of all outputs.
	p = mustCompile(t, "", "def transform(event):\n    return [{\"s\": \"x\" * 400}] * 3\n", WithMaxOutputBytes(1000))
	if se := runErr(t, p, `{}`); !errors.Is(se, ErrOutputLimit) {
		t.Errorf("got %v", se)
	}
	// Passing the payload through does not count.
	p = mustCompile(t, "", "def transform(event):\n    return [event] * 10\n", WithMaxOutputBytes(10))
	if res := run(t, p, testEvent(`{"a":"0123456789"}`)); len(res.Outputs) != 10 {
		t.Errorf("got %d outputs", len(res.Outputs))
	}
	// Fan-out is bounded.
	p = mustCompile(t, "", "def transform(event):\n    return list(range(11))\n", WithMaxOutputs(10))
	if se := runErr(t, p, `{}`); !errors.Is(se, ErrOutputLimit) || !strings.Contains(se.Msg, "more than 10 outputs") {
		t.Errorf("got %v", se)
	}
	run(t, mustCompile(t, "", "def transform(event):\n    return list(range(10))\n", WithMaxOutputs(10)), testEvent(`{}`))
}

func TestOptionDefaults(t *testing.T) {
	c := defaultConfig()
	for _, o := range []Option{WithMaxSteps(0), WithMaxAllocBytes(0), WithMaxOutputBytes(-1), WithMaxOutputs(0), WithClock(nil)} {
		o(&c)
	}
	if c.maxSteps != 1_000_000 || c.timeout != 100*time.Millisecond || c.maxAllocBytes != 64<<20 ||
		c.maxOutputBytes != 1<<20 || c.maxOutputs != 1000 || c.clock == nil || c.print != nil {
		t.Errorf("got %+v", c)
	}
}
