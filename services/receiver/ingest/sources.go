package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/ingestauth"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Defaults of a source topic the receiver creates (DESIGN.md §4; the
// control service uses the same).
const (
	defaultPartitions = 6
	defaultRetention  = 168 * time.Hour
)

// sourceState is what the receiver derives from one version of a source:
// its topic, verifier and rate limiter. It is rebuilt when the source's
// version changes, so a changed source takes effect on its next request.
type sourceState struct {
	name    string
	version int64
	topic   string
	format  string // "" for envelope
	// verifier authenticates requests; nil with configErr set when the
	// source's auth configuration cannot be used.
	verifier  *ingestauth.Verifier
	configErr error
	limiter   *rate.Limiter // nil: unlimited
	m         *sourceMetrics
	// counts are the source's counters published to samsa.stats; they
	// outlive versions of the source, not its deletion.
	counts *stats.SourceCounter

	partitions int32
	retention  time.Duration

	// ensured is set once the topic is known to exist; lastEnsure spaces
	// out attempts to create it.
	ensured    atomic.Bool
	ensureMu   sync.Mutex
	lastEnsure time.Time
}

// native reports whether the source reads a topic in another format, which
// producers write directly: the receiver does not write there.
func (s *sourceState) native() bool { return s.format != "" && s.format != "envelope" }

// sources caches a sourceState per source, keyed by name, checked against
// the store's version on every lookup.
type sources struct {
	store    *flow.Store
	open     func(string) (string, error)
	metrics  *metrics
	counters *stats.SourceRecorder
	log      *zap.Logger

	mu sync.Mutex // serializes rebuilds
	m  sync.Map   // name -> *sourceState
}

// get returns the state of the named source's current version.
func (ss *sources) get(name string) (*sourceState, error) {
	src, ok := ss.store.Source(name)
	if !ok {
		return nil, errorf(ErrUnknownSource, "unknown source %q", name)
	}
	if v, ok := ss.m.Load(name); ok {
		if st := v.(*sourceState); st.version == src.GetVersion() {
			return st, nil
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if v, ok := ss.m.Load(name); ok {
		if st := v.(*sourceState); st.version == src.GetVersion() {
			return st, nil
		}
	}
	st := ss.build(src)
	ss.m.Store(name, st)
	return st, nil
}

func (ss *sources) build(src *samsav1.Source) *sourceState {
	st := &sourceState{
		name:       src.GetName(),
		version:    src.GetVersion(),
		topic:      src.GetTopic(),
		format:     src.GetFormat(),
		partitions: src.GetPartitions(),
		retention:  defaultRetention,
		m:          ss.metrics.source(src.GetName()),
	}
	var created time.Time
	if ct := src.GetCreateTime(); ct != nil {
		created = ct.AsTime()
	}
	st.counts = ss.counters.Source(st.name, created)
	if st.topic == "" {
		st.topic = kafka.SourceTopic(st.name)
	}
	if st.partitions <= 0 {
		st.partitions = defaultPartitions
	}
	if r := src.GetRetention(); r != "" {
		if d, err := time.ParseDuration(r); err == nil && d > 0 {
			st.retention = d
		}
	}
	st.verifier, st.configErr = ingestauth.New(src.GetAuth(), ss.open)
	if st.configErr != nil {
		ss.log.Error("source auth configuration unusable; its requests fail with 500 until it is fixed",
			zap.String("source", st.name), zap.Int64("version", st.version), zap.Error(st.configErr))
	}
	if rl := src.GetRateLimit(); rl.GetPerSecond() > 0 {
		burst := int(rl.GetBurst())
		if burst <= 0 {
			burst = int(math.Ceil(rl.GetPerSecond()))
		}
		st.limiter = rate.NewLimiter(rate.Limit(rl.GetPerSecond()), burst)
	}
	return st
}

// forget drops a deleted source's state and metrics.
func (ss *sources) forget(name string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.m.Delete(name)
	ss.metrics.forget(name)
	ss.counters.Forget(name)
}

// reserve takes n events from the source's rate limit, or says how long
// to wait before retrying.
func (st *sourceState) reserve(n int, now time.Time) error {
	if st.limiter == nil {
		return nil
	}
	r := st.limiter.ReserveN(now, n)
	if !r.OK() {
		return errorf(ErrTooManyEvents, "%d events in one request exceed the rate limit burst of source %q (%d): send smaller batches",
			n, st.name, st.limiter.Burst())
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &Error{Kind: ErrRateLimited, RetryAfter: d,
			Msg: "rate limit of source " + strconv.Quote(st.name) + " exceeded (" + strconv.FormatFloat(float64(st.limiter.Limit()), 'g', -1, 64) + " events/s): retry later"}
	}
	return nil
}

// ensureTopic creates the source's topic if it does not exist. Concurrent
// requests wait for the one creating it; while creating keeps failing, it
// is retried at most every ensureEvery. Failures are logged, not returned:
// without the right to create topics the topic may still exist, and if it
// does not, producing fails with a clear error anyway.
func (st *sourceState) ensureTopic(ctx context.Context, cl *kgo.Client, kcfg *kafka.Config, maxEventBytes int, timeout time.Duration, log *zap.Logger) {
	if st.ensured.Load() {
		return
	}
	st.ensureMu.Lock()
	defer st.ensureMu.Unlock()
	if st.ensured.Load() || time.Since(st.lastEnsure) < ensureEvery {
		return
	}
	st.lastEnsure = time.Now()
	configs := map[string]*string{
		"retention.ms": kadm.StringPtr(strconv.FormatInt(st.retention.Milliseconds(), 10)),
	}
	if maxEventBytes > 1_000_000 {
		configs["max.message.bytes"] = kadm.StringPtr(strconv.Itoa(maxEventBytes + 64<<10))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := kcfg.EnsureTopics(ctx, cl, kafka.TopicSpec{Name: st.topic, Partitions: st.partitions, Replication: -1, Configs: configs})
	if err == nil {
		// A topic created a moment ago has no partition leaders yet: wait
		// for them, so that its first events do not spend their delivery
		// timeout waiting for metadata.
		err = waitLeaders(ctx, cl, st.topic)
	}
	if err != nil {
		log.Warn("cannot ensure the source topic exists", zap.String("source", st.name), zap.String("topic", st.topic), zap.Error(err))
		return
	}
	st.ensured.Store(true)
}

// waitLeaders polls the topic's metadata until every partition has a
// leader.
func waitLeaders(ctx context.Context, cl *kgo.Client, topic string) error {
	adm := kadm.NewClient(cl)
	for {
		tds, err := adm.ListTopics(ctx, topic)
		if err == nil {
			td := tds[topic]
			err = td.Err
			if err == nil && len(td.Partitions) == 0 {
				err = errors.New("no partitions yet")
			}
			for _, p := range td.Partitions {
				if err == nil && (p.Err != nil || p.Leader < 0) {
					err = fmt.Errorf("partition %d has no leader yet", p.Partition)
				}
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %w", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureEvery spaces out attempts to create a topic while they fail.
const ensureEvery = 5 * time.Second
