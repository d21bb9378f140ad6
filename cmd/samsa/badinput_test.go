package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI's part of the bad-input catalogue (issue 9): broken files,
// unknown kinds and fields, bad names, missing and invalid flags, a wrong
// or unreachable --server, refusals of the server, answers that are not
// the control API's. Each must exit non-zero with one clear message naming
// the problem: never a panic, a Go stack trace, or a dump of an HTML page.
// Nothing of a refused apply reaches the server.
func TestBadInputCLI(t *testing.T) {
	srv := startControl(t)
	fake := badServer(t)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	file("empty/notes.txt", "kind: Source\nname: ignored\n")
	var bomb strings.Builder
	bomb.WriteString(`a: &a ["x","x","x","x","x","x","x","x","x"]` + "\n")
	for i, c := range "bcdefghi" {
		prev := string("abcdefghi"[i])
		fmt.Fprintf(&bomb, "%c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ","))
	}
	bomb.WriteString("kind: Source\nname: bomb\n")
	flow := func(name, extra string) string {
		return "kind: Flow\nname: " + name + "\nsource: nosuch\n" + extra + "destination:\n  http:\n    url: https://hooks.example.com/x\n"
	}

	cases := []struct {
		class, name string
		args        []string
		stdin       string
		server      string // default: the real control server
		token       string // default: the editor's
		exit        int
		msg         string
	}{
		// apply -f with broken files.
		{"broken YAML", "bad indentation", []string{"apply", "-f", file("broken.yaml", "kind: Source\nname: a\n  bad: indent\n")}, "", "", "", exitError, "broken.yaml, document 1: yaml: line 3: mapping values are not allowed in this context"},
		{"broken YAML", "tab indentation", []string{"apply", "-f", file("tab.yaml", "kind: Source\nauth:\n\tapiKeys: []\n")}, "", "", "", exitError, "tab.yaml, document 1: yaml: line 3: found character that cannot start any token"},
		{"broken YAML", "second document", []string{"apply", "-f", file("two.yaml", "kind: Source\nname: good-one\n---\nkind: Source\nname: [\n")}, "", "", "", exitError, "two.yaml, document 2: yaml"},
		{"broken YAML", "stdin", []string{"apply", "-f", "-"}, "kind: Source\n name: x\n  - y\n", "", "", exitError, "stdin, document 1: yaml"},
		{"broken JSON", "truncated", []string{"apply", "-f", file("trunc.json", `{"kind": "Source", "name": "a"`)}, "", "", "", exitError, "trunc.json, document 1: yaml: line 1: did not find expected ',' or '}'"},
		{"broken YAML", "empty file", []string{"apply", "-f", file("empty.yaml", "")}, "", "", "", exitError, "no resources in"},
		{"broken YAML", "only comments", []string{"apply", "-f", file("comments.yaml", "# nothing\n---\n")}, "", "", "", exitError, "no resources in"},
		{"broken YAML", "directory without resource files", []string{"apply", "-f", emptyDir}, "", "", "", exitError, "no resources in"},
		{"broken YAML", "no such file", []string{"apply", "-f", filepath.Join(dir, "nosuch.yaml")}, "", "", "", exitError, "nosuch.yaml: no such file or directory"},
		{"broken YAML", "a list, not a mapping", []string{"apply", "-f", file("list.yaml", "- kind: Source\n  name: a\n")}, "", "", "", exitError, "list.yaml, document 1: want a mapping with kind: Source or kind: Flow"},
		{"broken YAML", "a scalar", []string{"apply", "-f", file("scalar.yaml", "hello\n")}, "", "", "", exitError, "want a mapping"},
		{"NUL bytes", "raw NUL", []string{"apply", "-f", file("nul.yaml", "kind: Source\nname: a\x00\n")}, "", "", "", exitError, "nul.yaml, document 1: yaml: control characters are not allowed"},
		{"invalid UTF-8", "name", []string{"apply", "-f", file("utf8.yaml", "kind: Source\nname: \xff\xfe\n")}, "", "", "", exitError, "utf8.yaml, document 1: yaml: invalid leading UTF-8 octet"},
		{"huge and deep", "alias bomb", []string{"apply", "-f", file("bomb.yaml", bomb.String())}, "", "", "", exitError, "bomb.yaml, document 1: yaml: document contains excessive aliasing"},
		{"huge and deep", "nested 20,000 levels", []string{"apply", "-f", file("deep.yaml", "kind: Source\nname: x\ndescription: "+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+"\n")}, "", "", "", exitError, "deep.yaml, document 1: yaml: line 3: exceeded max depth of 10000"},
		// Unknown kinds and fields, wrong types.
		{"unknown kinds", "Widget", []string{"apply", "-f", file("kind.yaml", "kind: Widget\nname: a\n")}, "", "", "", exitError, `kind.yaml, document 1: kind "Widget": want Source or Flow`},
		{"unknown kinds", "missing", []string{"apply", "-f", file("nokind.yaml", "name: a\n")}, "", "", "", exitError, "kind is missing: want kind: Source or kind: Flow"},
		{"unknown fields", "top level", []string{"apply", "-f", file("unk.yaml", "kind: Source\nname: a\npartitionz: 3\n")}, "", "", "", exitError, `unk.yaml, document 1 (Source): unknown field "partitionz"`},
		{"unknown fields", "nested", []string{"apply", "-f", file("unk2.yaml", flow("f", "")+"    method: DELETE\n")}, "", "", "", exitError, `(Flow): unknown field "method"`},
		{"wrong types", "string for a number", []string{"apply", "-f", file("type.yaml", "kind: Source\nname: a\npartitions: three\n")}, "", "", "", exitError, `(Source): invalid value for int32 field partitions: "three"`},
		{"wrong types", "list for a string", []string{"apply", "-f", file("type2.yaml", "kind: Source\nname: [a, b]\n")}, "", "", "", exitError, "(Source): invalid value for string field name: ["},
		{"wrong types", "infinity", []string{"apply", "-f", file("inf.yaml", "kind: Source\nname: a\npartitions: .inf\n")}, "", "", "", exitError, "partitions: +Inf is not a number JSON can hold"},
		{"wrong types", "number keys", []string{"apply", "-f", file("keys.yaml", "kind: Source\nname: a\nauth: {1: 2}\n")}, "", "", "", exitError, "mapping keys must be strings"},
		{"wrong types", "two destinations", []string{"apply", "-f", file("two-dest.yaml", flow("f", "")+"  kafka:\n    topic: t\n")}, "", "", "", exitError, "oneof samsa.v1.Destination.kind is already set"},
		// Names that break topic naming: refused before any request.
		{"bad names", "missing", []string{"apply", "-f", file("noname.yaml", "kind: Source\npartitions: 3\n")}, "", "", "", exitError, "noname.yaml, document 1 (Source): name is missing"},
		{"bad names", "capitals", []string{"apply", "-f", file("caps.yaml", "kind: Source\nname: Bad_Name\n")}, "", "", "", exitError, `(Source): name "Bad_Name" must match ^[a-z][a-z0-9-]{0,62}$`},
		{"bad names", "slash", []string{"apply", "-f", file("slash.yaml", "kind: Flow\nname: a/b\n")}, "", "", "", exitError, `(Flow): name "a/b" must match`},
		{"bad names", "dot dot", []string{"apply", "-f", file("dots.yaml", "kind: Source\nname: ..\n")}, "", "", "", exitError, `name ".." must match`},
		{"bad names", "escaped NUL", []string{"apply", "-f", file("escnul.yaml", "kind: Source\nname: \"a\\0b\"\n")}, "", "", "", exitError, `name "a\x00b" must match`},
		{"bad names", "64 characters", []string{"apply", "-f", file("long.yaml", "kind: Source\nname: a"+strings.Repeat("b", 63)+"\n")}, "", "", "", exitError, "at most 63 characters"},
		{"bad names", "get", []string{"get", "flow", "a/b"}, "", "", "", exitUsage, `flow name "a/b" must match`},
		{"bad names", "get ..", []string{"get", "source", ".."}, "", "", "", exitUsage, `source name ".." must match`},
		{"bad names", "get --source", []string{"get", "flows", "--source", "a&b=c"}, "", "", "", exitUsage, `--source name "a&b=c" must match`},
		{"bad names", "delete", []string{"delete", "flow", "A B"}, "", "", "", exitUsage, `flow name "A B" must match`},
		{"bad names", "pause", []string{"pause", "../x"}, "", "", "", exitUsage, `flow name "../x" must match`},
		{"bad names", "status", []string{"status", "x?y=1"}, "", "", "", exitUsage, `flow name "x?y=1" must match`},
		{"bad names", "dlq redrive", []string{"dlq", "redrive", "a%2Fb"}, "", "", "", exitUsage, `flow name "a%2Fb" must match`},
		{"bad names", "test", []string{"test", "Flow"}, "", "", "", exitUsage, `flow name "Flow" must match`},
		// What the server refuses: one message, the field named once.
		{"server validation", "SSRF target", []string{"apply", "-f", file("ssrf.yaml", strings.Replace(flow("ssrf", ""), "https://hooks.example.com/x", "http://169.254.169.254/latest/meta-data/", 1))}, "", "", "", exitError, "flow/ssrf: flow.destination.http.url: host 169.254.169.254 is a cloud metadata service"},
		{"server validation", "unknown source", []string{"apply", "-f", file("unknown-src.yaml", flow("orphan", ""))}, "", "", "", exitError, `flow/orphan: flow.source: unknown source "nosuch"`},
		{"server validation", "endless loop", []string{"apply", "-f", file("loop.yaml", flow("loop", "transform: |\n  while True:\n      pass\n  def transform(event):\n      return event.data\n"))}, "", "", "", exitError, "flow/loop: flow.transform: line 1, column 1: exceeded the"},
		{"server validation", "metadata URL", []string{"apply", "-f", file("meta.yaml", strings.Replace(flow("meta", ""), "https://hooks.example.com/x", "http://metadata.google.internal/", 1))}, "", "", "", exitError, "metadata.google.internal is a cloud metadata service"},
		// 401 and 403.
		{"credentials", "no token", []string{"get", "flows"}, "", "", "-", exitAuth, "missing token: send Authorization: Bearer <token>"},
		{"credentials", "wrong token", []string{"get", "flows"}, "", "", "wrong-token-wrong-token", exitAuth, "invalid token"},
		{"credentials", "viewer applies", []string{"apply", "-f", file("viewer.yaml", "kind: Source\nname: by-viewer\n")}, "", "", viewerTok, exitAuth, "role viewer may not call samsa.v1.SourceService/PutSource (needs editor)"},
		{"credentials", "viewer deletes", []string{"delete", "source", "any"}, "", "", viewerTok, exitAuth, "role viewer may not call"},
		{"credentials", "token with a line break", []string{"get", "flows"}, "", "", "abc\ndef", exitUsage, "--token: holds a space or a control character"},
		{"credentials", "unknown flow", []string{"status", "nosuch"}, "", "", "", exitNotFound, `flow "nosuch": not found`},
		// Missing and invalid flags.
		{"flags", "apply without -f", []string{"apply"}, "", "", "", exitUsage, "usage: samsa apply -f FILE"},
		{"flags", "-f without a value", []string{"apply", "-f"}, "", "", "", exitUsage, "flag needs an argument: -f"},
		{"flags", "unknown flag", []string{"get", "flows", "--bogus"}, "", "", "", exitUsage, "flag provided but not defined: -bogus"},
		{"flags", "unknown command", []string{"frobnicate"}, "", "", "", exitUsage, `unknown command "frobnicate"`},
		{"flags", "output format", []string{"get", "flows", "-o", "xml"}, "", "", "", exitUsage, `-o "xml": want table, json or yaml`},
		{"flags", "version not a number", []string{"delete", "flow", "x", "--version", "abc"}, "", "", "", exitUsage, `invalid value "abc" for flag -version`},
		{"flags", "since not a time", []string{"dlq", "redrive", "x", "--since", "yesterday"}, "", "", "", exitUsage, `--since "yesterday": want an RFC 3339 time`},
		{"flags", "too many arguments", []string{"status", "a", "b"}, "", "", "", exitUsage, "usage: samsa status FLOW"},
		{"flags", "get what", []string{"get", "widgets"}, "", "", "", exitUsage, `get "widgets": want sources or flows`},
		{"flags", "test without a flow", []string{"test"}, "", "", "", exitUsage, "usage: samsa test FLOW"},
		{"flags", "test events not JSON", []string{"test", "some-flow"}, "{\"type\": \n", "", "", exitError, "stdin, line 1: unexpected EOF"},
		{"flags", "test event unknown field", []string{"test", "some-flow"}, `{"tpye": "x"}` + "\n", "", "", exitError, `unknown field "tpye"`},
		// A wrong or unreachable --server.
		{"server", "no scheme", []string{"get", "flows", "--server", "127.0.0.1:8080"}, "", "", "", exitUsage, `--server "127.0.0.1:8080": want the control API's base URL`},
		{"server", "host:port", []string{"get", "flows", "--server", "localhost:8080"}, "", "", "", exitUsage, `--server "localhost:8080": want the control API's base URL`},
		{"server", "ftp", []string{"get", "flows", "--server", "ftp://x"}, "", "", "", exitUsage, `--server "ftp://x"`},
		{"server", "empty", []string{"get", "flows", "--server", ""}, "", "", "", exitUsage, `--server "": want the control API's base URL`},
		{"server", "garbage", []string{"get", "flows", "--server", "ht!tp://x y"}, "", "", "", exitUsage, `--server "ht!tp://x y"`},
		{"server", "credentials in the URL", []string{"get", "flows", "--server", "http://u:p@127.0.0.1:8080"}, "", "", "", exitUsage, "want the control API's base URL"},
		{"server", "unreachable", []string{"get", "flows"}, "", "http://127.0.0.1:1", "", exitError, "cannot reach the control API at http://127.0.0.1:1"},
		{"server", "unknown host", []string{"get", "flows"}, "", "http://nosuch.invalid", "", exitError, "cannot reach the control API at http://nosuch.invalid"},
		{"server", "https to an http server", []string{"get", "flows"}, "", "https://" + strings.TrimPrefix(srv, "http://"), "", exitError, "server gave HTTP response to HTTPS client"},
		// Answers that are not the control API's.
		{"answers", "HTML 502 from a proxy", []string{"get", "flows"}, "", fake + "/html502", "", exitError, "502 Bad Gateway: an HTML page (is --server the control API, or is a proxy in the way?)"},
		{"answers", "HTML page with 200", []string{"get", "flows"}, "", fake + "/html200", "", exitError, "is not JSON (an HTML page): is --server the control API?"},
		{"answers", "text with 200", []string{"get", "flows"}, "", fake + "/text200", "", exitError, `is not JSON ("hello..."): is --server the control API?`},
		{"answers", "plain text 503", []string{"get", "flows"}, "", fake + "/text503", "", exitError, `503 Service Unavailable: "upstream connect error"`},
		{"answers", "1 MB text error", []string{"get", "flows"}, "", fake + "/huge500", "", exitError, "500 Internal Server Error: \"xxxx"},
		{"answers", "plain text 401", []string{"get", "flows"}, "", fake + "/text401", "", exitAuth, "401 Unauthorized"},
		{"answers", "the receiver's 404", []string{"get", "flows"}, "", fake + "/receiver", "", exitNotFound, "not an answer of the control API: is --server right?"},
		{"answers", "control API 500", []string{"apply", "-f", file("ok.yaml", "kind: Source\nname: ok\n")}, "", fake + "/control500", "", exitError, "source/ok: internal error (request id abc)"},
		{"answers", "connection closed mid-answer", []string{"get", "flows"}, "", fake + "/cut", "", exitError, "reading the answer of " + fake + "/cut: unexpected EOF"},
		{"answers", "connection closed before an answer", []string{"get", "flows"}, "", fake + "/hangup", "", exitError, "cannot reach the control API at " + fake + "/hangup: EOF"},
		// samsa send, to the receiver.
		{"send", "no source", []string{"send"}, "", "", "", exitUsage, "the source name comes first"},
		{"send", "payload not JSON", []string{"send", "orders", "--receiver", fake + "/receiver", `{"a" 1}`}, "", "", "", exitUsage, "the payload is not valid JSON: invalid character '1' after object key at byte 6"},
		{"send", "truncated payload", []string{"send", "orders", "--receiver", fake + "/receiver", `{"a":`}, "", "", "", exitUsage, "the payload is not valid JSON: unexpected end of input"},
		{"send", "flags after the payload", []string{"send", "orders", `{"a":1}`, "--api-key", "k"}, "", "", "", exitUsage, "flags go before the payload"},
		{"send", "-n 0", []string{"send", "orders", "-n", "0", `{}`}, "", "", "", exitUsage, "-n 0: send at least one event"},
		{"send", "CRLF in --type", []string{"send", "orders", "--type", "a\r\nX-Evil: 1", `{}`}, "", "", "", exitUsage, `--type: holds a control character ('\r')`},
		{"send", "receiver without scheme", []string{"send", "orders", "--receiver", "127.0.0.1:8081", `{}`}, "", "", "", exitUsage, `--receiver "127.0.0.1:8081": want the receiver's base URL`},
		{"send", "unreachable receiver", []string{"send", "orders", "--receiver", "http://127.0.0.1:1", `{}`}, "", "", "", exitError, "cannot reach the receiver at http://127.0.0.1:1"},
		{"send", "receiver refuses", []string{"send", "orders", "--receiver", fake + "/receiver", `{}`}, "", "", "", exitError, "404 Not Found: no such endpoint"},
		{"send", "HTML from a proxy", []string{"send", "orders", "--receiver", fake + "/html502", `{}`}, "", "", "", exitError, "502 Bad Gateway: an HTML page"},
		{"send", "no such file", []string{"send", "orders", "-f", filepath.Join(dir, "nosuch.ndjson")}, "", "", "", exitError, "nosuch.ndjson: no such file or directory"},
	}
	for _, c := range cases {
		t.Run(c.class+"/"+c.name, func(t *testing.T) {
			cl := &cli{t: t, server: srv, token: editorTok}
			if c.server != "" {
				cl.server = c.server
			}
			switch c.token {
			case "":
			case "-":
				cl.token = ""
			default:
				cl.token = c.token
			}
			code, stdout, stderr := cl.run(c.stdin, c.args...)
			out := stdout + stderr
			if code != c.exit {
				t.Errorf("exit %d, want %d\n%s", code, c.exit, out)
			}
			if !strings.Contains(stderr, c.msg) {
				t.Errorf("stderr does not name the problem: want %q in\n%s", c.msg, stderr)
			}
			for _, bad := range []string{"panic", "goroutine ", ".go:", "<html", "<!DOCTYPE", "<body", "\x00"} {
				if strings.Contains(out, bad) {
					t.Errorf("output holds %q:\n%s", bad, out)
				}
			}
			// One message, not a page: usage text aside, the error is a
			// line or two.
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.HasPrefix(l, "samsa") || strings.HasPrefix(l, "source/") || strings.HasPrefix(l, "flow/") {
					lines = append(lines, l)
				}
			}
			if len(lines) == 0 || len(lines) > 3 || len(strings.Join(lines, "\n")) > 600 {
				t.Errorf("want one short error message, got %d lines:\n%s", len(lines), stderr)
			}
		})
	}

	// Nothing of what was refused reached the server; the check can fail.
	cl := &cli{t: t, server: srv, token: editorTok}
	if out := cl.must("", "get", "sources"); out != "No sources.\n" {
		t.Errorf("refused applies left sources behind:\n%s", out)
	}
	if out := cl.must("", "get", "flows"); out != "No flows.\n" {
		t.Errorf("refused applies left flows behind:\n%s", out)
	}
	cl.must("", "apply", "-f", file("good.yaml", "kind: Source\nname: good-after\n"))
	if out := cl.must("", "get", "sources"); !strings.Contains(out, "good-after") {
		t.Errorf("a good apply after the bad ones:\n%s", out)
	}
}

// badServer answers as things that are not the control API do; the first
// path segment of --server picks the behaviour.
func badServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	html := "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
	mux.HandleFunc("/html502/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, html)
	})
	mux.HandleFunc("/html200/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Welcome to the intranet</body></html>")
	})
	mux.HandleFunc("/text200/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello\nworld\n") })
	mux.HandleFunc("/text503/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/huge500/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, strings.Repeat("x", 1<<20), http.StatusInternalServerError)
	})
	mux.HandleFunc("/text401/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
	mux.HandleFunc("/receiver/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"no such endpoint: POST /v1/sources/{source}/events ingests events"}`)
	})
	mux.HandleFunc("/control500/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":"internal error (request id abc)","code":"INTERNAL","requestId":"abc"}`)
	})
	hijack := func(w http.ResponseWriter, write string) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if write != "" {
			_, _ = conn.Write([]byte(write))
		}
		conn.Close()
	}
	mux.HandleFunc("/cut/", func(w http.ResponseWriter, _ *http.Request) {
		hijack(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"flows\": [")
	})
	mux.HandleFunc("/hangup/", func(w http.ResponseWriter, _ *http.Request) { hijack(w, "") })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}
