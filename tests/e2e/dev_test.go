package e2e

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

// TestDevDataDir is issue 7's acceptance point "samsa dev --data-dir D
// restarted keeps its sources, flows and undelivered events": a flow whose
// destination is down, events sent, dev stopped (SIGTERM) and started again
// on the same directory, the destination brought up: every event arrives.
func TestDevDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	controlHTTP := harness.FreeAddr(t)
	receiverHTTP := harness.FreeAddr(t)
	kafkaPort := harness.FreeAddr(t)
	_, port, _ := net.SplitHostPort(kafkaPort)
	args := []string{"dev", "--data-dir", dir,
		"--control-http-addr", controlHTTP, "--control-grpc-addr", harness.FreeAddr(t),
		"--receiver-http-addr", receiverHTTP, "--receiver-grpc-addr", harness.FreeAddr(t),
		"--kafka-port", port}
	dev := harness.StartProcess(t, "samsa-dev", "samsa", args, "http://"+controlHTTP+"/readyz")
	ctl := &harness.Control{Base: "http://" + controlHTTP, HTTP: &http.Client{Timeout: 15 * time.Second}}

	sink := harness.NewSink(t)
	sink.Down()
	must(t, ctl.PutSource("devsrc", map[string]any{}))
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	must(t, harness.Warmup(wctx, "http://"+receiverHTTP, "devsrc", "", "dev", warmups))
	must(t, ctl.PutFlow("devflow", map[string]any{
		"source":      "devsrc",
		"transform":   passThrough,
		"destination": map[string]any{"http": map[string]any{"url": sink.URL(), "allowPrivateNetwork": true}},
		"delivery": map[string]any{
			"retry":          map[string]any{"initialBackoff": "100ms", "maxBackoff": "1s", "maxElapsed": "1h"},
			"circuitBreaker": map[string]any{"failureThreshold": 5, "openDuration": "1s"},
		},
	}))
	l := &harness.Load{URL: "http://" + receiverHTTP, Source: "devsrc", Prefix: "dev", Keys: 5, PerKey: 100, Batch: 10}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, l.Run(ctx))
	// Wait until the flow has transformed everything (the events are
	// undelivered in the delivery topic, not only in the source topic).
	st := waitStatus(t, ctl, "devflow", 30*time.Second, func(st *harness.Status) bool {
		return st.Counts.Received >= 500+warmups
	})
	t.Logf("before the restart: %v", st)

	stopAt := time.Now()
	dev.Stop()
	t.Logf("samsa dev stopped in %s (SIGTERM, destination down)", time.Since(stopAt).Round(time.Millisecond))
	dev.Restart(t)
	t.Logf("samsa dev ready again after %s", time.Since(stopAt).Round(time.Millisecond))
	for _, path := range []string{"/v1/sources/devsrc", "/v1/flows/devflow"} {
		if err := ctl.Do(http.MethodGet, path, nil, nil); err != nil {
			t.Errorf("after the restart: %v", err)
		}
	}
	sink.Up()
	if err := sink.WaitOK(ctx, 500+warmups, time.Minute); err != nil {
		t.Error(err)
	}
	s := &scenario{t: t, ctl: ctl, name: "devflow", sink: sink}
	st = s.waitStatus(20*time.Second, func(st *harness.Status) bool { return st.Counts.InFlight == 0 && st.AddsUp() })
	harness.Check{Scenario: "dev-data-dir-restart", Sent: l.Sent(), Deliveries: sink.Deliveries(), Status: st}.Run().Assert(t)
}
