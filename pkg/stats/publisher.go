package stats

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Publish writes the recorder's changed reports to samsa.stats every
// interval until ctx is done, then writes all of them once more, marked
// final. Services whose writes are transactional (the transformer) may
// instead put Records into their own transactions.
func Publish(ctx context.Context, cl *kgo.Client, r *Recorder, interval time.Duration, log *zap.Logger) {
	publish(ctx, cl, flowSource{r}, interval, log, publishConfig{finalTimeout: 5 * time.Second})
}

// PublishOpt configures PublishSources.
type PublishOpt func(*publishConfig)

type publishConfig struct {
	topic        string
	finalTimeout time.Duration
}

// PublishTo writes the reports to topic instead of samsa.stats.
func PublishTo(topic string) PublishOpt { return func(c *publishConfig) { c.topic = topic } }

// FinalTimeout bounds the write of the final reports once ctx is done.
// Default 5s.
func FinalTimeout(d time.Duration) PublishOpt { return func(c *publishConfig) { c.finalTimeout = d } }

// PublishSources writes the source reports that changed to samsa.stats
// every interval until ctx is done, then all of them once more, marked
// final. Call it from the receiver, and cancel ctx once the last request
// has been counted.
func PublishSources(ctx context.Context, cl *kgo.Client, r *SourceRecorder, interval time.Duration, log *zap.Logger, opts ...PublishOpt) {
	pc := publishConfig{finalTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&pc)
	}
	publish(ctx, cl, r, interval, log, pc)
}

// reporter is what publish reads reports from.
type reporter interface {
	Records(now time.Time, all bool) []*kgo.Record
	// final returns every report marked final.
	final(now time.Time) []*kgo.Record
	// failed is called with the records of a failed write, to write them
	// again with the next ones.
	failed(recs []*kgo.Record)
}

func publish(ctx context.Context, cl *kgo.Client, r reporter, interval time.Duration, log *zap.Logger, pc publishConfig) {
	if log == nil {
		log = zap.NewNop()
	}
	retopic := func(recs []*kgo.Record) []*kgo.Record {
		if pc.topic != "" {
			for _, rec := range recs {
				rec.Topic = pc.topic
			}
		}
		return recs
	}
	var outstanding atomic.Int64
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			recs := retopic(r.final(time.Now()))
			if len(recs) == 0 {
				return
			}
			fctx, cancel := context.WithTimeout(context.Background(), pc.finalTimeout)
			if err := send(fctx, cl, recs, &outstanding); err != nil {
				log.Warn("final stats not published", zap.Error(err))
			}
			cancel()
			return
		case <-t.C:
			if outstanding.Load() > 0 {
				// The last write is still waiting for the broker: leave
				// the changes for when it is done rather than pile up
				// snapshots behind it.
				continue
			}
			recs := retopic(r.Records(time.Now(), false))
			if len(recs) == 0 {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, interval*3)
			err := send(pctx, cl, recs, &outstanding)
			cancel()
			if err != nil {
				// Write everything again once the broker answers.
				r.failed(recs)
				if !failing && ctx.Err() == nil {
					log.Warn("stats not published", zap.Error(err))
				}
				failing = true // log once per failure streak
			} else {
				failing = false
			}
		}
	}
}

// send produces recs and waits until the broker took all of them, or ctx
// is done. It does not wait for the client to give up the records: franz-go
// fails a write of unknown outcome only at its next retry, and a stopping
// service must not wait for a broker that does not answer (the caller's
// Close fails what is left). outstanding counts the records not answered
// yet.
func send(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, outstanding *atomic.Int64) error {
	done := make(chan error, len(recs))
	outstanding.Add(int64(len(recs)))
	for _, rec := range recs {
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			outstanding.Add(-1)
			done <- err
		})
	}
	var first error
	for range recs {
		select {
		case err := <-done:
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// flowSource adapts a Recorder to publish.
type flowSource struct{ *Recorder }

func (f flowSource) final(now time.Time) []*kgo.Record {
	reps := f.Reports(now, true)
	recs := make([]*kgo.Record, 0, len(reps))
	for i := range reps {
		reps[i].Final = true
		if rec, err := reps[i].Record(); err == nil {
			recs = append(recs, rec)
		}
	}
	return recs
}

func (f flowSource) failed([]*kgo.Record) { f.markAllDirty() }

func (r *Recorder) markAllDirty() {
	r.mu.Lock()
	for _, s := range r.flows {
		s.dirty = true
	}
	r.mu.Unlock()
}

// final returns the tombstones still due and every source's report,
// marked final.
func (r *SourceRecorder) final(now time.Time) []*kgo.Record { return r.records(now, true, true) }
