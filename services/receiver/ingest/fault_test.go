package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

// The broker stops in the middle of a stream of requests and comes back:
// every request answered 2xx is in Kafka afterwards, every other one got
// 429 (buffer full) or 503 (Kafka unavailable), and the buffer stayed
// within its bound throughout.
func TestBrokerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a broker of its own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	broker, err := kafkatest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const maxBuffered = 24 << 10
	h := newHarness(t, []string{broker.Addr()}, func(c *Config) {
		c.ProduceTimeout = 3 * time.Second
		c.MaxBodyBytes = 4 << 10
		c.MaxBufferedBytes = maxBuffered
	})
	name := h.putSource(keyedSource(uniqueName("outage"))).GetName()
	// A broker just started can take a while to elect the new topic's
	// leaders: warm up until a request goes through.
	waitFor(t, time.Minute, "a first accepted request", func() bool {
		return h.post(name, "application/json", []byte(`{"warm":"up"}`), bearer...).status == http.StatusAccepted
	})

	type result struct {
		status int
		ids    []string
		after  int32 // phase when answered
	}
	var (
		phase   atomic.Int32 // 0 before the outage, 1 during, 2 after the restart
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		maxSeen atomic.Int64
	)
	count := func(f func(result) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if f(r) {
				n++
			}
		}
		return n
	}
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var b strings.Builder
				for j := 0; j < 10; j++ {
					fmt.Fprintf(&b, "{\"w\":%d,\"i\":%d,\"j\":%d,\"pad\":\"%s\"}\n", w, i, j, strings.Repeat("p", 100))
				}
				req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/sources/"+name+"/events", strings.NewReader(b.String()))
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Authorization", "Bearer "+apiKey)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("w%d-r%d", w, i))
				req.Header.Set("Samsa-Key", fmt.Sprintf("worker-%d", w))
				r, err := h.tryDo(req)
				if err != nil {
					t.Errorf("request %d of worker %d: %v", i, w, err)
					return
				}
				mu.Lock()
				results = append(results, result{status: r.status, ids: r.ids, after: phase.Load()})
				mu.Unlock()
				if r.status == http.StatusTooManyRequests {
					if r.header.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After: %s", r.raw)
					}
					// Back off a little, as a client honouring Retry-After would
					// (with a shorter wait, to keep the test quick).
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		})
	}
	wg.Go(func() {
		for {
			if b := h.r.prod.buffered.Load(); b > maxSeen.Load() {
				maxSeen.Store(b)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	waitFor(t, 30*time.Second, "accepted requests before the outage", func() bool {
		return count(func(r result) bool { return r.status == http.StatusAccepted }) >= 20
	})
	phase.Store(1)
	broker.Stop()
	waitFor(t, 60*time.Second, "a 503 during the outage", func() bool {
		return count(func(r result) bool { return r.status == http.StatusServiceUnavailable && r.after == 1 }) >= 1
	})
	if err := broker.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	phase.Store(2)
	waitFor(t, 90*time.Second, "accepted requests after the restart", func() bool {
		return count(func(r result) bool { return r.status == http.StatusAccepted && r.after == 2 }) >= 20
	})
	close(stop)
	wg.Wait()

	accepted := map[string]bool{}
	byStatus := map[int]int{}
	for _, r := range results {
		byStatus[r.status]++
		switch r.status {
		case http.StatusAccepted:
			for _, id := range r.ids {
				accepted[id] = true
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Errorf("unexpected status %d", r.status)
		}
	}
	t.Logf("answers by status: %v; events accepted: %d; buffer peak %d bytes", byStatus, len(accepted), maxSeen.Load())
	if byStatus[http.StatusTooManyRequests] == 0 {
		t.Errorf("no 429 while the buffer was full")
	}
	if peak := maxSeen.Load(); peak > maxBuffered {
		t.Errorf("buffered %d bytes, above the bound of %d", peak, maxBuffered)
	}

	missing := readIDs(t, h.kcfg, kafka.SourceTopic(name), accepted, time.Minute)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged events are not in Kafka, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
}

// readIDs reads topic until every id of want was seen and returns those
// that were not before timeout.
func readIDs(t testing.TB, kcfg *kafka.Config, topic string, want map[string]bool, timeout time.Duration) []string {
	t.Helper()
	left := make(map[string]bool, len(want))
	for id := range want {
		left[id] = true
	}
	cl, err := kcfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(left) > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Errorf("offset %d: %v", r.Offset, err)
				return
			}
			delete(left, e.ID)
		})
	}
	var out []string
	for id := range left {
		out = append(out, id)
	}
	return out
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// When the events in flight reach the buffer bound, the next request is
// refused at once with 429 and Retry-After, and the others still succeed.
func TestBufferFull(t *testing.T) {
	h := newHarness(t, testBrokers(t), func(c *Config) {
		c.MaxBodyBytes = 4 << 10
		c.MaxBufferedBytes = 8 << 10
		c.Linger = time.Second // holds the first requests' events in the buffer
	})
	name := h.putSource(keyedSource(uniqueName("full"))).GetName()
	h.mustAccept(name, "application/json", []byte(`{}`), bearer...) // creates the topic
	payload := []byte(`"` + strings.Repeat("x", 3000) + `"`)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/sources/"+name+"/events", strings.NewReader(string(payload)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+apiKey)
			r, err := h.tryDo(req)
			if err != nil {
				t.Error(err)
			}
			codes[i] = r.status
		})
	}
	waitFor(t, 10*time.Second, "two requests in the buffer", func() bool { return h.r.prod.inflight.Load() == 2 })
	r := h.post(name, "application/json", payload, bearer...)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || !strings.Contains(r.err, "buffer is full") {
		t.Errorf("third request: %d %s (Retry-After %q)", r.status, r.raw, r.header.Get("Retry-After"))
	}
	wg.Wait()
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusAccepted {
		t.Errorf("buffered requests answered %v, want 202s", codes)
	}
	if n := h.metric("samsa_receiver_rejections_total", map[string]string{"source": name, "reason": "buffer_full"}); n != 1 {
		t.Errorf("buffer_full rejections: %v", n)
	}
}

// Shutting down finishes the requests in flight: each is answered 202 and
// its events are in Kafka.
func TestGracefulShutdown(t *testing.T) {
	h := newHarness(t, testBrokers(t), func(c *Config) { c.Linger = time.Second })
	name := h.putSource(keyedSource(uniqueName("drain"))).GetName()
	h.mustAccept(name, "application/json", []byte(`{}`), bearer...)
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	ids := make([][]string, n)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/sources/"+name+"/events", strings.NewReader(fmt.Sprintf(`{"i":%d}`, i)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.Header.Set("Idempotency-Key", fmt.Sprintf("drain-%d", i))
			r, err := h.tryDo(req)
			if err != nil {
				t.Error(err)
			}
			codes[i], ids[i] = r.status, r.ids
		})
	}
	waitFor(t, 10*time.Second, "every request in flight", func() bool { return h.r.prod.inflight.Load() == n })
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wg.Wait()
	want := map[string]bool{}
	for i, c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("request %d: status %d during shutdown", i, c)
		}
		want[ids[i][0]] = true
	}
	if missing := readIDs(t, h.kcfg, kafka.SourceTopic(name), want, 30*time.Second); len(missing) > 0 {
		t.Fatalf("not in Kafka after shutdown: %v", missing)
	}
}
