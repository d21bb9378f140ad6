package dev

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of Run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func do(t *testing.T, method, url, ctype, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevTraceFromIngestToDelivery runs the whole platform in one process,
// sends one event with a W3C traceparent and checks that the receiver,
// transformer and deliverer each recorded a span of that one trace, and
// that the destination got the trace context too.
func TestDevTraceFromIngestToDelivery(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	got := make(chan http.Header, 10)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer dest.Close()

	c := startDev(t)

	api := "http://" + c.ControlHTTP
	if code, body := do(t, http.MethodPut, api+"/v1/sources/shop", "application/json", `{"name":"shop"}`, nil); code != 200 {
		t.Fatalf("put source: %d %s", code, body)
	}
	flow := fmt.Sprintf(`{"name":"orders","source":"shop","transform":"def transform(event):\n    return {\"n\": event.data[\"n\"] + 1}\n","destination":{"http":{"url":%q,"allowPrivateNetwork":true}}}`, dest.URL+"/hook")
	if code, body := do(t, http.MethodPut, api+"/v1/flows/orders", "application/json", flow, nil); code != 200 {
		t.Fatalf("put flow: %d %s", code, body)
	}

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	// The transformer may join the source topic a moment after the flow is
	// put; resend (same id) until the event arrives.
	var h http.Header
	for deadline := time.Now().Add(60 * time.Second); h == nil; {
		code, body := do(t, http.MethodPost, "http://"+c.ReceiverHTTP+"/v1/sources/shop/events", "application/json", `{"n":41}`,
			map[string]string{"traceparent": parent, "Idempotency-Key": "ev-1"})
		if code != http.StatusAccepted {
			t.Fatalf("ingest: %d %s", code, body)
		}
		select {
		case h = <-got:
		case <-time.After(2 * time.Second):
			if time.Now().After(deadline) {
				t.Fatal("event not delivered within 60s")
			}
		}
	}
	if h.Get("webhook-id") != "ev-1" {
		t.Fatalf("webhook-id %q, want ev-1", h.Get("webhook-id"))
	}
	if tpH := h.Get("traceparent"); !strings.Contains(tpH, traceID) {
		t.Fatalf("destination got traceparent %q, want one in trace %s", tpH, traceID)
	}

	want := map[string]bool{"samsa.ingest": false, "samsa.transform": false, "samsa.deliver": false}
	for deadline := time.Now().Add(10 * time.Second); ; {
		for _, s := range exp.GetSpans() {
			if _, ok := want[s.Name]; ok && s.SpanContext.TraceID().String() == traceID {
				want[s.Name] = true
			}
		}
		if want["samsa.ingest"] && want["samsa.transform"] && want["samsa.deliver"] {
			break
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range exp.GetSpans() {
				names = append(names, s.Name+"@"+s.SpanContext.TraceID().String())
			}
			t.Fatalf("spans of trace %s: %v; all spans: %v", traceID, want, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startDev runs samsa dev on free ports with an embedded broker until the
// test ends, and returns its configuration once it is ready.
func startDev(t *testing.T) Config {
	t.Helper()
	c := Config{
		KafkaPort:   0,
		ControlHTTP: freeAddr(t), ControlGRPC: freeAddr(t),
		ReceiverHTTP: freeAddr(t), ReceiverGRPC: freeAddr(t),
		LogLevel: "error",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() { done <- Run(ctx, c, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("samsa dev did not stop within 60s")
		}
	})
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "samsa dev is running"); {
		if time.Now().After(deadline) {
			t.Fatalf("samsa dev not ready in 60s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}
