// Package flow holds Samsa's resources (sources and flows) in the compacted
// topic samsa.flows and gives every service a live, consistent view of them.
//
// Records are keyed "source/<name>" and "flow/<name>"; values are binary
// samsa.v1 protos; a tombstone (nil value) deletes. A resource's version is
// derived from the offset of the record that wrote it (VersionOf), so
// versions only grow and every replica agrees on them.
//
// The Store replays the topic to its end on start (Ready is closed then) and
// keeps following it; Snapshot returns an immutable view and Watch calls
// back on every change. Only the control service writes, through Writer.
package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Kind is the kind of a resource.
type Kind string

const (
	KindSource Kind = "source"
	KindFlow   Kind = "flow"
)

// Key is the record key of a resource in samsa.flows.
func Key(kind Kind, name string) string { return string(kind) + "/" + name }

// Change is one applied record of samsa.flows.
type Change struct {
	Kind Kind
	Name string
	// Source or Flow is the new state; both are nil when the resource was deleted.
	Source *samsav1.Source
	Flow   *samsav1.Flow
	// Snapshot is the whole state right after this change.
	Snapshot *Snapshot
}

// Deleted reports whether the change removed the resource.
func (c Change) Deleted() bool { return c.Source == nil && c.Flow == nil }

// Snapshot is an immutable view of every resource at one offset of
// samsa.flows. Its messages must not be modified; clone them first.
type Snapshot struct {
	Sources map[string]*samsav1.Source
	Flows   map[string]*samsav1.Flow
	// Offset is the next offset of samsa.flows to apply (everything before
	// it is in the snapshot).
	Offset int64
}

// FlowsOf returns the flows reading the source, in name order.
func (s *Snapshot) FlowsOf(source string) []*samsav1.Flow {
	var out []*samsav1.Flow
	for _, f := range s.Flows {
		if f.GetSource() == source {
			out = append(out, f)
		}
	}
	sortByName(out)
	return out
}

// SourceList returns the sources in name order.
func (s *Snapshot) SourceList() []*samsav1.Source {
	out := make([]*samsav1.Source, 0, len(s.Sources))
	for _, v := range s.Sources {
		out = append(out, v)
	}
	sortByName(out)
	return out
}

// FlowList returns the flows in name order.
func (s *Snapshot) FlowList() []*samsav1.Flow {
	out := make([]*samsav1.Flow, 0, len(s.Flows))
	for _, v := range s.Flows {
		out = append(out, v)
	}
	sortByName(out)
	return out
}

// Store follows samsa.flows. Create it with NewStore and run it with Run.
type Store struct {
	cl    *kgo.Client
	log   *zap.Logger
	topic string

	snap    atomic.Pointer[Snapshot]
	ready   chan struct{}
	readyMu sync.Once

	mu       sync.Mutex
	watchers map[int]func(Change)
	nextID   int
	seen     *sync.Cond // broadcast whenever Offset advances
}

// StoreOpt configures a Store.
type StoreOpt func(*Store)

// WithTopic reads resources from topic instead of samsa.flows (tests).
func WithTopic(topic string) StoreOpt { return func(s *Store) { s.topic = topic } }

// NewStore returns a store over samsa.flows, reading through a client of
// its own built from cfg. Call Run to start it.
func NewStore(cfg *kafka.Config, log *zap.Logger, opts ...StoreOpt) (*Store, error) {
	s := &Store{log: log, topic: kafka.FlowsTopic, ready: make(chan struct{}), watchers: map[int]func(Change){}}
	for _, o := range opts {
		o(s)
	}
	s.seen = sync.NewCond(&s.mu)
	s.snap.Store(&Snapshot{Sources: map[string]*samsav1.Source{}, Flows: map[string]*samsav1.Flow{}})
	cl, err := cfg.NewClient(log,
		kgo.ConsumeTopics(s.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers occupy offsets. Keeping them makes the store's
		// position exact, so WaitFor(end of topic) cannot return early.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	s.cl = cl
	return s, nil
}

// Snapshot returns the current view.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// Source returns a source (read-only) or false.
func (s *Store) Source(name string) (*samsav1.Source, bool) {
	v, ok := s.Snapshot().Sources[name]
	return v, ok
}

// Flow returns a flow (read-only) or false.
func (s *Store) Flow(name string) (*samsav1.Flow, bool) {
	v, ok := s.Snapshot().Flows[name]
	return v, ok
}

// Ready is closed once the store has applied every record that was in
// samsa.flows when Run started.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Watch calls fn, serially and in topic order, for every change applied
// after Watch returns, until the returned stop function is called. fn runs
// on the store's goroutine: it must be quick and must not call Watch.
func (s *Store) Watch(fn func(Change)) (stop func()) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.watchers, id)
		s.mu.Unlock()
	}
}

// WaitFor blocks until the store has applied every record before offset.
func (s *Store) WaitFor(ctx context.Context, offset int64) error {
	if s.Snapshot().Offset >= offset {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.seen.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.Snapshot().Offset < offset {
		if ctx.Err() != nil {
			return fmt.Errorf("flow: waiting for offset %d of %s: %w", offset, s.topic, ctx.Err())
		}
		s.seen.Wait()
	}
	return nil
}

// CatchUp waits until the store has applied everything committed to the
// topic at the time of the call (read-your-writes across replicas).
func (s *Store) CatchUp(ctx context.Context) error {
	end, err := endOffset(ctx, s.cl, s.topic)
	if err != nil {
		return err
	}
	return s.WaitFor(ctx, end)
}

// Run follows the topic until ctx is done, then closes the client.
func (s *Store) Run(ctx context.Context) error {
	defer s.cl.Close()
	end, err := s.startEnd(ctx)
	if err != nil {
		return err
	}
	if end <= 0 {
		s.markReady()
	}
	for {
		fs := s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Warn("flow store fetch error", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Attrs.IsControl() {
				s.advance(r.Offset + 1)
				return
			}
			s.apply(r)
		})
		if s.Snapshot().Offset >= end {
			s.markReady()
		}
	}
}

func (s *Store) startEnd(ctx context.Context) (int64, error) {
	for {
		end, err := endOffset(ctx, s.cl, s.topic)
		if err == nil {
			return end, nil
		}
		// Expected for a moment on a new cluster, until control creates the topic.
		s.log.Info("flow store cannot read the end of the topic yet; retrying", zap.String("topic", s.topic), zap.Error(err))
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) markReady() {
	s.readyMu.Do(func() {
		close(s.ready)
		snap := s.Snapshot()
		s.log.Info("flow store caught up", zap.Int("sources", len(snap.Sources)), zap.Int("flows", len(snap.Flows)), zap.Int64("offset", snap.Offset))
	})
}

func (s *Store) advance(next int64) {
	s.mu.Lock()
	old := s.Snapshot()
	cp := *old
	cp.Offset = next
	s.snap.Store(&cp)
	s.seen.Broadcast()
	s.mu.Unlock()
}

func (s *Store) apply(r *kgo.Record) {
	kind, name, ok := strings.Cut(string(r.Key), "/")
	if !ok || (Kind(kind) != KindSource && Kind(kind) != KindFlow) {
		s.log.Warn("flow store skips record with unknown key", zap.ByteString("key", r.Key), zap.Int64("offset", r.Offset))
		s.advance(r.Offset + 1)
		return
	}
	ch := Change{Kind: Kind(kind), Name: name}
	if r.Value != nil {
		switch ch.Kind {
		case KindSource:
			v := new(samsav1.Source)
			if err := proto.Unmarshal(r.Value, v); err != nil {
				s.log.Error("flow store skips undecodable source", zap.String("name", name), zap.Int64("offset", r.Offset), zap.Error(err))
				s.advance(r.Offset + 1)
				return
			}
			v.Version = VersionOf(r.Offset)
			ch.Source = v
		case KindFlow:
			v := new(samsav1.Flow)
			if err := proto.Unmarshal(r.Value, v); err != nil {
				s.log.Error("flow store skips undecodable flow", zap.String("name", name), zap.Int64("offset", r.Offset), zap.Error(err))
				s.advance(r.Offset + 1)
				return
			}
			v.Version = VersionOf(r.Offset)
			ch.Flow = v
		}
	}

	s.mu.Lock()
	old := s.Snapshot()
	next := &Snapshot{Sources: old.Sources, Flows: old.Flows, Offset: r.Offset + 1}
	switch ch.Kind {
	case KindSource:
		next.Sources = cloneMap(old.Sources)
		if ch.Source != nil {
			next.Sources[name] = ch.Source
		} else {
			delete(next.Sources, name)
		}
	case KindFlow:
		next.Flows = cloneMap(old.Flows)
		if ch.Flow != nil {
			next.Flows[name] = ch.Flow
		} else {
			delete(next.Flows, name)
		}
	}
	s.snap.Store(next)
	ch.Snapshot = next
	ws := make([]func(Change), 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.seen.Broadcast()
	s.mu.Unlock()
	for _, w := range ws {
		w(ch)
	}
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// endOffset is the offset after the last committed record of partition 0
// (the last stable offset: what a read_committed reader can reach).
func endOffset(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	adm := kadm.NewClient(cl)
	offs, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("flow: end offset of %s: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		return 0, fmt.Errorf("flow: end offset of %s: %w", topic, errors.New("partition 0 missing (does the topic exist?)"))
	}
	if o.Err != nil {
		return 0, fmt.Errorf("flow: end offset of %s: %w", topic, o.Err)
	}
	return o.Offset, nil
}
