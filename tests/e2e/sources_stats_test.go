package e2e

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/tests/e2e/harness"
)

// sourceStatus is the part of GET /v1/sourcestatuses the test looks at.
type sourceStatus struct {
	Name         string                 `json:"name"`
	Events       harness.Int            `json:"events"`
	Requests     harness.Int            `json:"requests"`
	Bytes        harness.Int            `json:"bytes"`
	Rejections   map[string]harness.Int `json:"rejections"`
	AuthFailures map[string]harness.Int `json:"authFailures"`
}

func (s sourceStatus) String() string {
	return fmt.Sprintf("events %d, requests %d, bytes %d, rejections %v, auth failures %v", s.Events, s.Requests, s.Bytes, s.Rejections, s.AuthFailures)
}

// TestSourceStatsAcrossReceivers runs control and two receivers as
// separate processes: the sources page (GET /v1/sourcestatuses) shows the
// events, requests, rejections and authentication failures of both
// receivers summed, and a receiver that restarts (a new instance) or is
// killed takes nothing away.
func TestSourceStatsAcrossReceivers(t *testing.T) {
	t.Parallel()
	c := harness.NewCluster(t)
	c.Start("control", "control-1")
	r1 := c.Start("receiver", "receiver-1", "--stats-interval", "500ms")
	r2 := c.Start("receiver", "receiver-2", "--stats-interval", "500ms")
	ctl := c.Control()
	const source = "clicks"
	must(t, ctl.PutSource(source, map[string]any{
		"partitions": partitions,
		"auth":       map[string]any{"apiKeys": []any{map[string]any{"name": "load", "key": apiKey}}},
	}))

	hc := &http.Client{Timeout: 15 * time.Second}
	post := func(r *harness.Proc, ctype, body, key string) int {
		t.Helper()
		// A receiver that has not read the new source yet answers 404
		// (counted for no source): ask again.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			req, err := http.NewRequest(http.MethodPost, r.URL()+"/v1/sources/"+source+"/events", strings.NewReader(body))
			must(t, err)
			req.Header.Set("Content-Type", ctype)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := hc.Do(req)
			must(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
				return resp.StatusCode
			}
		}
	}
	batch := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "{\"n\":%d}\n", i)
		}
		return b.String()
	}
	accept := func(r *harness.Proc, n int) {
		t.Helper()
		if code := post(r, "application/x-ndjson", batch(n), apiKey); code != http.StatusAccepted {
			t.Fatalf("%d events to %s: %d", n, r.Name, code)
		}
	}
	refuse := func(r *harness.Proc, ctype, body, key string, want int) {
		t.Helper()
		if code := post(r, ctype, body, key); code != want {
			t.Fatalf("bad request to %s: %d, want %d", r.Name, code, want)
		}
	}

	// 50 events in 5 requests over both receivers, and 5 bad requests.
	for range 3 {
		accept(r1, 10)
	}
	for range 2 {
		accept(r2, 10)
	}
	refuse(r1, "application/json", `{"a" 1}`, apiKey, http.StatusBadRequest)
	refuse(r1, "application/json", `[1,`, apiKey, http.StatusBadRequest)
	refuse(r2, "text/plain", `{}`, apiKey, http.StatusUnsupportedMediaType)
	refuse(r1, "application/json", `{}`, "sk_not_the_key", http.StatusUnauthorized)
	refuse(r2, "application/json", `{}`, "", http.StatusUnauthorized)

	list := func() (sourceStatus, bool, error) {
		var out struct {
			IngestKnown bool           `json:"ingestKnown"`
			Statuses    []sourceStatus `json:"statuses"`
		}
		if err := ctl.Do(http.MethodGet, "/v1/sourcestatuses", nil, &out); err != nil {
			return sourceStatus{}, false, err
		}
		for _, s := range out.Statuses {
			if s.Name == source {
				return s, out.IngestKnown, nil
			}
		}
		return sourceStatus{}, out.IngestKnown, fmt.Errorf("source %s not listed", source)
	}
	wait := func(what string, ok func(sourceStatus) bool) sourceStatus {
		t.Helper()
		var st sourceStatus
		var known bool
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if st, known, err = list(); err == nil && known && ok(st) {
				return st
			}
		}
		t.Fatalf("%s: sources page shows %s (ingest known %v, error %v)", what, st, known, err)
		return st
	}
	rejections := map[string]harness.Int{"malformed": 2, "content_type": 1, "unauthenticated": 2}
	authFailures := map[string]harness.Int{"invalid_api_key": 1, "missing_credentials": 1}
	st := wait("two receivers", func(st sourceStatus) bool {
		return st.Events == 50 && st.Requests == 10 && maps.Equal(st.Rejections, rejections) && maps.Equal(st.AuthFailures, authFailures)
	})
	t.Logf("two receivers: %s", st)
	if st.Bytes < harness.Int(50*len(`{"n":1}`+"\n")) {
		t.Errorf("bytes %d: fewer than the events' bodies", st.Bytes)
	}

	// While receiver-1 stops and starts again, the numbers never go down.
	stop := make(chan struct{})
	var watched sync.WaitGroup
	var low []sourceStatus
	watched.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if s, _, err := list(); err == nil && (s.Events < 50 || s.Requests < 10) {
				low = append(low, s)
			}
		}
	})
	r1.Stop()
	r1.Restart(t)
	accept(r1, 5)
	wait("receiver-1 restarted", func(st sourceStatus) bool { return st.Events == 55 && st.Requests == 11 })
	close(stop)
	watched.Wait()
	if len(low) > 0 {
		t.Errorf("the numbers went down while a receiver restarted: %s", low[0])
	}

	// A killed receiver's last report keeps counting.
	r2.Kill()
	accept(r1, 1)
	st = wait("receiver-2 killed", func(st sourceStatus) bool { return st.Events == 56 && st.Requests == 12 })
	if !maps.Equal(st.Rejections, rejections) || !maps.Equal(st.AuthFailures, authFailures) {
		t.Errorf("after the restart and the kill: %s", st)
	}
}
