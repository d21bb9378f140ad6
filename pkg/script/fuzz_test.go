package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// FuzzRunJSON runs arbitrary payloads through a transform that decodes and
// re-encodes them. It must never panic; valid JSON must come out equal to
// what encoding/json reads, invalid JSON must be reported as an *Error.
func FuzzRunJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
		`[1,-2,3.5,1e10,-0,0.0,123456789012345678901234567890]`,
		`"\u00e9\ud83d\ude00\n\\\""`,
		"\"\xff\xfe\"",
		`{"a":1,"a":2}`,
		`  null  `,
		`{`, `[1,]`, `01`, `1e999`, `"\ud800"`, ``,
	} {
		f.Add([]byte(seed))
	}
	p, err := Compile("", "def transform(event):\n    return emit(event.data)\n")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev := testEvent("")
		ev.Data = payload
		res, err := p.Run(context.Background(), ev)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if json.Valid(payload) && !strings.Contains(se.Msg, "out of range") && !strings.Contains(se.Msg, "nested deeper") &&
				!strings.Contains(se.Msg, "digits") && !errors.Is(err, ErrAllocLimit) && !errors.Is(err, ErrOutputLimit) {
				t.Fatalf("valid JSON %q rejected: %v", payload, err)
			}
			return
		}
		if len(payload) == 0 {
			return // empty payload is None
		}
		if !json.Valid(payload) {
			t.Fatalf("invalid JSON %q accepted: %s", payload, res.Outputs[0].Data)
		}
		out := res.Outputs[0].Data
		if !json.Valid(out) {
			t.Fatalf("output %q is not valid JSON (input %q)", out, payload)
		}
		var want, got any
		decodeNumbers(t, payload, &want)
		decodeNumbers(t, out, &got)
		if !jsonEqual(want, got) {
			t.Fatalf("round trip changed the value:\n in  %q\n out %q", payload, out)
		}
	})
}

func decodeNumbers(t *testing.T, data []byte, v *any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

// jsonEqual compares decoded JSON values; integers compare exactly, other
// numbers as float64.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if !jsonEqual(v, b[k]) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		aInt := !strings.ContainsAny(string(a), ".eE")
		bInt := !strings.ContainsAny(string(b), ".eE")
		if aInt != bInt {
			return false
		}
		if aInt {
			x, _ := new(big.Int).SetString(string(a), 10)
			y, _ := new(big.Int).SetString(string(b), 10)
			return x != nil && y != nil && x.Cmp(y) == 0
		}
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(b), 64)
		return err1 == nil && err2 == nil && x == y
	default:
		return a == b
	}
}
