package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "trace", summary: "find one event: where it is and what happened to it", run: runTrace})
}

// runTrace follows one event through a flow's topics: the source topic,
// the delivery topic and the dead-letter topic, and tells from the
// consumer groups' committed offsets whether it was transformed and
// delivered. It reads Kafka directly (--kafka-brokers), within --since.
func runTrace(ctx context.Context, e *env, args []string) error {
	var f apiFlags
	fs := newFlagSet("trace", "EVENT_ID --flow FLOW [--kafka-brokers host:port] [--since 24h]", e)
	f.register(fs, e, false)
	flowName := fs.String("flow", "", "the flow to follow the event through (required)")
	brokers := e.getenv("SAMSA_KAFKA_BROKERS")
	if brokers == "" {
		brokers = "127.0.0.1:9092"
	}
	fs.StringVar(&brokers, "kafka-brokers", brokers, "Kafka brokers, comma-separated (SAMSA_KAFKA_BROKERS)")
	since := fs.Duration("since", 24*time.Hour, "how far back to look")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 1, "trace EVENT_ID --flow FLOW"); err != nil {
		return err
	}
	if *flowName == "" {
		return usagef("usage: samsa trace EVENT_ID --flow FLOW (--flow is required)")
	}
	if err := checkName("--flow", *flowName); err != nil {
		return err
	}
	id := pos[0]
	cl := f.client()
	var fl samsav1.Flow
	if err := cl.do(ctx, "GET", path("/v1/flows/%s", *flowName), nil, &fl); err != nil {
		return err
	}
	var src samsav1.Source
	if err := cl.do(ctx, "GET", path("/v1/sources/%s", fl.GetSource()), nil, &src); err != nil {
		return err
	}
	srcTopic := src.GetTopic()
	if srcTopic == "" {
		srcTopic = kafka.SourceTopic(src.GetName())
	}
	kcfg := &kafka.Config{Brokers: strings.Split(brokers, ","), ClientID: "samsa-trace"}
	kc, err := kcfg.NewClient(nil)
	if err != nil {
		return err
	}
	defer kc.Close()
	t := &tracer{cl: kc, adm: kadm.NewClient(kc), id: id, since: time.Now().Add(-*since)}
	return t.run(ctx, e.stdout, &fl, &src, srcTopic)
}

type tracer struct {
	cl    *kgo.Client
	adm   *kadm.Client
	id    string
	since time.Time
}

// hit is one record of the event found in a topic.
type hit struct {
	rec *kgo.Record
	ev  *event.Event
}

func (t *tracer) run(ctx context.Context, w io.Writer, fl *samsav1.Flow, src *samsav1.Source, srcTopic string) error {
	fmt.Fprintf(w, "event %s in flow %s (source %s), looking back to %s\n", t.id, fl.GetName(), src.GetName(), t.since.Format(time.RFC3339))
	native := src.GetFormat() == "json" || src.GetFormat() == "bytes"
	ins, err := t.find(ctx, srcTopic, native)
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		fmt.Fprintf(w, "  ingest      not found in %s\n", srcTopic)
	}
	for _, h := range ins {
		fmt.Fprintf(w, "  ingested    %s partition %d offset %d at %s  type=%q key=%q\n", h.rec.Topic, h.rec.Partition, h.rec.Offset,
			h.rec.Timestamp.UTC().Format(time.RFC3339Nano), h.ev.Type, h.ev.Key)
		if h.ev.TraceParent != "" {
			fmt.Fprintf(w, "              traceparent %s\n", h.ev.TraceParent)
		}
	}
	outs, err := t.find(ctx, kafka.DeliveryTopic(fl.GetName()), false)
	if err != nil {
		return err
	}
	dead, err := t.find(ctx, kafka.DLQTopic(fl.GetName()), false)
	if err != nil {
		return err
	}
	deadByStage := map[string]bool{}
	for _, h := range dead {
		f := dlq.Parse(h.rec.Headers)
		deadByStage[f.Stage] = true
	}
	if len(outs) == 0 {
		switch {
		case len(ins) == 0:
		case deadByStage["decode"] || deadByStage["filter"] || deadByStage["transform"] || deadByStage["encode"]:
			fmt.Fprintf(w, "  transform   failed: dead-lettered (below)\n")
		default:
			done, err := t.committedPast(ctx, kafka.TransformerGroup, ins[len(ins)-1].rec)
			if err != nil {
				return err
			}
			if done {
				fmt.Fprintf(w, "  transform   filtered out (the filter was false or the transform returned None)\n")
			} else {
				fmt.Fprintf(w, "  transform   waiting: the transformer has not reached it yet\n")
			}
		}
	}
	for _, h := range outs {
		fmt.Fprintf(w, "  transformed %s partition %d offset %d  id=%s\n", h.rec.Topic, h.rec.Partition, h.rec.Offset, h.ev.ID)
		delivered, err := t.committedPast(ctx, kafka.DelivererGroup, h.rec)
		if err != nil {
			return err
		}
		switch {
		case delivered && !deadByStage["deliver"]:
			fmt.Fprintf(w, "  delivered   (the deliverer committed past it)\n")
		case delivered:
		case fl.GetPaused():
			fmt.Fprintf(w, "  delivery    waiting: the flow is paused\n")
		default:
			fmt.Fprintf(w, "  delivery    pending: retrying, or waiting behind earlier events (samsa status %s)\n", fl.GetName())
		}
	}
	for _, h := range dead {
		f := dlq.Parse(h.rec.Headers)
		fmt.Fprintf(w, "  dead letter %s partition %d offset %d: stage %s at %s, attempts %d, status %q: %s\n",
			h.rec.Topic, h.rec.Partition, h.rec.Offset, f.Stage, f.Time.Format(time.RFC3339), f.Attempts, f.Status, f.Err)
	}
	return nil
}

// find reads topic from t.since to its current end and returns the records
// of the event (and of its fan-out outputs, id#n).
func (t *tracer) find(ctx context.Context, topic string, native bool) ([]hit, error) {
	starts, err := t.adm.ListOffsetsAfterMilli(ctx, t.since.UnixMilli(), topic)
	if err != nil {
		return nil, fmt.Errorf("trace: offsets of %s: %w", topic, err)
	}
	ends, err := t.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("trace: offsets of %s: %w", topic, err)
	}
	assign := map[string]map[int32]kgo.Offset{topic: {}}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		s, ok := starts.Lookup(topic, o.Partition)
		if o.Err != nil || !ok || s.Err != nil || s.Offset >= o.Offset {
			return
		}
		assign[topic][o.Partition] = kgo.NewOffset().At(s.Offset)
		remaining[o.Partition] = o.Offset
	})
	if len(remaining) == 0 {
		return nil, nil
	}
	opts, _ := (&kafka.Config{Brokers: t.cl.OptValue(kgo.SeedBrokers).([]string)}).Options(nil)
	rd, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(assign), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var hits []hit
	deadline := time.Now().Add(2 * time.Minute)
	for len(remaining) > 0 {
		if time.Now().After(deadline) {
			return hits, fmt.Errorf("trace: reading %s took over 2 minutes: narrow it with --since", topic)
		}
		// A partition whose tail is transaction markers never yields its
		// last offset as a record: a quiet poll means all is read.
		pctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		fs := rd.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return hits, ctx.Err()
		}
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if ev := t.match(r, native); ev != nil {
				hits = append(hits, hit{rec: r, ev: ev})
			}
		})
	}
	return hits, nil
}

func (t *tracer) match(r *kgo.Record, native bool) *event.Event {
	if native {
		id := fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
		if id == t.id {
			return &event.Event{ID: id, Key: string(r.Key)}
		}
		return nil
	}
	ev, err := event.Decode(r.Value)
	if err != nil {
		return nil
	}
	if ev.ID == t.id || strings.HasPrefix(ev.ID, t.id+"#") {
		return ev
	}
	return nil
}

// committedPast reports whether group committed an offset beyond rec.
func (t *tracer) committedPast(ctx context.Context, group string, rec *kgo.Record) (bool, error) {
	offs, err := t.adm.FetchOffsetsForTopics(ctx, group, rec.Topic)
	if err != nil {
		return false, fmt.Errorf("trace: offsets of group %s: %w", group, err)
	}
	o, ok := offs.Lookup(rec.Topic, rec.Partition)
	return ok && o.Err == nil && o.At > rec.Offset, nil
}
