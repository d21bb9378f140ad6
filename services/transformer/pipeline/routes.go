package pipeline

import (
	"errors"
	"sort"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/script"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Record formats of a source topic.
const (
	formatEnvelope = "envelope"
	formatJSON     = "json"
	formatBytes    = "bytes"
)

// table is what the pipeline does with each source topic, derived from one
// snapshot of the flow store. It is immutable once built.
type table struct {
	snap   *flow.Snapshot
	topics map[string]*topicRoute
	flows  []*flowRoute // all flows, indexed by flowRoute.idx
}

// topicRoute lists the sources reading a topic: usually one, but two
// sources may name the same existing topic (with different formats, say).
type topicRoute struct {
	sources []*sourceRoute
}

type sourceRoute struct {
	name   string
	format string
	flows  []*flowRoute
}

type flowRoute struct {
	idx      int
	name     string
	version  int64
	source   string
	outTopic string
	dlqTopic string
	// prog is nil when the flow's program does not compile; compileErr
	// then says why, and every event is dead-lettered with it. (The
	// control service refuses such flows; this guards against a flow
	// written by an older or newer control, or a sandbox change.)
	prog       *script.Program
	compileErr *script.Error
	partitions int32
	metrics    *flowMetrics
}

// compiled is a program cached across tables: recompiled only when the
// flow's filter or transform changes, not on every new version (pausing a
// flow or changing its destination writes a new version too).
type compiled struct {
	filter, transform string
	prog              *script.Program
	err               *script.Error
}

// builder builds tables, keeping compiled programs between them. It is
// used by one goroutine at a time.
type builder struct {
	opts    []script.Option
	cache   map[string]*compiled // by flow name
	metrics *metrics
}

func newBuilder(m *metrics, opts ...script.Option) *builder {
	return &builder{opts: opts, cache: map[string]*compiled{}, metrics: m}
}

// SourceTopic is the topic a source's records live in.
func SourceTopic(s *samsav1.Source) string {
	if t := s.GetTopic(); t != "" {
		return t
	}
	return kafka.SourceTopic(s.GetName())
}

// build derives the routing table of snap.
func (b *builder) build(snap *flow.Snapshot) *table {
	t := &table{snap: snap, topics: map[string]*topicRoute{}}
	seen := make(map[string]bool, len(snap.Flows))
	for _, src := range snap.SourceList() {
		flows := snap.FlowsOf(src.GetName())
		if len(flows) == 0 {
			continue
		}
		format := src.GetFormat()
		if format == "" {
			format = formatEnvelope
		}
		sr := &sourceRoute{name: src.GetName(), format: format}
		for _, f := range flows {
			seen[f.GetName()] = true
			fr := &flowRoute{
				idx:        len(t.flows),
				name:       f.GetName(),
				version:    f.GetVersion(),
				source:     src.GetName(),
				outTopic:   kafka.DeliveryTopic(f.GetName()),
				dlqTopic:   kafka.DLQTopic(f.GetName()),
				partitions: f.GetPartitions(),
				metrics:    b.metrics.flow(f.GetName()),
			}
			c := b.compile(f)
			fr.prog, fr.compileErr = c.prog, c.err
			t.flows = append(t.flows, fr)
			sr.flows = append(sr.flows, fr)
		}
		topic := SourceTopic(src)
		tr := t.topics[topic]
		if tr == nil {
			tr = &topicRoute{}
			t.topics[topic] = tr
		}
		tr.sources = append(tr.sources, sr)
	}
	for name := range b.cache {
		if !seen[name] {
			delete(b.cache, name)
			b.metrics.forget(name)
		}
	}
	return t
}

func (b *builder) compile(f *samsav1.Flow) *compiled {
	if c, ok := b.cache[f.GetName()]; ok && c.filter == f.GetFilter() && c.transform == f.GetTransform() {
		return c
	}
	c := &compiled{filter: f.GetFilter(), transform: f.GetTransform()}
	prog, err := script.Compile(f.GetFilter(), f.GetTransform(), b.opts...)
	if err != nil {
		var se *script.Error
		if !errors.As(err, &se) {
			se = &script.Error{Stage: script.StageTransform, Msg: err.Error()}
		}
		c.err = se
	} else {
		c.prog = prog
	}
	b.cache[f.GetName()] = c
	return c
}

// topicList returns the table's topics, sorted.
func (t *table) topicList() []string {
	out := make([]string, 0, len(t.topics))
	for topic := range t.topics {
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}

// flowOfTopic returns the flow writing to a delivery or dead-letter topic.
func (t *table) flowOfTopic(topic string) *flowRoute {
	for _, f := range t.flows {
		if f.outTopic == topic || f.dlqTopic == topic {
			return f
		}
	}
	return nil
}
