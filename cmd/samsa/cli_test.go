package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/services/control/server"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

const (
	editorTok = "editor-token-0123456789abcdef"
	viewerTok = "viewer-token-0123456789abcdef"
)

// startControl runs a control service on the real broker for the test and
// returns its REST base URL.
func startControl(t *testing.T) string {
	t.Helper()
	topic := kafkatest.Topic(t)
	cfg := server.DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Auth.Tokens = []string{"editor:" + editorTok, "viewer:" + viewerTok}
	cfg.SecretKeys = []string{"k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))}
	cfg.FlowsTopic, cfg.StatsTopic = topic+".flows", topic+".stats"
	srv, err := server.New(cfg, zaptest.NewLogger(t), nil, &kafka.Config{Brokers: kafkatest.Brokers(t), ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control: %v", err)
		}
	})
	base := "http://" + srv.HTTPAddr()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("control not ready in 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cli runs the samsa command line in-process.
type cli struct {
	t      *testing.T
	server string
	token  string
}

func (c *cli) run(stdin string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"SAMSA_SERVER": c.server, "SAMSA_TOKEN": c.token}
	code = run(context.Background(), args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }})
	return code, out.String(), errb.String()
}

func (c *cli) must(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("samsa %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func TestApplyTwiceIsUnchanged(t *testing.T) {
	c := &cli{t: t, server: startControl(t), token: editorTok}
	src := fmt.Sprintf("shop-%d", time.Now().UnixNano()%1e8)
	file := filepath.Join(t.TempDir(), "shop.yaml")
	// The flow comes first: apply puts sources before flows.
	doc := fmt.Sprintf(`kind: Flow
name: big-orders
source: %[1]s
filter: event.type == "order.created" and event.data["amount"] >= 10
transform: |
  def transform(event):
      return {"order": event.data["id"], "total_cents": int(event.data["amount"] * 100)}
destination:
  http:
    url: https://fulfilment.example.com/hooks
    signingSecret: whsec_c2VjcmV0LXNpZ25pbmcta2V5
    secretHeaders:
      Authorization: Bearer very-secret
delivery:
  retry: {initialBackoff: 500ms, maxBackoff: 30s}
  maintenanceWindows:
    - {name: nightly, cron: "0 2 * * *", duration: 1h, timeZone: Europe/Berlin}
---
kind: Source
name: %[1]s
auth:
  apiKeys:
    - {name: web, key: sk_live_0123456789abcdef}
`, src)
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.must("", "apply", "-f", file)
	if want := fmt.Sprintf("source/%s created\nflow/big-orders created\n", src); out != want {
		t.Fatalf("first apply:\n%s\nwant\n%s", out, want)
	}
	out = c.must("", "apply", "-f", file)
	if want := fmt.Sprintf("source/%s unchanged\nflow/big-orders unchanged\n", src); out != want {
		t.Fatalf("second apply:\n%s\nwant\n%s", out, want)
	}

	// get -o yaml prints what apply reads back: unchanged (secrets are
	// redacted and kept), then updated once edited, then a conflict when
	// applied again with its old version.
	y := c.must("", "get", "flow", "big-orders", "-o", "yaml")
	if strings.Contains(y, "very-secret") || !strings.Contains(y, "<redacted>") || !strings.HasPrefix(y, "kind: Flow\n") {
		t.Fatalf("get -o yaml:\n%s", y)
	}
	if out := c.must(y, "apply", "-f", "-"); out != "flow/big-orders unchanged\n" {
		t.Fatalf("apply of get -o yaml: %s", out)
	}
	edited := strings.Replace(y, "maxBackoff: 30s", "maxBackoff: 1m", 1)
	if out := c.must(edited, "apply", "-f", "-"); out != "flow/big-orders updated\n" {
		t.Fatalf("apply of edited yaml: %s", out)
	}
	if code, _, errs := c.run(edited, "apply", "-f", "-"); code != exitConflict || !strings.Contains(errs, "version conflict") {
		t.Fatalf("stale apply: exit %d %s", code, errs)
	}

	// The other commands and their exit codes.
	if out := c.must("", "get", "flows"); !strings.Contains(out, "big-orders") || !strings.Contains(out, src) {
		t.Fatalf("get flows:\n%s", out)
	}
	if out := c.must("", "get", "sources", "-o", "json"); !strings.Contains(out, `"sources"`) || !strings.Contains(out, `"hash"`) {
		t.Fatalf("get sources -o json:\n%s", out)
	}
	if out := c.must("", "pause", "big-orders"); out != "flow/big-orders paused\n" {
		t.Fatalf("pause: %s", out)
	}
	if out := c.must("", "status", "big-orders"); !strings.Contains(out, "State:") || !strings.Contains(out, "paused") || !strings.Contains(out, "Next maintenance:") {
		t.Fatalf("status:\n%s", out)
	}
	if out := c.must("", "resume", "big-orders"); out != "flow/big-orders resumed\n" {
		t.Fatalf("resume: %s", out)
	}
	if code, out, errs := c.run("", "dlq", "redrive", "big-orders", "--since", "1h"); code != 0 || out != "flow/big-orders: redrove 0 of 0 dead letters\n" {
		t.Fatalf("dlq redrive: exit %d %s%s", code, out, errs)
	}
	events := `{"type": "order.created", "data": {"id": "o1", "amount": 12.5}}
{"type": "order.created", "data": {"id": "o2", "amount": 1}}
`
	if out := c.must(events, "test", "big-orders"); out != "event 1: {\"order\":\"o1\",\"total_cents\":1250}\nevent 2: filtered out\n" {
		t.Fatalf("test:\n%s", out)
	}
	if out := c.must(events, "test", "-f", file); !strings.Contains(out, "1250") {
		t.Fatalf("test -f:\n%s", out)
	}
	for _, tc := range []struct {
		args  []string
		token string
		want  int
	}{
		{[]string{"get", "flow", "nosuch"}, editorTok, exitNotFound},
		{[]string{"delete", "source", src}, editorTok, exitError}, // still read by a flow
		{[]string{"get", "flows"}, "wrong-token-wrong-token", exitAuth},
		{[]string{"pause", "big-orders"}, viewerTok, exitAuth},
		{[]string{"get", "flows"}, "", exitAuth},
		{[]string{"get"}, editorTok, exitUsage},
		{[]string{"get", "things"}, editorTok, exitUsage},
		{[]string{"get", "flows", "-o", "xml"}, editorTok, exitUsage},
		{[]string{"apply"}, editorTok, exitUsage},
		{[]string{"frobnicate"}, editorTok, exitUsage},
		{[]string{"get", "flows", "--bogus"}, editorTok, exitUsage},
		{[]string{"delete", "flow", "big-orders", "--version", "1"}, editorTok, exitConflict},
	} {
		c.token = tc.token
		if code, out, errs := c.run("", tc.args...); code != tc.want {
			t.Errorf("samsa %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.want, out, errs)
		}
	}
	c.token = editorTok
	if out := c.must("", "delete", "flow", "big-orders"); out != "flow/big-orders deleted\n" {
		t.Fatalf("delete: %s", out)
	}
	if code, _, _ := c.run("", "get", "flow", "big-orders"); code != exitNotFound {
		t.Fatalf("get deleted flow: exit %d", code)
	}
	// The server cannot be reached: 1.
	c.server = "http://127.0.0.1:1"
	if code, _, _ := c.run("", "get", "flows"); code != exitError {
		t.Fatalf("unreachable server: exit %d", code)
	}
}

func TestParseInterspersed(t *testing.T) {
	e := &env{stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	var f apiFlags
	fs := newFlagSet("get", "", e)
	f.register(fs, e, true)
	pos, err := parse(fs, []string{"flows", "-o", "json", "name", "--server", "http://x", "--", "-odd"})
	if err != nil || strings.Join(pos, ",") != "flows,name,-odd" || f.output != "json" || f.server != "http://x" {
		t.Fatalf("parse: %v %v %+v", pos, err, f)
	}
}
