package stats

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Publish writes the recorder's changed reports to samsa.stats every
// interval until ctx is done, then writes all of them once more, marked
// final. Services whose writes are transactional (the transformer) may
// instead put Records into their own transactions.
func Publish(ctx context.Context, cl *kgo.Client, r *Recorder, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			reps := r.Reports(time.Now(), true)
			recs := make([]*kgo.Record, 0, len(reps))
			for i := range reps {
				reps[i].Final = true
				if rec, err := reps[i].Record(); err == nil {
					recs = append(recs, rec)
				}
			}
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := cl.ProduceSync(fctx, recs...).FirstErr(); err != nil {
				log.Warn("final stats not published", zap.Error(err))
			}
			cancel()
			return
		case <-t.C:
			recs := r.Records(time.Now(), false)
			if len(recs) == 0 {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, interval*3)
			if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil && ctx.Err() == nil {
				log.Warn("stats not published", zap.Error(err))
				// Mark everything dirty again so the next tick retries.
				r.Reports(time.Now(), true)
				r.markAllDirty()
			}
			cancel()
		}
	}
}

func (r *Recorder) markAllDirty() {
	r.mu.Lock()
	for _, s := range r.flows {
		s.dirty = true
	}
	r.mu.Unlock()
}
