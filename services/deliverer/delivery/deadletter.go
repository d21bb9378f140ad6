package delivery

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// dlqRecord is the dead letter of an item: its envelope unchanged, the
// failure in headers (pkg/dlq), and the redrive count it carried.
func (f *flowRuntime) dlqRecord(it *item, c *flowConfig) *kgo.Record {
	r := it.result()
	fail := dlq.Failure{
		Flow:            f.name,
		Stage:           "deliver",
		Err:             r.Err,
		Attempts:        int(it.attempts),
		Status:          r.Status,
		Response:        r.Response,
		FirstAttempt:    it.firstAttempt(),
		SourceTopic:     f.topic,
		SourcePartition: it.lane.p.id,
		SourceOffset:    it.offset,
	}
	if it.att != nil {
		fail.Time = it.att.last
	}
	if c != nil {
		fail.FlowVersion = c.version
	}
	// A log line per dead letter, at most about 20 a second per flow in a
	// storm (each dead letter is in the topic regardless).
	f.dlqLog.Do(func() { f.logDeadLetter(it) })
	h := fail.Headers()
	for _, oh := range it.headers {
		if oh.Key == dlq.HeaderRedriven {
			h = append(h, oh)
		}
	}
	return &kgo.Record{Topic: kafka.DLQTopic(f.name), Key: it.key, Value: it.value, Headers: h}
}

// logDeadLetter writes one line for a dead letter, so an operator finds an
// event by its id or trace id in the logs as well as in the topic.
func (f *flowRuntime) logDeadLetter(it *item) {
	r := it.result()
	fields := []zap.Field{zap.String("topic", f.topic), zap.Int32("partition", it.lane.p.id),
		zap.Int64("offset", it.offset), zap.String("status", r.Status), zap.Int32("attempts", it.attempts), zap.String("error", r.Err)}
	if it.ev != nil {
		fields = append(fields, zap.String("event_id", it.ev.ID), telemetry.TraceField(telemetry.EventContext(context.Background(), it.ev)))
	}
	f.log.Warn("event dead-lettered", fields...)
}

// ensureDLQ creates the flow's dead-letter topic if it does not exist yet
// (control normally creates it with the flow), with as many partitions as
// the delivery topic.
func (f *flowRuntime) ensureDLQ(ctx context.Context) {
	f.mu.Lock()
	ok := f.dlqEnsured
	f.mu.Unlock()
	if ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(f.d.cl)
	parts := int32(1)
	if td, err := adm.ListTopics(ctx, f.topic); err == nil {
		if d, ok := td[f.topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
			parts = int32(len(d.Partitions))
		}
	}
	err := f.d.kcfg.EnsureTopics(ctx, f.d.cl, kafka.TopicSpec{
		Name: kafka.DLQTopic(f.name), Partitions: parts, Replication: -1,
		Configs: map[string]*string{"retention.ms": kadm.StringPtr("2592000000")}, // 30 days
	})
	if err != nil {
		f.log.Warn("cannot make sure the dead-letter topic exists", zap.String("topic", kafka.DLQTopic(f.name)), zap.Error(err))
		return
	}
	f.mu.Lock()
	f.dlqEnsured = true
	f.mu.Unlock()
}

// deadLetter writes dead letters of a non-transactional destination; each
// item is done (its offset committable) once its write is acknowledged.
func (f *flowRuntime) deadLetter(items []*item, fm *flowMetrics) {
	f.ensureDLQ(f.ctx)
	f.mu.Lock()
	c := f.conf
	recs := make([]*kgo.Record, len(items))
	for i, it := range items {
		recs[i] = f.dlqRecord(it, c)
	}
	f.mu.Unlock()
	for i, rec := range recs {
		f.produceDLQ(rec, items[i], fm)
	}
}

func (f *flowRuntime) produceDLQ(rec *kgo.Record, it *item, fm *flowMetrics) {
	f.d.cl.Produce(f.ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil && f.ctx.Err() == nil {
			// Not acknowledged: the offset stays uncommitted, so the
			// partition waits here. Try again; nothing is dropped.
			f.log.Error("dead letter not written; retrying", zap.String("topic", rec.Topic),
				zap.Int32("partition", it.lane.p.id), zap.Int64("offset", it.offset), zap.Error(err))
			time.AfterFunc(time.Second, func() { f.produceDLQ(rec, it, fm) })
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.dlqPending--
		p := it.lane.p
		if p.gone {
			return
		}
		p.inFlight--
		if err != nil {
			return // stopping: the event will be delivered again
		}
		it.done = true
		f.countDeadLetterLocked(fm)
		f.releaseLocked(p)
		f.poke()
	})
}

// finishTxn applies the outcomes of a batch of a transactional destination:
// what was delivered and what is dead-lettered commits in one transaction
// with the offsets they allow, or nothing does.
func (f *flowRuntime) finishTxn(b *batch, results []destination.Result) {
	now := time.Now()
	eff := &effects{fm: b.conf.dest.m}
	f.mu.Lock()
	dec := f.decideLocked(b, results, now, eff)
	var dead []*kgo.Record
	finishing := false
	for i, it := range b.items {
		switch dec[i].act {
		case actDone:
			it.finishing, finishing = true, true
		case actDLQ:
			it.finishing, it.dead, finishing = true, true, true
			dead = append(dead, f.dlqRecord(it, b.conf))
		}
	}
	// The offsets carry the partitions' counts as they will be once this
	// transaction commits (see stats.CommitMetadata).
	var offsets map[string]map[int32]destination.Offset
	if finishing {
		offsets = map[string]map[int32]destination.Offset{}
		for _, p := range f.parts {
			if p.gone {
				continue
			}
			if wm, epoch, c := p.wmIfFinishing(); wm >= 0 && wm > p.committed {
				if offsets[f.topic] == nil {
					offsets[f.topic] = map[int32]destination.Offset{}
				}
				offsets[f.topic][p.id] = destination.Offset{
					EpochOffset: kgo.EpochOffset{Epoch: epoch, Offset: wm},
					Metadata:    stats.CommitMetadata(c),
				}
			}
		}
	}
	for _, it := range b.items {
		it.finishing = false
	}
	member := f.d.member()
	f.mu.Unlock()

	var err error
	// The commit must not be cut off halfway (its outcome would be
	// unknown), so it does not use the runtime's context.
	ctx, cancel := context.WithTimeout(context.Background(), b.conf.pol.timeout+10*time.Second)
	if finishing {
		if len(dead) > 0 {
			f.ensureDLQ(ctx)
		}
		err = b.conf.dest.txn.Commit(ctx, dead, offsets, member)
	} else if aerr := b.conf.dest.txn.Abort(ctx); aerr != nil {
		f.log.Warn("aborting a transaction with nothing to commit failed", zap.Error(aerr))
	}
	cancel()

	f.mu.Lock()
	defer f.publish(eff)
	defer f.mu.Unlock()
	if err != nil {
		f.log.Warn("transaction not committed; the batch will be attempted again", zap.Int("events", len(b.items)), zap.Error(err))
		f.noteErrorLocked(eff, "deliver", "transaction: "+err.Error(), "")
		f.d.m.commits.WithLabelValues("failed").Inc()
		for i := range dec {
			if dec[i].act == actDone || dec[i].act == actDLQ {
				dec[i] = decision{act: actRetry, delay: b.conf.pol.backoff(1)}
				b.items[i].dead = false
			}
		}
	} else if finishing {
		f.d.m.commits.WithLabelValues("ok").Inc()
		for _, ps := range offsets {
			for id, o := range ps {
				if p := f.parts[id]; p != nil && o.Offset > p.committed {
					p.committed = o.Offset
				}
			}
		}
	}
	f.applyLocked(b, dec, true, eff)
	f.releaseBatchLocked(b)
}

// commitMarkers commits, for a flow with a transactional destination, the
// offsets of partitions whose only records after the committed offset are
// transaction markers. Such markers arrive after the flow's last
// transaction when a fetch ended just before them, or end an aborted
// transaction; without this, a drained partition would show a lag until
// the next event. There is nothing to write, and a transaction that only
// commits offsets is not one the producer client completes, so this is a
// plain offset commit of the consumer group. It runs while no batch is in
// flight and holds dispatching until it is done: every transactional
// commit of the flow's offsets happened before it (with lower offsets) or
// starts after it, so the committed offsets never go backwards.
func (f *flowRuntime) commitMarkers(ctx context.Context) error {
	f.mu.Lock()
	c := f.conf
	if c == nil || c.dest == nil || c.dest.txn == nil || f.stopped || f.committingMarkers || f.inFlightBatches > 0 {
		f.mu.Unlock()
		return nil
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	meta := map[string]map[int32]string{}
	for _, p := range f.parts {
		if p.gone || p.revoking || p.wm < 0 || p.wm <= p.committed || p.buffered() > 0 {
			continue
		}
		f.addOffsetLocked(p, offsets, meta)
	}
	if len(offsets) == 0 {
		f.mu.Unlock()
		return nil
	}
	f.committingMarkers = true
	f.mu.Unlock()

	f.d.commitMu.Lock()
	var err error
	if !f.d.noCommits.Load() {
		err = f.d.commitOffsets(ctx, []*flowRuntime{f}, offsets, meta)
	}
	f.d.commitMu.Unlock()

	f.mu.Lock()
	f.committingMarkers = false
	f.mu.Unlock()
	f.poke()
	return err
}
