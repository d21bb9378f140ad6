package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Payload is what every generated event carries: its logical identity, so
// that the checker can recognise it whatever the transform kept.
type Payload struct {
	Key    string `json:"k"`
	Seq    int    `json:"seq"`
	Poison bool   `json:"poison,omitempty"`
}

// Load posts Keys × PerKey events to a source through the receiver's REST
// front door, as NDJSON batches of Batch events of one key each. Batches of
// one key go one after the other (the next once the previous was
// acknowledged), so the source topic holds each key's events in sequence
// order; keys run concurrently. A failed request is retried with the same
// Idempotency-Key, so its events keep their ids.
type Load struct {
	URL string // receiver base URL
	// More receiver base URLs: a retried request goes to the next one.
	Failover []string
	Source   string
	APIKey   string
	Prefix   string // makes ids unique per run
	Keys     int
	PerKey   int
	Batch    int
	// Pace waits between two batches of a key (spreads the load over time).
	Pace time.Duration
	// Poison marks events whose payload has "poison": true.
	Poison func(key string, seq int) bool
	// Type is the ce-type of every event (default "test.event").
	Type string

	mu      sync.Mutex
	sent    map[string]Sent
	posted  atomic.Int64
	retries atomic.Int64
}

// Sent is one generated event.
type Sent struct {
	ID     string
	Key    string
	Seq    int
	Poison bool
	Acked  bool
}

// KeyName is the partition key of key number i.
func KeyName(i int) string { return fmt.Sprintf("key-%02d", i) }

// ID is the event id of sequence seq of key.
func (l *Load) ID(key string, seq int) string {
	b := seq / l.Batch
	return fmt.Sprintf("%s-%s-b%d-%d", l.Prefix, key, b, seq%l.Batch)
}

// Run sends everything and returns when every batch is acknowledged or ctx
// is done.
func (l *Load) Run(ctx context.Context) error {
	if l.Type == "" {
		l.Type = "test.event"
	}
	l.mu.Lock()
	if l.sent == nil {
		l.sent = map[string]Sent{}
	}
	l.mu.Unlock()
	cl := &http.Client{Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, l.Keys)
	for k := 0; k < l.Keys; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.runKey(ctx, cl, k); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (l *Load) runKey(ctx context.Context, cl *http.Client, k int) error {
	key := KeyName(k)
	for start := 0; start < l.PerKey; start += l.Batch {
		var body bytes.Buffer
		var batch []Sent
		for seq := start; seq < start+l.Batch && seq < l.PerKey; seq++ {
			p := Payload{Key: key, Seq: seq, Poison: l.Poison != nil && l.Poison(key, seq)}
			b, _ := json.Marshal(p)
			body.Write(b)
			body.WriteByte('\n')
			batch = append(batch, Sent{ID: l.ID(key, seq), Key: key, Seq: seq, Poison: p.Poison})
		}
		l.mu.Lock()
		for _, s := range batch {
			l.sent[s.ID] = s
		}
		l.mu.Unlock()
		idem := fmt.Sprintf("%s-%s-b%d", l.Prefix, key, start/l.Batch)
		if err := l.post(ctx, cl, k, key, idem, body.Bytes()); err != nil {
			return err
		}
		l.mu.Lock()
		for _, s := range batch {
			s.Acked = true
			l.sent[s.ID] = s
		}
		l.mu.Unlock()
		if l.Pace > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(l.Pace):
			}
		}
	}
	return nil
}

// post sends one batch until it is acknowledged, honouring Retry-After.
func (l *Load) post(ctx context.Context, cl *http.Client, k int, key, idem string, body []byte) error {
	urls := append([]string{l.URL}, l.Failover...)
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Idempotency-Key", idem)
	h.Set("Samsa-Key", key)
	h.Set("ce-type", l.Type)
	if l.APIKey != "" {
		h.Set("Authorization", "Bearer "+l.APIKey)
	}
	return PostEvents(ctx, cl, func(attempt int) string {
		if attempt > 0 {
			l.retries.Add(1)
		}
		l.posted.Add(1)
		return urls[(k+attempt)%len(urls)]
	}, l.Source, h, body)
}

// PostEvents posts body to a source's events endpoint until it is
// acknowledged (202). 404 (a source reaches the receiver through
// samsa.flows a moment after control stored it), 429 and 5xx, and
// connection errors, are retried with the same request after Retry-After
// or 200 ms, so a retried batch keeps its ids (given an Idempotency-Key
// in header). base returns the receiver's URL for each attempt, from 0.
func PostEvents(ctx context.Context, cl *http.Client, base func(attempt int) string, source string, header http.Header, body []byte) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base(attempt)+"/v1/sources/"+source+"/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = header.Clone()
		resp, err := cl.Do(req)
		wait := 200 * time.Millisecond
		if err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusAccepted:
				return nil
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
				resp.StatusCode == http.StatusNotFound:
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
					wait = time.Duration(s) * time.Second
				}
			default:
				return fmt.Errorf("load: batch %s: %d %s", header.Get("Idempotency-Key"), resp.StatusCode, msg)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load: batch %s not acknowledged: %w", header.Get("Idempotency-Key"), ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Sent returns every generated event by id.
func (l *Load) Sent() map[string]Sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Sent, len(l.sent))
	for k, v := range l.sent {
		out[k] = v
	}
	return out
}

// Acked is the number of acknowledged events.
func (l *Load) Acked() int {
	n := 0
	for _, s := range l.Sent() {
		if s.Acked {
			n++
		}
	}
	return n
}

// Retries is the number of requests that were retries.
func (l *Load) Retries() int64 { return l.retries.Load() }

// WarmupKey is the payload key of warm-up events; the checker ignores them.
const WarmupKey = "warmup"

// Warmup posts n events with n different partition keys (so that, with
// n well above the partition count, every partition of the source topic
// holds one) as one CloudEvents batch, retrying until it is acknowledged.
// Sent before a source's first flow is created, they give the transformer
// records to find when it looks for its start offset by time.
func Warmup(ctx context.Context, url, source, apiKey, prefix string, n int) error {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"specversion": "1.0", "id": fmt.Sprintf("%s-warmup-%d", prefix, i),
			"source": "e2e", "type": "warmup", "partitionkey": fmt.Sprintf("warmup-%d", i),
			"data": Payload{Key: WarmupKey, Seq: i}}
	}
	body, _ := json.Marshal(evs)
	cl := &http.Client{Timeout: 20 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/sources/"+source+"/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		resp, err := cl.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return nil
			}
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return fmt.Errorf("warmup: %d %s", resp.StatusCode, msg)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("warmup: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
