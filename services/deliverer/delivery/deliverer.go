// Package delivery is the deliverer's engine: a consumer group over the
// delivery topics of every flow (samsa.out.<flow>) that delivers each event
// to its flow's destination with the flow's delivery policy, and commits an
// offset only once that event and every earlier event of its partition is
// delivered or dead-lettered.
//
// Per partition, events are queued in lanes by partition key: a key's
// events are attempted one after the other, also across retries, while
// other keys keep flowing. Memory is bounded per partition and per flow by
// pausing fetches. A flow's dispatcher starts attempts as its gate (pause,
// maintenance windows), circuit breaker, in-flight cap and token bucket
// allow. Retryable failures wait in their lane for an exponential backoff
// with jitter (or the destination's Retry-After); permanent failures and
// events out of retries go to samsa.dlq.<flow> with the reason in headers
// (pkg/dlq). Destinations that write to the deliverer's own Kafka cluster
// commit the consumed offsets in their own transactions (exactly-once).
//
// The flow's delivered and dead-lettered counts advance with the committed
// offsets: each commit stores its partition's cumulative counts in the
// offset metadata (stats.CommitMetadata), and a new owner continues from
// the counts of the offset it starts at, so that the status counts stay
// exact across crashes, rebalances and broker outages.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/secret"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// Clock tells the time of day for maintenance windows. Tests substitute
// their own; retries, timeouts and the breaker use the monotonic clock.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Option configures a Deliverer.
type Option func(*Deliverer)

// WithClock sets the clock maintenance windows are evaluated with. Default:
// the system clock.
func WithClock(c Clock) Option { return func(d *Deliverer) { d.clock = c } }

// WithRecorder sends per-flow statistics (retries, latency, last error,
// breaker state) to r, e.g. a *stats.Recorder that publishes them to
// samsa.stats. Default: none. Delivered and dead-lettered events are
// counted in the metadata of the committed offsets instead, where a crash
// can neither lose nor repeat them (stats.CommitMetadata).
func WithRecorder(r Recorder) Option { return func(d *Deliverer) { d.rec = r } }

// WithDestinationFactory replaces how destinations are built from flows
// (tests). Default: HTTP, Kafka and PostgreSQL destinations.
func WithDestinationFactory(fn DestinationFactory) Option {
	return func(d *Deliverer) { d.factory = fn }
}

// Deliverer is the delivery engine. Create it with New and run it with Run.
type Deliverer struct {
	cfg     Config
	kcfg    *kafka.Config
	store   *flow.Store
	box     *secret.Box
	log     *zap.Logger
	m       *metrics
	rec     Recorder
	clock   Clock
	factory DestinationFactory

	cl    *kgo.Client
	ready chan struct{}
	// mem pauses and resumes partitions to bound what is buffered.
	mem memBudget

	mu        sync.Mutex
	flows     map[string]*flowRuntime
	consuming map[string]bool

	commitMu  sync.Mutex
	reconcile chan struct{}
	// noCommits (tests) turns offset commits off, as for a process that
	// dies before its next commit.
	noCommits atomic.Bool
}

// New returns a deliverer over the flows of store, which the caller runs
// (it may be shared with other services in one process). box opens the
// flows' secrets; it may be nil when none are sealed.
func New(cfg Config, kcfg *kafka.Config, store *flow.Store, box *secret.Box, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Deliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kcfg == nil || store == nil || log == nil {
		return nil, errors.New("deliverer: kafka config, flow store and logger are required")
	}
	d := &Deliverer{
		cfg: cfg, kcfg: kcfg, store: store, box: box, log: log,
		m:         newMetrics(reg),
		rec:       nopRecorder{},
		clock:     systemClock{},
		ready:     make(chan struct{}),
		flows:     map[string]*flowRuntime{},
		consuming: map[string]bool{},
		reconcile: make(chan struct{}, 1),
	}
	d.mem.limit, d.mem.maxEvents = cfg.MaxBufferedBytes, cfg.MaxBufferedPerPartition
	d.factory = d.defaultFactory
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Ready is closed once the deliverer consumes (the flow store caught up
// and the consumer group client exists).
func (d *Deliverer) Ready() <-chan struct{} { return d.ready }

// Run delivers until ctx is cancelled, then drains: it stops fetching and
// starting attempts, waits for attempts in flight (up to the drain
// timeout), commits what finished and leaves the group.
func (d *Deliverer) Run(ctx context.Context) error {
	select {
	case <-d.store.Ready():
	case <-ctx.Done():
		return nil
	}
	fetchMax, partMax := fetchSizes(d.cfg.MaxBufferedBytes)
	cl, err := d.kcfg.NewClient(d.log,
		kgo.ConsumerGroup(d.cfg.Group),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// (Group consumers always fetch offsets with RequireStable, so a
		// new owner of a partition waits for offsets committed in a
		// transaction still open.)
		// Rebalance callbacks run between polls, never while a poll's
		// records are being taken into lanes.
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Transaction markers come as records, so that the committed
		// offsets move past them (a drained partition shows no lag).
		kgo.KeepControlRecords(),
		kgo.OnOffsetsFetched(d.onOffsetsFetched),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.FetchMaxBytes(fetchMax),
		kgo.FetchMaxPartitionBytes(partMax),
		kgo.SessionTimeout(d.cfg.SessionTimeout),
		kgo.OnPartitionsAssigned(d.onAssigned),
		kgo.OnPartitionsRevoked(d.onRevoked),
		kgo.OnPartitionsLost(d.onLost),
	)
	if err != nil {
		return fmt.Errorf("deliverer: %w", err)
	}
	d.cl = cl
	d.mem.mu.Lock()
	d.mem.fetch = cl
	d.mem.mu.Unlock()

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopWatch := d.store.Watch(func(flow.Change) { d.pokeReconcile() })
	d.sync()
	wg.Add(2)
	go func() { defer wg.Done(); d.reconcileLoop(bg) }()
	go func() { defer wg.Done(); d.commitLoop(bg) }()
	close(d.ready)
	d.log.Info("deliverer consuming", zap.String("group", d.cfg.Group))

	d.poll(ctx)

	// Drain.
	stopWatch()
	stopBG()
	wg.Wait()
	rts := d.runtimes()
	for _, rt := range rts {
		rt.halt()
	}
	deadline := time.Now().Add(d.cfg.DrainTimeout)
	for !allIdle(rts) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !allIdle(rts) {
		d.log.Warn("drain timeout: aborting attempts still in flight (they will be delivered again)")
	}
	for _, rt := range rts {
		rt.close()
	}
	cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	if err := d.commit(cctx, nil); err != nil {
		d.log.Warn("final offset commit failed", zap.Error(err))
	}
	cancel()
	cl.Close() // leaves the group
	d.log.Info("deliverer stopped")
	return nil
}

// fetchSizes derives the fetch limits from the memory budget. franz-go
// holds a fetch response while the previous one is being taken into
// lanes, and a partition's records stay in franz-go until a poll takes
// them or its pause drops them: large fetches of partitions that pause
// soon after are memory and decompression spent on records fetched again
// later. A sixteenth of the budget per fetch (4 MiB by default) and a
// thirty-second of that per partition (128 KiB, about 1,500 compressed
// 300-byte events; the broker returns a larger first batch whole) keep
// that small; delivering to Kafka became faster, not slower, with them
// (the limits count compressed bytes).
func fetchSizes(budget int64) (maxBytes, partBytes int32) {
	maxBytes = int32(min(max(budget/16, 256<<10), 16<<20))
	partBytes = min(max(maxBytes/32, 16<<10), 1<<20)
	return maxBytes, partBytes
}

func allIdle(rts []*flowRuntime) bool {
	for _, rt := range rts {
		if !rt.idle() {
			return false
		}
	}
	return true
}

func (d *Deliverer) poll(ctx context.Context) {
	for {
		fs := d.cl.PollRecords(ctx, 10000)
		if ctx.Err() != nil || fs.IsClientClosed() {
			d.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			d.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if rt := d.runtimeOfTopic(ftp.Topic); rt != nil {
				rt.accept(ftp)
			}
		})
		d.cl.AllowRebalance()
	}
}

func (d *Deliverer) runtimes() []*flowRuntime {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*flowRuntime, 0, len(d.flows))
	for _, rt := range d.flows {
		out = append(out, rt)
	}
	return out
}

func (d *Deliverer) runtimeOfTopic(topic string) *flowRuntime {
	name, ok := kafka.FlowOfDeliveryTopic(topic)
	if !ok {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flows[name]
}

// runtime returns the flow's runtime, creating a held one if needed.
func (d *Deliverer) runtime(name string) *flowRuntime {
	d.mu.Lock()
	defer d.mu.Unlock()
	rt := d.flows[name]
	if rt == nil {
		rt = newFlowRuntime(d, name)
		d.flows[name] = rt
	}
	return rt
}

func (d *Deliverer) member() destination.Member {
	id, gen := d.cl.GroupMetadata()
	return destination.Member{Group: d.cfg.Group, MemberID: id, Generation: gen}
}

func (d *Deliverer) pokeReconcile() {
	select {
	case d.reconcile <- struct{}{}:
	default:
	}
}

func (d *Deliverer) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.reconcile:
		case <-t.C:
		}
		d.sync()
	}
}

// sync makes the runtimes and the consumed topics match the flow store.
func (d *Deliverer) sync() {
	snap := d.store.Snapshot()
	for name, fl := range snap.Flows {
		rt := d.runtime(name)
		rt.mu.Lock()
		cur := rt.conf
		rt.mu.Unlock()
		if cur != nil && cur.version == fl.GetVersion() {
			continue
		}
		rt.setConfig(d.buildConfig(rt, fl, cur))
	}
	var add, purge []string
	var gone []*flowRuntime
	d.mu.Lock()
	for name := range snap.Flows {
		t := kafka.DeliveryTopic(name)
		if !d.consuming[t] {
			d.consuming[t] = true
			add = append(add, t)
		}
	}
	for t := range d.consuming {
		name, _ := kafka.FlowOfDeliveryTopic(t)
		if _, ok := snap.Flows[name]; !ok {
			delete(d.consuming, t)
			purge = append(purge, t)
		}
	}
	for name, rt := range d.flows {
		if _, ok := snap.Flows[name]; !ok {
			gone = append(gone, rt)
		}
	}
	d.mu.Unlock()
	for _, rt := range gone {
		rt.mu.Lock()
		had := rt.conf != nil
		rt.mu.Unlock()
		if had {
			rt.setConfig(nil)
		}
		d.maybeRemove(rt)
	}
	if len(purge) > 0 {
		d.log.Info("no longer consuming deleted flows' topics", zap.Strings("topics", purge))
		d.cl.PurgeTopicsFromConsuming(purge...)
	}
	if len(add) > 0 {
		d.log.Info("consuming delivery topics", zap.Strings("topics", add))
		d.cl.AddConsumeTopics(add...)
	}
}

// maybeRemove ends the runtime of a deleted flow once it owns no partitions.
func (d *Deliverer) maybeRemove(rt *flowRuntime) {
	if _, ok := d.store.Flow(rt.name); ok {
		return
	}
	rt.mu.Lock()
	empty := len(rt.parts) == 0
	rt.mu.Unlock()
	if !empty {
		return
	}
	d.mu.Lock()
	if d.flows[rt.name] == rt {
		delete(d.flows, rt.name)
	}
	d.mu.Unlock()
	go rt.close()
	d.m.forget(rt.name)
	d.rec.Forget(rt.name)
}

// buildConfig turns a flow into a runnable configuration, reusing the
// current destination when nothing it depends on changed.
func (d *Deliverer) buildConfig(rt *flowRuntime, fl *samsav1.Flow, cur *flowConfig) *flowConfig {
	c := &flowConfig{flow: fl, version: fl.GetVersion(), paused: fl.GetPaused()}
	pol, err := parsePolicy(fl.GetDelivery())
	if err != nil {
		c.err = err
		rt.log.Error("flow has an invalid delivery policy; delivery held", zap.Error(err))
		return c
	}
	c.pol = pol
	if cur != nil && cur.dest != nil && proto.Equal(cur.flow.GetDestination(), fl.GetDestination()) &&
		cur.pol.timeout == pol.timeout && cur.pol.maxInFlight == pol.maxInFlight {
		c.dest = cur.dest
		return c
	}
	dest, typ, err := d.factory(fl, pol.timeout, pol.maxInFlight)
	if err != nil {
		c.err = err
		rt.log.Error("flow's destination cannot be set up; delivery held", zap.Error(err))
		return c
	}
	c.dest = newHandle(dest, typ)
	c.dest.m = d.m.forFlow(fl.GetName(), typ)
	return c
}

func (d *Deliverer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	for topic, ps := range assigned {
		name, ok := kafka.FlowOfDeliveryTopic(topic)
		if !ok {
			continue
		}
		d.log.Info("partitions assigned", zap.String("topic", topic), zap.Int32s("partitions", ps))
		d.runtime(name).addPartitions(ps)
	}
}

func (d *Deliverer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	d.release(ctx, revoked, true)
}

func (d *Deliverer) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	d.release(ctx, lost, false)
}

// onOffsetsFetched runs once the committed offsets of newly assigned
// partitions are fetched, before they are consumed from there: each
// partition's counts continue from the metadata of the offset it starts
// at, so that no owner counts an event its predecessor counted (see
// stats.CommitMetadata).
func (d *Deliverer) onOffsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	each := func(topic string, partition int32, offset int64, metadata *string) {
		rt := d.runtimeOfTopic(topic)
		if rt == nil || offset < 0 {
			return // nothing committed: counting starts at zero
		}
		md := ""
		if metadata != nil {
			md = *metadata
		}
		c, ok := stats.ParseCommitMetadata(md)
		if !ok {
			rt.log.Info("committed offset without delivery counts: counting from zero there",
				zap.String("topic", topic), zap.Int32("partition", partition), zap.Int64("offset", offset))
		}
		rt.startCounts(partition, c)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			each(t.Topic, p.Partition, p.Offset, p.Metadata)
		}
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				each(t.Topic, p.Partition, p.Offset, p.Metadata)
			}
		}
	}
	return nil
}

// release gives partitions up: nothing new starts on them, attempts in
// flight may finish (up to the revoke timeout), finished offsets are
// committed (unless the partitions were lost, when a commit would fail),
// and their state is dropped.
func (d *Deliverer) release(ctx context.Context, parts map[string][]int32, commit bool) {
	rts := map[*flowRuntime][]int32{}
	for topic, ps := range parts {
		if len(ps) == 0 {
			continue
		}
		if rt := d.runtimeOfTopic(topic); rt != nil {
			rt.startRevoke(ps)
			rts[rt] = ps
			d.log.Info("partitions revoked", zap.String("topic", topic), zap.Int32s("partitions", ps), zap.Bool("lost", !commit))
		}
	}
	if len(rts) == 0 {
		return
	}
	deadline := time.Now().Add(d.cfg.RevokeTimeout)
	for {
		busy := 0
		for rt, ps := range rts {
			busy += rt.busy(ps)
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			d.log.Warn("revoke timeout: attempts still in flight on revoked partitions will be delivered again by the new owner", zap.Int("partitions", busy))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if commit {
		if err := d.commit(ctx, rts); err != nil {
			d.log.Warn("offset commit on revoke failed", zap.Error(err))
		}
	}
	for rt, ps := range rts {
		if rt.dropPartitions(ps) {
			d.maybeRemove(rt)
		}
	}
}

func (d *Deliverer) commitLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.commit(ctx, nil); err != nil && ctx.Err() == nil {
			d.log.Warn("offset commit failed", zap.Error(err))
		}
		for _, rt := range d.runtimes() {
			if err := rt.commitMarkers(ctx); err != nil && ctx.Err() == nil {
				rt.log.Warn("offset commit past transaction markers failed", zap.Error(err))
			}
		}
		d.observe()
	}
}

// commit commits the watermark of every partition (of only, when set) that
// moved since the last commit, with the partition's counts in the commit
// metadata (see stats.CommitMetadata). Partitions of transactional
// destinations are committed by their transactions instead.
func (d *Deliverer) commit(ctx context.Context, only map[*flowRuntime][]int32) error {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	if d.noCommits.Load() {
		return nil
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	meta := map[string]map[int32]string{}
	rts := d.runtimes()
	for _, rt := range rts {
		if only != nil {
			ids, ok := only[rt]
			if !ok {
				continue
			}
			rt.collect(offsets, meta, ids)
			continue
		}
		rt.collect(offsets, meta, nil)
	}
	return d.commitOffsets(ctx, rts, offsets, meta)
}

// commitOffsets commits offsets of the runtimes rts with their metadata
// and records what was committed. commitMu must be held.
func (d *Deliverer) commitOffsets(ctx context.Context, rts []*flowRuntime, offsets map[string]map[int32]kgo.EpochOffset, meta map[string]map[int32]string) error {
	if len(offsets) == 0 {
		return nil
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if md, ok := meta[t.Topic][t.Partitions[j].Partition]; ok {
					t.Partitions[j].Metadata = kmsg.StringPtr(md)
				}
			}
		}
		return nil
	})
	var (
		cerr      error
		reqFailed bool
	)
	d.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr, reqFailed = err, true
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					cerr = e
					delete(offsets[t.Topic], p.Partition)
				}
			}
		}
	})
	if cerr != nil {
		d.m.commits.WithLabelValues("failed").Inc()
	} else {
		d.m.commits.WithLabelValues("ok").Inc()
	}
	if !reqFailed {
		// Partitions answered without an error are committed even when
		// others failed; those are retried at the next tick.
		for _, rt := range rts {
			if ps := offsets[rt.topic]; len(ps) > 0 {
				rt.committed(ps)
			}
		}
	}
	if cerr != nil {
		return fmt.Errorf("deliverer: commit offsets: %w", cerr)
	}
	return nil
}

// collect adds the partitions' committable watermarks to offsets, and
// their counts, rendered as commit metadata, to meta.
func (f *flowRuntime) collect(offsets map[string]map[int32]kgo.EpochOffset, meta map[string]map[int32]string, ids []int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conf != nil && f.conf.dest != nil && f.conf.dest.txn != nil {
		return
	}
	add := func(p *partition) {
		if p == nil || p.gone || p.wm < 0 || p.wm <= p.committed {
			return
		}
		f.addOffsetLocked(p, offsets, meta)
	}
	if ids == nil {
		for _, p := range f.parts {
			add(p)
		}
		return
	}
	for _, id := range ids {
		add(f.parts[id])
	}
}

// addOffsetLocked adds the partition's watermark to offsets and its counts,
// rendered as commit metadata, to meta. f.mu is held.
func (f *flowRuntime) addOffsetLocked(p *partition, offsets map[string]map[int32]kgo.EpochOffset, meta map[string]map[int32]string) {
	if offsets[f.topic] == nil {
		offsets[f.topic] = map[int32]kgo.EpochOffset{}
		meta[f.topic] = map[int32]string{}
	}
	offsets[f.topic][p.id] = kgo.EpochOffset{Epoch: p.wmEpoch, Offset: p.wm}
	meta[f.topic][p.id] = stats.CommitMetadata(p.counts)
}

func (f *flowRuntime) committed(ps map[int32]kgo.EpochOffset) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, o := range ps {
		if p := f.parts[id]; p != nil && o.Offset > p.committed {
			p.committed = o.Offset
		}
	}
}

// observe refreshes the gauges and the recorder's breaker state.
func (d *Deliverer) observe() {
	for _, s := range d.Stats() {
		d.m.lag.WithLabelValues(s.Flow).Set(float64(s.Lag))
		d.m.buffered.WithLabelValues(s.Flow).Set(float64(s.Buffered))
		d.m.bufferedBytes.WithLabelValues(s.Flow).Set(float64(s.BufferedBytes))
		d.m.inFlight.WithLabelValues(s.Flow).Set(float64(s.InFlight))
		d.rec.Breaker(s.Flow, s.Breaker, int64(s.Retrying))
	}
}

// FlowStats is a snapshot of one flow's delivery on this replica.
type FlowStats struct {
	Flow        string
	Destination string // "http", "kafka", "postgres", or "" when not set up
	// Delivered, DeadLettered and Retries count since this replica started.
	Delivered    int64
	DeadLettered int64
	Retries      int64
	InFlight     int
	Buffered     int
	// BufferedBytes is what the buffered events hold, as the memory
	// budget (Config.MaxBufferedBytes) counts it.
	BufferedBytes int64
	Retrying      int
	// Lag is the number of events in the delivery topic not yet finished
	// on the partitions this replica owns.
	Lag        int64
	Partitions int
	Breaker    string
	// Held is set while delivery is held; HoldReason says why ("paused",
	// "maintenance window <name>", "invalid configuration").
	Held        bool
	HoldReason  string
	LastError   string
	LastErrorAt time.Time
}

// Stats returns a snapshot of every flow this replica knows.
func (d *Deliverer) Stats() []FlowStats {
	rts := d.runtimes()
	out := make([]FlowStats, 0, len(rts))
	for _, rt := range rts {
		rt.mu.Lock()
		s := FlowStats{
			Flow: rt.name, Delivered: rt.delivered, DeadLettered: rt.deadLettered, Retries: rt.retries,
			InFlight: rt.inFlightItems, Buffered: rt.buffered, BufferedBytes: rt.bufferedBytes, Retrying: rt.retrying, Partitions: len(rt.parts),
			Breaker: rt.brk.state.String(), Held: rt.held, HoldReason: rt.holdReason,
			LastError: rt.lastErr, LastErrorAt: rt.lastErrAt,
		}
		if rt.conf != nil && rt.conf.dest != nil {
			s.Destination = rt.conf.dest.typ
		}
		for _, p := range rt.parts {
			s.Lag += p.lag()
		}
		rt.mu.Unlock()
		out = append(out, s)
	}
	return out
}
