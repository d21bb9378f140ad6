package flow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// WriterTransactionalID is shared by every control replica: that is what
// makes their writes take turns.
const WriterTransactionalID = "samsa-control-flows-writer"

// transactionalID is the id of the writers of topic. Writers of different
// topics (tests, side-by-side deployments on one cluster) must not fence
// each other, so any topic but samsa.flows gets an id of its own.
func transactionalID(topic string) string {
	if topic == kafka.FlowsTopic {
		return WriterTransactionalID
	}
	return WriterTransactionalID + "." + topic
}

// Writer is the only way resources are written to samsa.flows. Several
// control replicas may each hold one; their writes still form one order in
// which every compare-and-set holds.
//
// How: all writers share one transactional id. Initialising a producer id
// for it (which a Writer does when it starts and again after it was fenced)
// fences every other writer and completes or aborts their open transaction.
// A Writer then reads the topic's last stable offset, waits until its Store
// has applied everything before it, checks the expected version against
// that state, and writes in a transaction. If another replica initialised
// since, the commit fails with a fencing error and the Writer starts over
// with a new producer id. So a write commits only if nobody else wrote
// between its check and its commit: every write ever committed was checked
// against every write committed before it.
//
// Writes are rare; the price (a transaction per write, a new producer id
// when replicas alternate) is a few milliseconds.
type Writer struct {
	cfg   *kafka.Config
	log   *zap.Logger
	store *Store

	mu sync.Mutex // one write at a time from this replica
	cl *kgo.Client
}

// NewWriter returns a writer that checks versions against store, which must
// be running on the same topic.
func NewWriter(cfg *kafka.Config, store *Store, log *zap.Logger) *Writer {
	return &Writer{cfg: cfg, store: store, log: log}
}

// Mutation decides, given the current state, the record to write: the new
// value (nil for a tombstone) under key. Returning an error aborts the
// write with that error.
type Mutation func(snap *Snapshot) (key string, value []byte, err error)

// Write applies a mutation atomically with respect to every other writer and
// returns the new version (see VersionOf) once the local Store has
// applied it.
func (w *Writer) Write(ctx context.Context, m Mutation) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		if attempt > 0 {
			// Two replicas writing at once fence each other; a random wait
			// that grows with each attempt lets one of them finish first.
			wait := time.Duration(rand.Int64N(int64(20*time.Millisecond) << min(attempt, 5)))
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("flow: write: %w", ctx.Err())
			case <-time.After(wait):
			}
		}
		v, err := w.writeOnce(ctx, m)
		if err == nil {
			return v, nil
		}
		var te *txnError
		if !errors.As(err, &te) || ctx.Err() != nil {
			return 0, err
		}
		// Most likely another replica fenced us between check and commit;
		// whatever it was, the transaction did not commit under our
		// producer id, so start over with a new one and check again.
		w.log.Info("flows write transaction failed; retrying with a new producer id", zap.Error(err))
		w.reset()
		lastErr = err
	}
	return 0, fmt.Errorf("flow: write kept being fenced by other writers: %w", lastErr)
}

func (w *Writer) writeOnce(ctx context.Context, m Mutation) (int64, error) {
	cl, err := w.client(ctx)
	if err != nil {
		return 0, err
	}
	select {
	case <-w.store.Ready():
	case <-ctx.Done():
		return 0, ErrNotReady
	}
	if err := w.store.CatchUp(ctx); err != nil {
		return 0, err
	}
	key, value, err := m(w.store.Snapshot())
	if err != nil {
		return 0, err
	}
	if err := cl.BeginTransaction(); err != nil {
		return 0, &txnError{fmt.Errorf("flow: begin transaction: %w", err)}
	}
	rec := &kgo.Record{Topic: w.store.topic, Partition: 0, Key: []byte(key), Value: value}
	res := cl.ProduceSync(ctx, rec)
	if err := res.FirstErr(); err != nil {
		_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		return 0, &txnError{fmt.Errorf("flow: write %s: %w", key, err)}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return 0, &txnError{fmt.Errorf("flow: commit %s: %w", key, err)}
	}
	if err := w.store.WaitFor(ctx, rec.Offset+1); err != nil {
		return 0, err
	}
	return VersionOf(rec.Offset), nil
}

func (w *Writer) client(ctx context.Context) (*kgo.Client, error) {
	if w.cl != nil {
		return w.cl, nil
	}
	cl, err := w.cfg.NewClient(w.log,
		kgo.TransactionalID(transactionalID(w.store.topic)),
		kgo.DefaultProduceTopic(w.store.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return nil, err
	}
	// Initialising the producer id is the fence: from here on no other
	// writer can commit what it checked before now.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("flow: init writer producer id: %w", err)
	}
	w.cl = cl
	return cl, nil
}

func (w *Writer) reset() {
	if w.cl != nil {
		w.cl.Close()
		w.cl = nil
	}
}

// Close releases the writer's client.
func (w *Writer) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reset()
}

// txnError is a failure of the transaction itself (fenced, coordinator
// moved, broker gone), after which the write is tried again.
type txnError struct{ err error }

func (e *txnError) Error() string { return e.err.Error() }
func (e *txnError) Unwrap() error { return e.err }

// VersionOf is the resource version of the record at offset: offset+1, so
// that version 0 can mean "whatever is there".
func VersionOf(offset int64) int64 { return offset + 1 }
