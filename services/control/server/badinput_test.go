package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
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

// TestRequestsRefusedBeforeWork: the REST front checks the token before it
// reads a body, a body naming another resource than its path is refused,
// and names are checked before they are looked up. Nothing is written.
func TestRequestsRefusedBeforeWork(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	for _, c := range []struct {
		name, method, path, token, body string
		code                            int
		msg                             string
	}{
		{"malformed body, no token", "PUT", "/v1/sources/a", "", `{"partitions" 3}`, 401, "missing token"},
		{"malformed body, bad token", "PUT", "/v1/sources/a", "nope", `{"partitions" 3}`, 401, "invalid token"},
		{"oversized body, no token", "PUT", "/v1/sources/a", "", `{"description": "` + strings.Repeat("x", 2<<20) + `"}`, 401, "missing token"},
		{"unknown route, no token", "GET", "/v1/nothing", "", "", 401, "missing token"},
		{"malformed body, valid token", "PUT", "/v1/sources/a", editorTok, `{"partitions" 3}`, 400, "line 1, column 15"},
		{"source name differs from the path", "PUT", "/v1/sources/orders-x", editorTok, `{"name": "orders-y", "partitions": 1}`, 400, `source.name: "orders-y" does not match the name in the path, "orders-x"`},
		{"flow name differs from the path", "PUT", "/v1/flows/f-x", editorTok, `{"name": "f-y", "source": "s", "destination": {"http": {"url": "https://x.example.com"}}}`, 400, `flow.name: "f-y" does not match the name in the path, "f-x"`},
		{"uppercase flow name", "GET", "/v1/flows/Orders", viewerTok, "", 400, `name: name "Orders" must match`},
		{"uppercase source name", "GET", "/v1/sources/Orders", viewerTok, "", 400, `name: name "Orders" must match`},
		{"pause an invalid name", "POST", "/v1/flows/a_b:pause", adminTok, "", 400, `name: name "a_b" must match`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, m := in.restJSON(t, c.method, c.path, c.token, c.body)
			msg, _ := m["error"].(string)
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Fatalf("%s %s: %d %v, want %d with %q", c.method, c.path, code, m, c.code, c.msg)
			}
		})
	}
	// The same name in body and path is fine.
	if code, m := in.restJSON(t, "PUT", "/v1/sources/orders-same", editorTok, `{"name": "orders-same", "partitions": 1}`); code != 200 {
		t.Fatalf("same name: %d %v", code, m)
	}
	// Nothing of the refused writes exists.
	for _, p := range []string{"/v1/sources/a", "/v1/sources/orders-x", "/v1/sources/orders-y", "/v1/flows/f-x", "/v1/flows/f-y"} {
		if code, m := in.restJSON(t, "GET", p, viewerTok, ""); code != 404 {
			t.Errorf("GET %s after refused writes: %d %v", p, code, m)
		}
	}
	// gRPC: an empty name is invalid, not unknown.
	for name, call := range map[string]func() error{
		"GetSource": func() error { _, err := in.src.GetSource(as(viewerTok), &samsav1.GetSourceRequest{}); return err },
		"GetFlow":   func() error { _, err := in.flows.GetFlow(as(viewerTok), &samsav1.GetFlowRequest{}); return err },
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "name is empty") {
			t.Errorf("%s with no name: %v, want InvalidArgument naming the name", name, err)
		}
	}
}
