package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/cmd/samsa/dev"
	"github.com/samsa-dev/samsa/cmd/samsa/sink"
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

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTrace follows a delivered event and a filtered one through a flow of
// the whole platform (samsa dev in-process) with `samsa trace`.
func TestTrace(t *testing.T) {
	kafkaAddr := freeAddr(t)
	port := mustPort(t, kafkaAddr)
	cfg := dev.Config{KafkaPort: port, ControlHTTP: freeAddr(t), ControlGRPC: freeAddr(t),
		ReceiverHTTP: freeAddr(t), ReceiverGRPC: freeAddr(t), LogLevel: "error"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx, cfg, &strings.Builder{}) }()
	t.Cleanup(func() { cancel(); <-done })

	sinkAddr := freeAddr(t)
	sctx, stopSink := context.WithCancel(context.Background())
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Main(sctx, []string{"--addr", sinkAddr, "--quiet"}, &strings.Builder{}) }()
	t.Cleanup(func() { stopSink(); <-sinkDone })

	c := &cli{t: t, server: "http://" + cfg.ControlHTTP}
	for deadline := time.Now().Add(60 * time.Second); ; {
		if code, _, _ := c.run("", "get", "flows"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("samsa dev not ready in 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.must(`kind: Source
name: shop
---
kind: Flow
name: big
source: shop
filter: event.data["amount"] >= 10
destination:
  http:
    url: http://`+sinkAddr+`/hook
    allowPrivateNetwork: true
`, "apply", "-f", "-")
	rcv := "--receiver=http://" + cfg.ReceiverHTTP
	send := func(body string) string {
		return strings.TrimSpace(c.must("", "send", "shop", rcv, body))
	}
	// The first events may arrive before the transformer joins the new
	// topic; it starts from the flow's creation, so they are not lost.
	big, small := send(`{"amount":42}`), send(`{"amount":2}`)

	trace := func(id string) string {
		return c.must("", "trace", id, "--flow", "big", "--kafka-brokers", kafkaAddr)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		out := trace(big)
		if strings.Contains(out, "delivered") {
			if !strings.Contains(out, "ingested    samsa.src.shop") || !strings.Contains(out, "transformed samsa.out.big") {
				t.Fatalf("trace of a delivered event lacks its stages:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not traced as delivered within 60s:\n%s", big, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		out := trace(small)
		if strings.Contains(out, "filtered out") {
			if strings.Contains(out, "transformed") {
				t.Fatalf("filtered event traced as transformed:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not traced as filtered out within 30s:\n%s", small, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _, errs := c.run("", "trace", big); code != exitUsage {
		t.Fatalf("trace without --flow: exit %d (%s), want %d", code, errs, exitUsage)
	}
}
