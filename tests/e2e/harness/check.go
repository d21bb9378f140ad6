package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
)

// Check compares what a scenario sent with what its destination received,
// what its dead-letter topic holds and what the status API says.
type Check struct {
	Scenario   string
	Sent       map[string]Sent
	Deliveries []Delivery
	// WantDelivered says which events the flow must deliver (default: every
	// event that is not poison).
	WantDelivered func(Sent) bool
	// WantDLQ says which events must be dead-lettered (default: poison).
	WantDLQ func(Sent) bool
	// DLQ are the event ids read from the flow's dead-letter topic.
	DLQ    []string
	Status *Status
}

// Result holds the checker's figures for one scenario.
type Result struct {
	Scenario        string
	Sent, Acked     int
	Delivered       int // distinct events delivered
	Missing         int // acknowledged, expected, never delivered
	Unexpected      int // delivered but not expected (filtered, poison, unknown)
	Dup             int // deliveries beyond the first of an event
	DupOtherID      int // duplicates whose webhook-id differs from the first
	IDMismatch      int // webhook-id is not the event's id
	OrderViolations int
	DLQ             int
	DLQMissing      int
	DLQUnexpected   int
	DLQDup          int
	StatusOK        bool
	StatusWhy       string
	Examples        []string
}

// Run computes the figures.
func (c Check) Run() Result {
	wantDel := c.WantDelivered
	if wantDel == nil {
		wantDel = func(s Sent) bool { return !s.Poison }
	}
	wantDLQ := c.WantDLQ
	if wantDLQ == nil {
		wantDLQ = func(s Sent) bool { return s.Poison }
	}
	r := Result{Scenario: c.Scenario, Sent: len(c.Sent)}
	byLogical := map[string]Sent{}
	for _, s := range c.Sent {
		if s.Acked {
			r.Acked++
		}
		byLogical[fmt.Sprintf("%s/%d", s.Key, s.Seq)] = s
	}
	example := func(format string, args ...any) {
		if len(r.Examples) < 8 {
			r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
		}
	}
	firstID := map[string]string{}
	maxSeq := map[string]int{}
	for _, d := range c.Deliveries {
		var p Payload
		if err := json.Unmarshal(d.Body, &p); err != nil || p.Key == "" {
			r.Unexpected++
			example("undecodable delivery %s: %.80s", d.WebhookID, d.Body)
			continue
		}
		if p.Key == WarmupKey {
			continue
		}
		lk := fmt.Sprintf("%s/%d", p.Key, p.Seq)
		s, known := byLogical[lk]
		if !known || !wantDel(s) {
			r.Unexpected++
			example("unexpected delivery %s (%s)", d.WebhookID, lk)
			continue
		}
		if d.WebhookID != s.ID {
			r.IDMismatch++
			example("webhook-id %s for event %s", d.WebhookID, s.ID)
		}
		if id, seen := firstID[lk]; seen {
			r.Dup++
			if id != d.WebhookID {
				r.DupOtherID++
			}
			continue
		}
		firstID[lk] = d.WebhookID
		r.Delivered++
		if m, ok := maxSeq[p.Key]; ok && p.Seq < m {
			r.OrderViolations++
			example("order: %s seq %d first delivered after seq %d", p.Key, p.Seq, m)
		} else {
			maxSeq[p.Key] = p.Seq
		}
	}
	inDLQ := map[string]int{}
	for _, id := range c.DLQ {
		inDLQ[id]++
	}
	r.DLQ = len(inDLQ)
	for id, n := range inDLQ {
		if n > 1 {
			r.DLQDup += n - 1
		}
		s, ok := c.Sent[id]
		if !ok || !wantDLQ(s) {
			r.DLQUnexpected++
			example("unexpected dead letter %s", id)
		}
	}
	for _, s := range c.Sent {
		if !s.Acked {
			continue
		}
		if wantDel(s) {
			if _, ok := firstID[fmt.Sprintf("%s/%d", s.Key, s.Seq)]; !ok {
				r.Missing++
				example("missing %s", s.ID)
			}
		}
		if wantDLQ(s) && inDLQ[s.ID] == 0 {
			r.DLQMissing++
			example("not dead-lettered %s", s.ID)
		}
	}
	r.StatusOK, r.StatusWhy = statusOK(c.Status, r)
	return r
}

// statusOK checks the status counts against what the checker saw: they
// add up, nothing is in flight once everything arrived, and no stage
// counts fewer events than the destination and the DLQ hold.
func statusOK(st *Status, r Result) (bool, string) {
	if st == nil {
		return false, "no status"
	}
	c := st.Counts
	switch {
	case !st.AddsUp():
		return false, "counts do not add up: " + st.String()
	case c.InFlight != 0:
		return false, "events in flight after the drain: " + st.String()
	case int(c.Received) < r.Acked:
		return false, fmt.Sprintf("received %d < acknowledged %d", c.Received, r.Acked)
	case int(c.Delivered) < r.Delivered:
		return false, fmt.Sprintf("delivered %d < distinct deliveries %d", c.Delivered, r.Delivered)
	case int(c.DeadLettered) < r.DLQ:
		return false, fmt.Sprintf("dead-lettered %d < DLQ %d", c.DeadLettered, r.DLQ)
	}
	return true, ""
}

// Line is the checker's one-line summary.
func (r Result) Line() string {
	dup := fmt.Sprint(r.Dup)
	if r.Dup > 0 {
		if r.DupOtherID == 0 {
			dup += "(same id)"
		} else {
			dup += fmt.Sprintf("(%d other id)", r.DupOtherID)
		}
	}
	return fmt.Sprintf("scenario=%s sent=%d acked=%d delivered=%d missing=%d unexpected=%d dup=%s id_mismatch=%d order_violations=%d dlq=%d dlq_missing=%d dlq_unexpected=%d dlq_dup=%d status_ok=%t",
		r.Scenario, r.Sent, r.Acked, r.Delivered, r.Missing, r.Unexpected, dup, r.IDMismatch, r.OrderViolations, r.DLQ, r.DLQMissing, r.DLQUnexpected, r.DLQDup, r.StatusOK)
}

// Failures lists what breaks the guarantees.
func (r Result) Failures() []string {
	var f []string
	add := func(ok bool, msg string) {
		if !ok {
			f = append(f, msg)
		}
	}
	add(r.Missing == 0, fmt.Sprintf("%d acknowledged events missing", r.Missing))
	add(r.Unexpected == 0, fmt.Sprintf("%d unexpected deliveries", r.Unexpected))
	add(r.DupOtherID == 0, fmt.Sprintf("%d duplicates with another webhook-id", r.DupOtherID))
	add(r.IDMismatch == 0, fmt.Sprintf("%d deliveries with a webhook-id other than the event id", r.IDMismatch))
	add(r.OrderViolations == 0, fmt.Sprintf("%d per-key order violations", r.OrderViolations))
	add(r.DLQMissing == 0 && r.DLQUnexpected == 0 && r.DLQDup == 0,
		fmt.Sprintf("DLQ not as expected: %d missing, %d unexpected, %d duplicated", r.DLQMissing, r.DLQUnexpected, r.DLQDup))
	add(r.StatusOK, "status: "+r.StatusWhy)
	return f
}

// Assert logs the line and fails t on every broken guarantee; it returns
// the result.
func (r Result) Assert(t testing.TB) Result {
	t.Helper()
	t.Log(r.Line())
	fmt.Println(r.Line()) // one line per scenario in the suite's output
	for _, f := range r.Failures() {
		t.Errorf("%s: %s", r.Scenario, f)
	}
	if len(r.Failures()) > 0 && len(r.Examples) > 0 {
		t.Logf("examples:\n  %s", strings.Join(r.Examples, "\n  "))
	}
	return r
}

// ReadIDs reads every committed record of topic from the start and returns
// the event ids of their envelopes, in offset order per partition. It stops
// once the topic has been idle for three seconds.
func ReadIDs(ctx context.Context, brokers, topic string) ([]string, error) {
	ds, err := ReadDeliveries(ctx, brokers, topic)
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.WebhookID
	}
	sort.Strings(ids)
	return ids, err
}

// ReadDeliveries reads a Kafka destination topic (envelope format) with
// read_committed, from the start until it has been idle for three seconds,
// as deliveries: the event id and payload of every record, in offset order
// per partition.
func ReadDeliveries(ctx context.Context, brokers, topic string) ([]Delivery, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []Delivery
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		n := 0
		var decodeErr error
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			ev, err := event.Decode(rec.Value)
			if err != nil {
				decodeErr = err
				return
			}
			out = append(out, Delivery{WebhookID: ev.ID, Body: ev.Data, Status: 200, At: rec.Timestamp})
		})
		if decodeErr != nil {
			return out, decodeErr
		}
		if n == 0 && (ctx.Err() != nil || pctx.Err() != nil) {
			return out, nil
		}
	}
}
