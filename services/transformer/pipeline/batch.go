package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/script"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
)

const (
	// chunkSize is the most records of one partition a worker takes at a
	// time. Chunks are produced in order, so per-partition (and so
	// per-key) order is kept while workers run in parallel.
	chunkSize = 256
	// maxRecordBytes keeps every record we write under franz-go's default
	// batch limit (and Kafka's default max.message.bytes), with room for
	// the record's framing.
	maxRecordBytes = 1_000_012 - 1024
	// arenaChunk is the size of the buffers encoded envelopes are cut from.
	arenaChunk = 256 << 10
	slabSize   = 512
)

// poisonKey names one flow's processing of one source record.
type poisonKey struct {
	flow      string
	topic     string
	partition int32
	offset    int64
}

// poisonEntry says why a record's outputs cannot be written: the retry
// dead-letters the event instead (or, when dlqToo, writes the dead letter
// without its value).
type poisonEntry struct {
	msg    string
	dlqToo bool
}

// chunk is a run of consecutive records of one partition.
type chunk struct {
	topic     string
	partition int32
	recs      []*kgo.Record
	route     *topicRoute // nil: the topic has no flows any more
	out       []*kgo.Record
	src       []int32 // index in recs of each record of out
	done      chan struct{}
}

// batch is one transaction's work: the records of one poll.
type batch struct {
	ctx     context.Context
	p       *Pipeline
	tbl     *table
	chunks  []*chunk
	records int
	perTop  map[string]int
	next    atomic.Int64
	workers []*worker
	promise func(*kgo.Record, error)
	// deadline: past it, the remaining records are not processed and the
	// batch fails with errBatchTooSlow. Zero means none.
	deadline time.Time
	slow     atomic.Bool

	errMu    sync.Mutex
	firstErr error
	failed   []failedRecord
}

type failedRecord struct {
	rec *kgo.Record
	err error
}

func newBatch(ctx context.Context, p *Pipeline, tbl *table, fs kgo.Fetches) *batch {
	b := &batch{ctx: ctx, p: p, tbl: tbl, perTop: map[string]int{}}
	b.promise = b.onProduced
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		// Read committed: the last stable offset is as far as we can read.
		end := fp.LastStableOffset
		if end < 0 {
			end = fp.HighWatermark
		}
		p.m.setLag(fp.Topic, fp.Partition, end-fp.Records[len(fp.Records)-1].Offset-1)
		route := tbl.topics[fp.Topic]
		for i := 0; i < len(fp.Records); i += chunkSize {
			j := min(i+chunkSize, len(fp.Records))
			b.chunks = append(b.chunks, &chunk{
				topic: fp.Topic, partition: fp.Partition, recs: fp.Records[i:j], route: route,
				done: make(chan struct{}),
			})
		}
		b.records += len(fp.Records)
		b.perTop[fp.Topic] += len(fp.Records)
	})
	return b
}

// run transforms the batch on the workers and hands the results to
// produce, chunk by chunk in order, as they complete.
func (b *batch) run(produce func(*kgo.Record)) {
	n := min(b.p.cfg.Workers, len(b.chunks))
	b.workers = make([]*worker, n)
	now := time.Now()
	for i := range b.workers {
		w := &worker{b: b, ctx: b.ctx, now: now, counts: make([]flowCounts, len(b.tbl.flows))}
		b.workers[i] = w
		go w.loop()
	}
	for _, c := range b.chunks {
		<-c.done
		for _, r := range c.out {
			produce(r)
		}
	}
}

func (b *batch) onProduced(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	b.errMu.Lock()
	if b.firstErr == nil {
		b.firstErr = fmt.Errorf("write to %s: %w", r.Topic, err)
	}
	if len(b.failed) < 1000 {
		b.failed = append(b.failed, failedRecord{r, err})
	}
	b.errMu.Unlock()
}

// fail abandons the batch (the transaction aborts).
func (b *batch) fail(err error) {
	b.errMu.Lock()
	if b.firstErr == nil {
		b.firstErr = err
	}
	b.errMu.Unlock()
}

func (b *batch) err() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.firstErr
}

// classifyFailures returns the records that can never be written (keyed by
// the input they came from), the flow topics that are missing, and whether
// a record of the transaction hook (not of a flow) failed.
func (b *batch) classifyFailures() (poisoned map[poisonKey]poisonEntry, missingTopics []string, hook bool) {
	b.errMu.Lock()
	failed := b.failed
	b.errMu.Unlock()
	poisoned = map[poisonKey]poisonEntry{}
	missing := map[string]bool{}
	// Only the largest failed record of each partition is poisoned per
	// attempt: when a broker rejects a produce batch, every record in it
	// fails, not only the one that is too large.
	largest := map[string]failedRecord{}
	// The hook's records are to blame only when they failed alone: when
	// flow records failed too (the broker unreachable, say), leaving the
	// statistics out would only make them stale for a minute.
	hookFailed, flowFailed := false, false
	defer func() { hook = hookFailed && !flowFailed }()
	for _, f := range failed {
		if b.tbl.flowOfTopic(f.rec.Topic) == nil {
			hookFailed = true
			continue
		}
		flowFailed = true
		switch {
		case isMissingTopicError(f.err):
			missing[f.rec.Topic] = true
		case isPoisonError(f.err):
			k := fmt.Sprintf("%s/%d", f.rec.Topic, f.rec.Partition)
			if cur, ok := largest[k]; !ok || recordSize(f.rec) > recordSize(cur.rec) {
				largest[k] = f
			}
		}
	}
	for _, f := range largest {
		key, ok := b.origin(f.rec)
		if !ok {
			continue
		}
		e := poisonEntry{msg: f.err.Error()}
		if fr := b.tbl.flowOfTopic(f.rec.Topic); fr != nil && fr.dlqTopic == f.rec.Topic {
			e.dlqToo = true
			if prev, ok := b.p.poison[key]; ok {
				e.msg = prev.msg
			}
		}
		poisoned[key] = e
	}
	for t := range missing {
		missingTopics = append(missingTopics, t)
	}
	return poisoned, missingTopics, hook
}

// origin finds the source record and flow an output record came from.
func (b *batch) origin(rec *kgo.Record) (poisonKey, bool) {
	f := b.tbl.flowOfTopic(rec.Topic)
	if f == nil {
		return poisonKey{}, false
	}
	for _, c := range b.chunks {
		for i, o := range c.out {
			if o == rec {
				in := c.recs[c.src[i]]
				return poisonKey{flow: f.name, topic: in.Topic, partition: in.Partition, offset: in.Offset}, true
			}
		}
	}
	return poisonKey{}, false
}

// report accounts for a committed batch: metrics, counters, logs.
func (b *batch) report() {
	p := b.p
	for topic, n := range b.perTop {
		p.m.records.WithLabelValues(topic).Add(float64(n))
	}
	total := b.totals()
	for _, w := range b.workers {
		for _, k := range w.poisonUsed {
			delete(p.poison, k)
		}
	}
	for i, f := range b.tbl.flows {
		fc := &total[i]
		if fc.c == (stats.Counts{}) {
			continue
		}
		fm := f.metrics
		fm.in.Add(float64(fc.c.Received))
		fm.filtered.Add(float64(fc.c.FilteredOut))
		fm.out.Add(float64(fc.c.Transformed))
		for s, n := range fc.errs {
			if n > 0 {
				fm.errors[stageNames[s]].Add(float64(n))
			}
		}
		if p.counters != nil {
			if e := fc.lastErr; e != nil {
				p.counters.Error(f.name, e.stage, e.msg, e.eventID, e.at)
			}
		}
		if e := fc.lastErr; e != nil && p.shouldWarn("dlq/"+f.name, 10*time.Second) {
			p.log.Warn("events dead-lettered (logged at most every 10s per flow)", zap.String("flow", f.name), zap.Int64("version", f.version),
				zap.Int64("dead_lettered_in_batch", fc.c.DeadLettered), zap.String("stage", e.stage), zap.String("event_id", e.eventID),
				zap.String("topic", e.topic), zap.Int32("partition", e.partition), zap.Int64("offset", e.offset), zap.String("error", e.msg))
		}
	}
}

var stageNames = [...]string{StageDecode, script.StageFilter, script.StageTransform, StageEncode}

func stageIndex(stage string) int {
	for i, s := range stageNames {
		if s == stage {
			return i
		}
	}
	return len(stageNames) - 1
}

type flowCounts struct {
	c       stats.Counts
	errs    [len(stageNames)]int64
	lastErr *deadLetterInfo
}

func (fc *flowCounts) add(o *flowCounts) {
	fc.c.Add(o.c)
	for i := range fc.errs {
		fc.errs[i] += o.errs[i]
	}
	if o.lastErr != nil {
		fc.lastErr = o.lastErr
	}
}

type deadLetterInfo struct {
	stage, msg, eventID string
	at                  time.Time
	topic               string
	partition           int32
	offset              int64
}

// worker runs filters and transforms on chunks of a batch.
type worker struct {
	b          *batch
	ctx        context.Context
	now        time.Time
	counts     []flowCounts
	poisonUsed []poisonKey
	arena      []byte
	slab       []kgo.Record
}

func (w *worker) loop() {
	chunks := w.b.chunks
	for {
		i := int(w.b.next.Add(1) - 1)
		if i >= len(chunks) {
			return
		}
		c := chunks[i]
		w.chunk(c)
		close(c.done)
	}
}

func (w *worker) chunk(c *chunk) {
	if c.route == nil {
		return // consumed; no flow reads this topic any more
	}
	for i, r := range c.recs {
		if w.b.tooSlow() {
			return
		}
		w.record(c, int32(i), r)
	}
}

// tooSlow reports, once the batch's deadline has passed, that it failed.
func (b *batch) tooSlow() bool {
	if b.slow.Load() {
		return true
	}
	if b.deadline.IsZero() || time.Now().Before(b.deadline) {
		return false
	}
	b.slow.Store(true)
	b.fail(errBatchTooSlow)
	return true
}

// record runs every flow of every source of the record's topic.
func (w *worker) record(c *chunk, i int32, r *kgo.Record) {
	for _, sr := range c.route.sources {
		ev, err := decodeRecord(sr.format, sr.name, r)
		if err != nil {
			id := ""
			if sr.format != formatEnvelope {
				id = NativeID(r.Topic, r.Partition, r.Offset)
			}
			for _, f := range sr.flows {
				w.counts[f.idx].c.Received++
				w.deadLetter(c, i, r, f, r.Value, StageDecode, err.Error(), id, false)
			}
			continue
		}
		in := input{r: r, ev: ev}
		if sr.format == formatEnvelope {
			in.envelope = r.Value
		}
		for _, f := range sr.flows {
			w.apply(c, i, &in, f)
		}
	}
}

// input is a decoded source record.
type input struct {
	r        *kgo.Record
	ev       *event.Event
	envelope []byte // the event's envelope: the record value, or encoded on demand
	headers  []kgo.RecordHeader
}

// traceHeaders are the W3C trace context headers of the input's outputs
// (the envelope carries the trace context too; the headers are for Kafka
// tooling). Shared by all outputs of the input; nil without a trace.
func (in *input) traceHeaders() []kgo.RecordHeader {
	if in.ev.TraceParent == "" {
		return nil
	}
	if in.headers == nil {
		in.headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte(in.ev.TraceParent)}}
		if in.ev.TraceState != "" {
			in.headers = append(in.headers, kgo.RecordHeader{Key: "tracestate", Value: []byte(in.ev.TraceState)})
		}
	}
	return in.headers
}

// totals sums the workers' counts per flow of the table.
func (b *batch) totals() []flowCounts {
	total := make([]flowCounts, len(b.tbl.flows))
	for _, w := range b.workers {
		for i := range w.counts {
			total[i].add(&w.counts[i])
		}
	}
	return total
}

// count adds the batch's per-flow counts to the counters (sign 1) before
// the transaction's statistics records are built, so those records cover
// the batch they commit with, or takes them back (sign -1) when the
// transaction did not commit.
func (b *batch) count(sign int64) {
	if b.p.counters == nil {
		return
	}
	for i, fc := range b.totals() {
		c := fc.c
		if c == (stats.Counts{}) {
			continue
		}
		if sign < 0 {
			c = stats.Counts{Received: -c.Received, FilteredOut: -c.FilteredOut, Transformed: -c.Transformed,
				Expanded: -c.Expanded, Delivered: -c.Delivered, DeadLettered: -c.DeadLettered, Retries: -c.Retries, Redriven: -c.Redriven}
		}
		b.p.counters.Add(b.tbl.flows[i].name, c)
	}
}

// traceHeaders are W3C trace context headers.
func traceHeaders(parent, state string) []kgo.RecordHeader {
	h := []kgo.RecordHeader{{Key: "traceparent", Value: []byte(parent)}}
	if state != "" {
		h = append(h, kgo.RecordHeader{Key: "tracestate", Value: []byte(state)})
	}
	return h
}

// tracer records the transformer's spans (the global provider: tracing is
// configured by the binary, or by a test).
var tracer = telemetry.Tracer("transformer")

// originalEnvelope is what a dead letter of in carries.
func (in *input) originalEnvelope() []byte {
	if in.envelope == nil {
		b, err := event.Encode(in.ev)
		if err != nil {
			b = in.r.Value
		}
		in.envelope = b
	}
	return in.envelope
}

// apply runs one flow on one event.
func (w *worker) apply(c *chunk, i int32, in *input, f *flowRoute) {
	fc := &w.counts[f.idx]
	fc.c.Received++
	r, ev := in.r, in.ev
	if poison := w.b.p.poison; len(poison) > 0 {
		k := poisonKey{flow: f.name, topic: r.Topic, partition: r.Partition, offset: r.Offset}
		if e, ok := poison[k]; ok {
			w.poisonUsed = append(w.poisonUsed, k)
			w.deadLetter(c, i, r, f, in.originalEnvelope(), StageEncode, e.msg, ev.ID, e.dlqToo)
			return
		}
	}
	if f.prog == nil {
		w.deadLetter(c, i, r, f, in.originalEnvelope(), f.compileErr.Stage, "does not compile: "+f.compileErr.Error(), ev.ID, false)
		return
	}
	// A traced event gets a span of its own, and its outputs carry that
	// span's context so the deliverer's span is its child. Untraced events
	// (and tracing off: the span does not record) cost nothing here.
	tp, ts, traced := ev.TraceParent, ev.TraceState, false
	var span trace.Span
	if ev.TraceParent != "" {
		var sctx context.Context
		sctx, span = tracer.Start(telemetry.EventContext(w.ctx, ev), "samsa.transform",
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("samsa.flow", f.name), attribute.String("samsa.event_id", ev.ID)))
		if span.IsRecording() {
			var carrier event.Event
			telemetry.InjectEvent(sctx, &carrier)
			tp, ts, traced = carrier.TraceParent, carrier.TraceState, true
		}
		defer span.End()
	}
	start := time.Now()
	res, err := f.prog.Run(w.ctx, ev)
	f.metrics.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		var se *script.Error
		if errors.As(err, &se) {
			if traced {
				span.SetStatus(codes.Error, se.Error())
			}
			w.deadLetter(c, i, r, f, in.originalEnvelope(), se.Stage, se.Error(), ev.ID, false)
			return
		}
		// The context: the drain timeout of a shutdown ran out.
		w.b.fail(err)
		return
	}
	if !res.Kept || len(res.Outputs) == 0 {
		fc.c.FilteredOut++
		return
	}
	mark := len(c.out)
	for n := range res.Outputs {
		o := &res.Outputs[n]
		out := event.Event{
			ID:          OutputID(ev.ID, n),
			Source:      ev.Source,
			Type:        o.Type,
			Subject:     o.Subject,
			Time:        ev.Time,
			Key:         o.Key,
			ContentType: o.ContentType,
			Data:        o.Data,
			Attributes:  o.Attributes,
			TraceParent: tp,
			TraceState:  ts,
		}
		var rec *kgo.Record
		var err error
		if n == 0 && in.envelope != nil && !traced && unchanged(o, ev) {
			// The output is the input event itself (a filter-only
			// flow, or a transform returning event): its envelope is
			// the source record's value, no need to encode it again.
			rec = w.newRecord()
			rec.Topic, rec.Key, rec.Value, rec.Partition = f.outTopic, w.key(r, o.Key), in.envelope, r.Partition
		} else {
			rec, err = w.encode(f.outTopic, w.key(r, o.Key), r.Partition, &out)
		}
		if err == nil {
			if traced {
				rec.Headers = traceHeaders(tp, ts)
			} else {
				rec.Headers = in.traceHeaders()
			}
		}
		if err != nil {
			c.out, c.src = c.out[:mark], c.src[:mark]
			w.deadLetter(c, i, r, f, in.originalEnvelope(), StageEncode, fmt.Sprintf("output %d: %v", n, err), ev.ID, false)
			return
		}
		c.out = append(c.out, rec)
		c.src = append(c.src, i)
	}
	fc.c.Transformed += int64(len(res.Outputs))
	fc.c.Expanded += int64(len(res.Outputs) - 1)
}

// unchanged reports whether an output is its input event as is.
func unchanged(o *script.Output, ev *event.Event) bool {
	return len(o.Data) == len(ev.Data) && (len(o.Data) == 0 || &o.Data[0] == &ev.Data[0]) &&
		o.Type == ev.Type && o.Subject == ev.Subject && o.Key == ev.Key && o.ContentType == ev.ContentType &&
		sameMap(o.Attributes, ev.Attributes)
}

// sameMap reports whether a and b are the same map (or both empty).
func sameMap(a, b map[string]string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// key returns an output's record key, reusing the input's bytes when they
// are the same.
func (w *worker) key(r *kgo.Record, key string) []byte {
	switch {
	case key == "":
		return nil
	case string(r.Key) == key:
		return r.Key
	}
	w.reserve(len(key))
	start := len(w.arena)
	w.arena = append(w.arena, key...)
	return w.arena[start:len(w.arena):len(w.arena)]
}

// encode writes an output event as a record of topic. The partition is a
// hint for keyless records (see outputPartitioner).
func (w *worker) encode(topic string, key []byte, partition int32, ev *event.Event) (*kgo.Record, error) {
	w.reserve(estimateSize(ev))
	start := len(w.arena)
	buf, err := event.AppendEncode(w.arena, ev)
	if err != nil {
		return nil, err
	}
	w.arena = buf
	rec := w.newRecord()
	rec.Topic, rec.Key, rec.Value, rec.Partition = topic, key, buf[start:len(buf):len(buf)], partition
	if n := recordSize(rec); n > maxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, maxRecordBytes)
	}
	return rec, nil
}

// deadLetter writes the event (value: its original envelope, or the raw
// record when it could not be decoded) to the flow's dead-letter topic,
// with the reason in the headers. A value too large to be written (or one
// that already failed to be) is left out; the headers locate the source
// record.
func (w *worker) deadLetter(c *chunk, i int32, r *kgo.Record, f *flowRoute, value []byte, stage, msg, eventID string, dropValue bool) {
	fc := &w.counts[f.idx]
	fc.c.DeadLettered++
	fc.errs[stageIndex(stage)]++
	fc.lastErr = &deadLetterInfo{stage: stage, msg: msg, eventID: eventID, at: w.now, topic: r.Topic, partition: r.Partition, offset: r.Offset}
	fail := dlq.Failure{
		Flow: f.name, FlowVersion: f.version, Stage: stage, Err: msg, Time: w.now,
		SourceTopic: r.Topic, SourcePartition: r.Partition, SourceOffset: r.Offset,
	}
	rec := w.newRecord()
	rec.Topic, rec.Key, rec.Value, rec.Partition = f.dlqTopic, r.Key, value, r.Partition
	rec.Headers = fail.Headers()
	if dropValue || recordSize(rec) > maxRecordBytes {
		fail.Err = fmt.Sprintf("%s (the event, %d bytes, is too large to dead-letter: read it from the source record)", msg, len(value))
		rec.Value = nil
		rec.Headers = fail.Headers()
	}
	c.out = append(c.out, rec)
	c.src = append(c.src, i)
}

// reserve makes room for n bytes in the arena: a new buffer when the
// current one is nearly full (the records cut from the old one keep it).
func (w *worker) reserve(n int) {
	if cap(w.arena)-len(w.arena) < n {
		w.arena = make([]byte, 0, max(arenaChunk, n))
	}
}

func (w *worker) newRecord() *kgo.Record {
	if len(w.slab) == cap(w.slab) {
		w.slab = make([]kgo.Record, 0, slabSize)
	}
	w.slab = w.slab[:len(w.slab)+1]
	return &w.slab[len(w.slab)-1]
}

// estimateSize bounds the envelope encoding of ev from above (in all but
// pathological cases; AppendEncode grows the buffer if needed).
func estimateSize(ev *event.Event) int {
	n := 96 + len(ev.ID) + len(ev.Source) + len(ev.Type) + len(ev.Subject) + len(ev.Key) +
		len(ev.ContentType) + len(ev.Data) + len(ev.TraceParent) + len(ev.TraceState)
	for k, v := range ev.Attributes {
		n += len(k) + len(v) + 10
	}
	return n
}

// recordSize approximates a record's size in a produce batch.
func recordSize(r *kgo.Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}
