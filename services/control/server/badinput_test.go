package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkJSON is the REST layer's first look at a body: where a body is not
// JSON, and bodies nested too deep for protobuf.
func TestCheckJSON(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
	}{
		{"empty", "", ""},
		{"blank", " \n", ""},
		{"object", `{"a": [1, {"b": "[[[{"}]}`, ""},
		{"escaped quote", `{"a": "\"[["}`, ""},
		{"missing colon", `{"partitions" 3}`, "line 1, column 15: invalid JSON: invalid character '3' after object key"},
		{"second line", "{\n  \"a\": tru\n}", "line 2, column 11: invalid JSON: invalid character '\\n' in literal true (expecting 'e')"},
		{"not JSON", `<source/>`, "line 1, column 1: invalid JSON: invalid character '<' looking for beginning of value"},
		{"trailing garbage", `{} x`, "line 1, column 4: invalid JSON: invalid character 'x' after top-level value"},
		{"truncated", `{"partitions": 3`, "invalid JSON: unexpected end of input"},
		{"truncated string", `{"a": "b`, "invalid JSON: unexpected end of input"},
		{"raw NUL", "{\"a\": \"x\x00\"}", "line 1, column 9: invalid JSON: invalid character '\\x00' in string literal"},
		{"invalid UTF-8 is protojson's to refuse", "{\"a\": \"\xff\"}", ""},
		{"512 levels", strings.Repeat("[", 512) + strings.Repeat("]", 512), ""},
		{"513 levels", strings.Repeat("[", 513) + strings.Repeat("]", 513), "JSON nested deeper than 512 levels"},
		{"brackets in strings do not count", `["` + strings.Repeat("[", 1000) + `"]`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkJSON([]byte(c.body))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Fatalf("checkJSON(%q) = %q\nwant %q", c.body, got, c.want)
			}
		})
	}
}

// FuzzCheckJSON: checkJSON accepts exactly the valid JSON bodies (and blank
// ones) that are not nested too deep, and never panics.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, "x\"[", {"b": null}]}`, `{"a" 1}`, `{"a": "\u0000"}`, "[[[[", `"\\"`, "{}\x00", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		err := checkJSON(b)
		blank := len(bytes.TrimSpace(b)) == 0
		switch {
		case err == nil && !blank && !json.Valid(b):
			t.Fatalf("accepted invalid JSON %q", s)
		case err != nil && json.Valid(b) && !strings.Contains(err.Error(), "nested deeper"):
			t.Fatalf("refused valid JSON %q: %v", s, err)
		case err != nil && err.Error() == "":
			t.Fatalf("empty error for %q", s)
		}
	})
}
