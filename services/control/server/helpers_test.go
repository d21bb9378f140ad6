package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.RunMain(m)) }

const (
	adminTok  = "admin-token-0123456789abcdef"
	editorTok = "editor-token-0123456789abcdef"
	viewerTok = "viewer-token-0123456789abcdef"
)

var testKey = "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// env is one control deployment in a test: the topics its instances share.
type env struct {
	kcfg  *kafka.Config
	flows string
	stats string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	topic := kafkatest.Topic(t)
	return &env{
		kcfg:  &kafka.Config{Brokers: kafkatest.Brokers(t), ReplicationFactor: 1},
		flows: topic + ".flows",
		stats: topic + ".stats",
	}
}

func (e *env) config() Config {
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Auth.Tokens = []string{"admin:" + adminTok, "editor:" + editorTok, "viewer:" + viewerTok}
	cfg.SecretKeys = []string{testKey}
	cfg.FlowsTopic, cfg.StatsTopic = e.flows, e.stats
	cfg.DrainTimeout = 5 * time.Second
	return cfg
}

// instance is a running control service.
type instance struct {
	srv    *Server
	reg    *prometheus.Registry
	cc     *grpc.ClientConn
	stop   func()
	base   string // REST base URL
	src    samsav1.SourceServiceClient
	flows  samsav1.FlowServiceClient
	trans  samsav1.TransformServiceClient
	client *http.Client
}

// start runs a control instance of e and waits until it is ready. It is
// stopped when the test ends, or earlier by calling stop.
func (e *env) start(t testing.TB, mod ...func(*Config)) *instance {
	t.Helper()
	cfg := e.config()
	for _, m := range mod {
		m(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, zaptest.NewLogger(t), reg, e.kcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once atomic.Bool
	stop := func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	cc, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	in := &instance{srv: srv, reg: reg, cc: cc, stop: stop, base: "http://" + srv.HTTPAddr(),
		src: samsav1.NewSourceServiceClient(cc), flows: samsav1.NewFlowServiceClient(cc), trans: samsav1.NewTransformServiceClient(cc),
		client: &http.Client{Timeout: 30 * time.Second}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _ := in.rest(t, "GET", "/readyz", "", "")
		if code == http.StatusOK {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatal("control not ready within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rest calls the REST API with token (none when empty) and returns the
// status and body.
func (in *instance) rest(t testing.TB, method, path, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// restJSON is rest with a JSON response decoded into a map.
func (in *instance) restJSON(t testing.TB, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	code, b := in.rest(t, method, path, token, body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, path, code, b)
		}
	}
	return code, m
}

// as returns a context carrying token.
func as(token string) context.Context {
	ctx := context.Background()
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// uniqueName is a resource name no other test run uses, for resources whose
// topics live on the shared broker.
var nameSeq atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e8, nameSeq.Add(1))
}

// certPair returns a self-signed certificate and its key, PEM-encoded.
func certPair(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samsa-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
}

func httpFlow(name, source string) *samsav1.Flow {
	return &samsav1.Flow{
		Name:   name,
		Source: source,
		Filter: `event.type == "order.created"`,
		Transform: `def transform(event):
    return {"order": event.data["id"], "total": event.data["amount"] * 2}
`,
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url: "https://crm.example.com/hooks",
		}}},
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}
