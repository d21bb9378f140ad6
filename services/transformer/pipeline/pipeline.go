package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/script"
)

// Pipeline is the transformer: one member of the transformer consumer group
// with one transactional producer. Create it with New and run it with Run.
type Pipeline struct {
	cfg        Config
	kcfg       *kafka.Config
	store      *flow.Store
	log        *zap.Logger
	m          *metrics
	counters   Counters
	txnRecords func() []*kgo.Record
	clientOpts []kgo.Opt

	// Used by the session goroutine only.
	builder  *builder
	tbl      *table
	poison   map[poisonKey]poisonEntry
	failures int // consecutive failed batches, for the backoff
	batchMax int // records per poll: MaxBatch, less after a batch ran too long
	// The records of WithTxnRecords are left out until hookPausedUntil
	// after they made a transaction fail: they must never stall the flows.
	hookPausedUntil time.Time
	hookPause       time.Duration

	// dirty is set by the store's watch; pollCancel interrupts a poll so
	// that a new topic is subscribed at once.
	dirty      atomic.Bool
	pollCancel atomic.Pointer[context.CancelFunc]

	readyMu  sync.Mutex
	readyErr error

	warnMu   sync.Mutex
	warnedAt map[string]time.Time
}

// New returns a pipeline over the flows of store, which the caller runs
// (several services of one process may share it). reg may be nil.
func New(cfg Config, kcfg *kafka.Config, store *flow.Store, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transformer: %w", err)
	}
	if err := kcfg.Validate(); err != nil {
		return nil, fmt.Errorf("transformer: %w", err)
	}
	if store == nil {
		return nil, errors.New("transformer: no flow store")
	}
	if log == nil {
		log = zap.NewNop()
	}
	p := &Pipeline{
		cfg:      cfg.withDefaults(),
		kcfg:     kcfg,
		store:    store,
		log:      log,
		m:        newMetrics(reg),
		poison:   map[poisonKey]poisonEntry{},
		readyErr: ErrNotReady,
		warnedAt: map[string]time.Time{},
	}
	p.batchMax = p.cfg.MaxBatch
	for _, o := range opts {
		o(p)
	}
	sopts := []script.Option{script.WithMaxSteps(p.cfg.ScriptMaxSteps), script.WithTimeout(p.cfg.ScriptTimeout)}
	if p.cfg.ScriptTimeout == 0 {
		sopts[1] = script.WithTimeout(100 * time.Millisecond)
	}
	p.builder = newBuilder(p.m, sopts...)
	return p, nil
}

// Ready reports whether the pipeline is consuming: nil once it has joined
// the group with a working transactional producer.
func (p *Pipeline) Ready() error {
	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	return p.readyErr
}

func (p *Pipeline) setReady(err error) {
	p.readyMu.Lock()
	p.readyErr = err
	p.readyMu.Unlock()
}

// Run consumes and transforms until ctx is done, then commits the batch in
// progress (within DrainTimeout), leaves the group and returns nil. Kafka
// errors do not end it: the session is recreated with a backoff.
func (p *Pipeline) Run(ctx context.Context) error {
	// Transforming with a partial view of the flows would commit offsets
	// for events that flows not yet seen should have had.
	select {
	case <-p.store.Ready():
	case <-ctx.Done():
		return nil
	}
	stop := p.store.Watch(func(flow.Change) { p.kick() })
	defer stop()
	p.dirty.Store(true)

	backoff := time.Second
	for {
		start := time.Now()
		err := p.runSession(ctx)
		if ctx.Err() != nil {
			p.setReady(ErrNotReady)
			return nil
		}
		p.setReady(fmt.Errorf("%w: %v", ErrNotReady, err))
		p.m.sessions.Inc()
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		p.log.Error("transformer session failed; starting a new one", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(jitter(backoff)):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// kick is called by the store's watch on every change to the flows.
func (p *Pipeline) kick() {
	p.dirty.Store(true)
	if c := p.pollCancel.Load(); c != nil {
		(*c)()
	}
}

// currentTable returns the routing table of the store's latest snapshot.
func (p *Pipeline) currentTable() *table {
	snap := p.store.Snapshot()
	if p.tbl == nil || p.tbl.snap != snap {
		old := p.tbl
		p.tbl = p.builder.build(snap)
		p.m.flows.Set(float64(len(p.tbl.flows)))
		p.logChanges(old, p.tbl)
	}
	return p.tbl
}

func (p *Pipeline) logChanges(old, cur *table) {
	prev := map[string]*flowRoute{}
	if old != nil {
		for _, f := range old.flows {
			prev[f.name] = f
		}
	}
	for _, f := range cur.flows {
		o, ok := prev[f.name]
		delete(prev, f.name)
		switch {
		case !ok:
			p.log.Info("flow started", zap.String("flow", f.name), zap.String("source", f.source), zap.Int64("version", f.version))
		case o.version != f.version:
			p.log.Info("flow updated", zap.String("flow", f.name), zap.String("source", f.source), zap.Int64("version", f.version))
		default:
			continue
		}
		if f.compileErr != nil {
			p.log.Error("flow does not compile; its events are dead-lettered", zap.String("flow", f.name), zap.Int64("version", f.version), zap.Error(f.compileErr))
		}
	}
	for name := range prev {
		p.log.Info("flow stopped", zap.String("flow", name))
	}
}

// runSession runs one group member and transactional producer until ctx is
// done (nil) or the session fails (the error).
func (p *Pipeline) runSession(ctx context.Context) error {
	tbl := p.currentTable()
	subscribed := map[string]bool{}
	for _, t := range tbl.topicList() {
		subscribed[t] = true
	}
	opts, err := p.kcfg.Options(p.log)
	if err != nil {
		return err
	}
	opts = append(opts,
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(tbl.topicList()...),
		kgo.TransactionalID(p.cfg.TransactionalID),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, p.cfg.SessionTimeout/5)),
		// Outputs of aborted transactions, ours or an upstream
		// producer's, must never be seen. (franz-go group consumers
		// also always require stable offsets, KIP-447: a partition's
		// new owner waits until the previous owner's transaction
		// committing its offset is complete.)
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnOffsetsFetched(p.onOffsetsFetched),
		kgo.AdjustFetchOffsetsFn(p.adjustOffsets),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
		kgo.RecordPartitioner(outputPartitioner()),
		kgo.FetchMaxWait(500*time.Millisecond),
		// Send outputs while the batch is still being transformed, so
		// that the broker appends them while the workers run and the
		// flush before the commit waits for the tail only. franz-go's
		// default 10 ms linger held them until batches filled or the
		// flush: in make bench's transform stage the flush took 12-15 ms
		// of a 10,000-record transaction instead of 7-9, and the stage
		// ran at 106,000-135,000 events/s instead of 128,000-148,000.
		kgo.ProducerLinger(0),
	)
	opts = append(opts, p.clientOpts...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("transformer: new session: %w", err)
	}
	defer func() {
		// Leaves the group, so that the partitions move at once.
		sess.Close()
		p.m.dropAllLag()
	}()
	// Initialising the producer id fences a previous incarnation of this
	// replica and aborts the transaction it may have left open.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("transformer: init producer id: %w", err)
	}
	p.setReady(nil)
	go p.warnMissing(sess.Client(), tbl.topicList())
	p.log.Info("transformer consuming", zap.String("group", p.cfg.Group), zap.String("transactional_id", p.cfg.TransactionalID), zap.Strings("topics", tbl.topicList()))

	var lastEnd time.Time
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithCancel(ctx)
		p.pollCancel.Store(&cancel)
		if p.dirty.Swap(false) {
			p.subscribe(sess.Client(), p.currentTable(), subscribed)
		}
		fs := sess.PollRecords(pollCtx, p.batchMax)
		p.pollCancel.Store(nil)
		cancel()
		if err := p.fetchErrors(fs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if fs.NumRecords() == 0 {
			continue
		}
		fs, err := p.collect(ctx, sess, fs, lastEnd)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := p.transact(ctx, sess, fs); err != nil {
			return err
		}
		lastEnd = time.Now()
	}
	return nil
}

// collect adds to a batch the records that arrive within the batch window
// after the previous transaction ended (see Config.BatchWindow).
func (p *Pipeline) collect(ctx context.Context, sess *kgo.GroupTransactSession, fs kgo.Fetches, lastEnd time.Time) (kgo.Fetches, error) {
	until := lastEnd.Add(p.cfg.BatchWindow)
	n := fs.NumRecords()
	if p.cfg.BatchWindow <= 0 || n >= p.batchMax || !time.Now().Before(until) {
		return fs, nil
	}
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	more := sess.PollRecords(wctx, p.batchMax-n)
	if err := p.fetchErrors(more); err != nil {
		return nil, err
	}
	if more.NumRecords() == 0 {
		return fs, nil // the window closed with nothing new (or only errors, logged)
	}
	return append(fs, more...), nil
}

// subscribe makes the client consume exactly the table's topics. Adding a
// topic or dropping one makes the group rebalance; it is done between
// transactions.
func (p *Pipeline) subscribe(cl *kgo.Client, tbl *table, subscribed map[string]bool) {
	var add, drop []string
	for t := range tbl.topics {
		if !subscribed[t] {
			add = append(add, t)
			subscribed[t] = true
		}
	}
	for t := range subscribed {
		if tbl.topics[t] == nil {
			drop = append(drop, t)
			delete(subscribed, t)
		}
	}
	if len(add) > 0 {
		p.log.Info("consuming new source topics", zap.Strings("topics", add))
		cl.AddConsumeTopics(add...)
		go p.warnMissing(cl, add)
	}
	if len(drop) > 0 {
		p.log.Info("no flows left on source topics; no longer consuming them", zap.Strings("topics", drop))
		cl.PurgeTopicsFromConsuming(drop...)
	}
}

// warnMissing logs the source topics that do not exist: their flows wait
// for them (a topic created later is picked up within seconds).
func (p *Pipeline) warnMissing(cl *kgo.Client, topics []string) {
	if len(topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && t.Topic != nil {
			p.log.Warn("source topic not available; its flows wait for it", zap.String("topic", *t.Topic), zap.Error(err))
		}
	}
}

// fetchErrors logs fetch errors and returns the one that ends the session.
func (p *Pipeline) fetchErrors(fs kgo.Fetches) error {
	var fatal error
	fs.EachError(func(topic string, partition int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, kgo.ErrClientClosed):
			fatal = err
		default:
			if p.shouldWarn("fetch/"+topic+"/"+err.Error(), time.Minute) {
				p.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
			}
		}
	})
	return fatal
}

// shouldWarn rate-limits a recurring warning to one per interval.
func (p *Pipeline) shouldWarn(key string, every time.Duration) bool {
	p.warnMu.Lock()
	defer p.warnMu.Unlock()
	if t, ok := p.warnedAt[key]; ok && time.Since(t) < every {
		return false
	}
	if len(p.warnedAt) > 1000 {
		clear(p.warnedAt)
	}
	p.warnedAt[key] = time.Now()
	return true
}

// Commit metadata: every transaction stamps the offsets it commits with
// the position in samsa.flows of the flows it ran. A replica that is
// assigned a partition waits until its own store has reached that position
// before it consumes: so a partition never goes back to an older set of
// flows when it moves between replicas whose stores are not equally far
// (which would make a new flow skip records, or a deleted one reappear).
const metaPrefix = "samsa-flows="

func stampMetadata(flowsOffset int64) func(*kmsg.TxnOffsetCommitRequest) error {
	meta := metaPrefix + strconv.FormatInt(flowsOffset, 10)
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				req.Topics[i].Partitions[j].Metadata = &meta
			}
		}
		return nil
	}
}

func parseMetadata(meta *string) int64 {
	if meta == nil {
		return 0
	}
	s, ok := strings.CutPrefix(*meta, metaPrefix)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// onOffsetsFetched runs when partitions are assigned, before they are
// consumed: it waits for the flow store to catch up with the flows the
// partitions' previous owner last ran.
func (p *Pipeline) onOffsetsFetched(ctx context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	var need int64
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			need = max(need, parseMetadata(pt.Metadata))
		}
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, pt := range t.Partitions {
				need = max(need, parseMetadata(pt.Metadata))
			}
		}
	}
	if need == 0 || p.store.Snapshot().Offset >= need {
		return nil
	}
	p.log.Info("waiting for the flow store to reach the flows of the assigned partitions' last commit", zap.Int64("flows_offset", need))
	return p.store.WaitFor(ctx, need)
}

// adjustOffsets chooses where a source topic the group has never committed
// for is read from: the records written since the source's oldest flow
// was created (minus StartLookback), or the start of the topic when a
// flow's creation time is unknown.
func (p *Pipeline) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	snap := p.store.Snapshot()
	for topic, parts := range offsets {
		var uncommitted []int32
		for part, o := range parts {
			if o.EpochOffset().Offset < 0 {
				uncommitted = append(uncommitted, part)
			}
		}
		if len(uncommitted) == 0 {
			continue
		}
		first := firstCreated(snap, topic)
		if first.IsZero() {
			for _, part := range uncommitted {
				parts[part] = kgo.NewOffset().AtStart()
			}
			continue
		}
		exact, err := p.offsetsAfter(ctx, topic, first.Add(-p.cfg.StartLookback))
		if err != nil {
			return nil, err
		}
		for _, part := range uncommitted {
			if o, ok := exact[part]; ok {
				parts[part] = kgo.NewOffset().At(o)
			} else {
				parts[part] = kgo.NewOffset().AtStart()
			}
		}
		p.log.Info("source topic has no committed offset; starting at the flows' creation", zap.String("topic", topic), zap.Time("since", first.Add(-p.cfg.StartLookback)))
	}
	return offsets, nil
}

// offsetsAfter resolves, per partition of topic, the first offset of a
// record written at or after t. The end offsets are listed BEFORE the
// lookup by time: a partition without such a record starts at that end, so
// a record appended while we look is still read (letting the client
// resolve a time offset itself can skip it: when no record is found it
// falls back to an end listed later).
func (p *Pipeline) offsetsAfter(ctx context.Context, topic string, t time.Time) (map[int32]int64, error) {
	cl, err := p.kcfg.NewClient(p.log)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("transformer: end offsets of %s: %w", topic, err)
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	if err == nil {
		err = after.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("transformer: offsets of %s after %s: %w", topic, t.Format(time.RFC3339), err)
	}
	out := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		o := e.Offset
		if a, ok := after.Lookup(topic, e.Partition); ok && a.Offset >= 0 && a.Offset < o {
			o = a.Offset
		}
		out[e.Partition] = o
	})
	return out, nil
}

// firstCreated is the creation time of the oldest flow reading topic, zero
// if unknown.
func firstCreated(snap *flow.Snapshot, topic string) time.Time {
	var first time.Time
	for _, src := range snap.Sources {
		if SourceTopic(src) != topic {
			continue
		}
		for _, f := range snap.FlowsOf(src.GetName()) {
			ct := f.GetCreateTime()
			if ct == nil {
				return time.Time{}
			}
			if t := ct.AsTime(); first.IsZero() || t.Before(first) {
				first = t
			}
		}
	}
	return first
}

func (p *Pipeline) onRevoked(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	p.m.dropLag(parts)
}

// transact processes one poll's records in one transaction. It returns an
// error only when the session cannot go on.
func (p *Pipeline) transact(ctx context.Context, sess *kgo.GroupTransactSession, fs kgo.Fetches) error {
	start := time.Now()
	// The table is at least as new as the flows of every polled
	// partition's last commit: onOffsetsFetched waited for them before
	// the partition could be polled.
	tbl := p.currentTable()
	workCtx, cancelWork := p.workContext(ctx)
	defer cancelWork()

	if err := sess.Begin(); err != nil {
		return fmt.Errorf("transformer: begin transaction: %w", err)
	}
	b := newBatch(workCtx, p, tbl, fs)
	// A batch must end well within the transaction timeout, or the broker
	// aborts it and the same batch would fail again and again.
	b.deadline = start.Add(p.cfg.TransactionTimeout / 2)
	b.run(func(r *kgo.Record) { sess.Produce(workCtx, r, b.promise) })
	b.count(1)
	counted := true
	defer func() {
		if counted {
			b.count(-1) // not committed: take the batch's counts back
		}
	}()
	if p.txnRecords != nil && time.Now().After(p.hookPausedUntil) {
		for _, r := range p.txnRecords() {
			sess.Produce(workCtx, r, b.promise)
		}
	}
	tProcessed := time.Now()
	flushErr := sess.Client().Flush(workCtx)
	tFlushed := time.Now()
	writeErr := b.err()
	if writeErr == nil {
		writeErr = flushErr
	}
	endCtx := kgo.PreTxnCommitFnContext(workCtx, stampMetadata(tbl.snap.Offset))
	committed, err := sess.End(endCtx, kgo.TransactionEndTry(writeErr == nil))
	p.m.txnTime.Observe(time.Since(start).Seconds())
	if ce := p.log.Check(zap.DebugLevel, "transaction ended"); ce != nil {
		ce.Write(zap.Int("records", b.records), zap.Bool("committed", committed), zap.Error(err),
			zap.Duration("process", tProcessed.Sub(start)), zap.Duration("flush", tFlushed.Sub(tProcessed)), zap.Duration("end", time.Since(tFlushed)))
	}
	if err != nil {
		p.m.txns.WithLabelValues("failed").Inc()
		// Committed or not, nobody can tell: the statistics written in
		// this transaction went with it or not at all. Taking the counts
		// back would undercount a commit that happened; start counting
		// afresh instead (see stats.Recorder.Restart).
		if r, ok := p.counters.(restarter); ok {
			counted = false
			r.Restart()
		}
		return fmt.Errorf("transformer: end transaction: %w", errors.Join(err, writeErr))
	}
	if !committed {
		p.m.txns.WithLabelValues("aborted").Inc()
		if writeErr == nil {
			// A rebalance: the partitions we keep are re-read from
			// their committed offsets.
			p.log.Info("transaction aborted by a rebalance; redoing the batch", zap.Int("records", b.records))
			return nil
		}
		if errors.Is(writeErr, errBatchTooSlow) {
			p.batchMax = max(1, b.records/4)
			p.log.Warn("batch took too long for its transaction; aborted, retrying with smaller batches",
				zap.Int("records", b.records), zap.Duration("took", time.Since(start)), zap.Int("max_batch", p.batchMax))
			return nil
		}
		p.writeFailed(workCtx, sess.Client(), tbl, b, writeErr)
		return nil
	}
	p.failures = 0
	if time.Now().After(p.hookPausedUntil) {
		p.hookPause = 0
	}
	if p.batchMax < p.cfg.MaxBatch && time.Since(start) < p.cfg.TransactionTimeout/20 {
		p.batchMax = min(p.cfg.MaxBatch, p.batchMax*2)
	}
	p.m.txns.WithLabelValues("committed").Inc()
	p.m.batch.Observe(float64(b.records))
	counted = false // committed: the counts stand
	b.report()
	return nil
}

// workContext is not cancelled with ctx, so that the batch in progress can
// commit during a graceful shutdown, but DrainTimeout after ctx is done.
func (p *Pipeline) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.DrainTimeout, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() { stop(); cancel() }
}

// writeFailed handles a batch whose writes failed: it was aborted and its
// records will be polled again. Records that can never be written (too
// large for the broker) are remembered, so that the retry dead-letters
// them; a missing flow topic is created (unless Config.NoTopicCreation);
// anything else is retried after a backoff.
func (p *Pipeline) writeFailed(ctx context.Context, cl *kgo.Client, tbl *table, b *batch, err error) {
	p.failures++
	poisoned, missing, hook := b.classifyFailures()
	if hook {
		p.hookPause = min(max(2*p.hookPause, time.Minute), time.Hour)
		p.hookPausedUntil = time.Now().Add(p.hookPause)
		p.log.Warn("records of the transaction hook (statistics) failed; leaving them out for a while", zap.Error(err), zap.Duration("for", p.hookPause))
	}
	if len(p.poison) > 10000 {
		clear(p.poison) // entries of partitions that moved to other replicas
	}
	for k, e := range poisoned {
		p.poison[k] = e
		p.log.Warn("record cannot be written; dead-lettering it on retry",
			zap.String("flow", k.flow), zap.String("topic", k.topic), zap.Int32("partition", k.partition), zap.Int64("offset", k.offset), zap.String("error", e.msg))
	}
	for _, topic := range missing {
		f := tbl.flowOfTopic(topic)
		if f == nil {
			continue
		}
		if p.cfg.NoTopicCreation {
			p.log.Warn("flow topic missing", zap.String("topic", topic), zap.Bool("create_missing_topics", !p.cfg.NoTopicCreation))
			continue
		}
		if cerr := p.createFlowTopics(ctx, cl, f); cerr != nil {
			p.log.Error("cannot create missing flow topics", zap.String("flow", f.name), zap.Error(cerr))
		} else {
			p.log.Warn("created missing flow topics (they should have been created with the flow)", zap.String("flow", f.name), zap.String("topic", f.outTopic), zap.String("dlq_topic", f.dlqTopic))
		}
	}
	if (len(poisoned) > 0 || hook) && len(missing) == 0 {
		return // retry at once: the retry will not write those records
	}
	d := jitter(min(time.Duration(p.failures)*time.Second, 30*time.Second))
	p.log.Warn("transaction aborted after a failed write; retrying", zap.Error(err), zap.Duration("backoff", d))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// createFlowTopics creates a flow's delivery and dead-letter topics, with
// the flow's partition count or else the source topic's.
func (p *Pipeline) createFlowTopics(ctx context.Context, cl *kgo.Client, f *flowRoute) error {
	parts := f.partitions
	if parts <= 0 {
		src, ok := p.store.Snapshot().Sources[f.source]
		if ok {
			parts = topicPartitions(ctx, cl, SourceTopic(src))
		}
	}
	month := strconv.FormatInt((30 * 24 * time.Hour).Milliseconds(), 10)
	return p.kcfg.EnsureTopics(ctx, cl,
		kafka.TopicSpec{Name: f.outTopic, Partitions: parts, Replication: -1},
		kafka.TopicSpec{Name: f.dlqTopic, Partitions: parts, Replication: -1, Configs: map[string]*string{"retention.ms": &month}},
	)
}

func topicPartitions(ctx context.Context, cl *kgo.Client, topic string) int32 {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) == 0 || resp.Topics[0].ErrorCode != 0 {
		return 0
	}
	return int32(len(resp.Topics[0].Partitions))
}

// isPoisonError reports whether a produce error is about the record itself,
// so that retrying the same record can never succeed.
func isPoisonError(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}

func isMissingTopicError(err error) bool {
	return errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)/2+1))
}
