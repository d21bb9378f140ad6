package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/script"
)

// RedriveGroup is the consumer group whose committed offsets mark how far a
// flow's dead-letter topic has been redriven. No consumer joins it; only
// Redrive commits its offsets.
func RedriveGroup(flow string) string { return "samsa-redrive." + flow }

// RedriveOptions select the dead letters to send back.
type RedriveOptions struct {
	// Filter is a boolean expression in the transform language over the
	// dead-lettered event (e.g. `event.type == "order.created"`); empty
	// selects every event.
	Filter string
	// Since and Until bound the time the events were dead-lettered
	// (Since inclusive, Until exclusive); zero means unbounded.
	Since, Until time.Time
}

// Progress of a redrive.
type Progress struct {
	// Scanned dead letters so far, of Total (the dead letters not yet
	// redriven when the redrive started).
	Scanned, Total int64
	// Redriven of the scanned ones; the others did not match.
	Redriven int64
	Done     bool
}

// ErrInvalidFilter wraps a filter that does not compile.
var ErrInvalidFilter = errors.New("invalid redrive filter")

// chunk is how many dead letters one redrive transaction handles.
const chunk = 1000

// Redrive sends dead letters of flow back to its delivery topic, where the
// deliverer delivers them again (they keep their event ids, so receivers
// that deduplicate see the same webhook-id). cl is any client of the
// cluster; Redrive builds its own clients from its options.
//
// Semantics. Redrive reads samsa.dlq.<flow> (read_committed) from the
// position of the group RedriveGroup(flow) up to the end the topic had when
// the call started. Every record it reads is moved: one that matches the
// options is written to samsa.out.<flow> with the header samsa-redriven
// (the number of times the event was redriven) and without the dead-letter
// headers; one that does not match is written again at the end of the
// dead-letter topic, unchanged (its failure time included, so a later
// redrive with other options still selects it by time). The writes and the
// group's new position commit in one transaction per chunk of records, so
// each dead letter is redriven or kept exactly once, even if the call is
// interrupted; a second redrive never sends the same dead letter again,
// and the records before the group's position are history. Concurrent
// redrives of one flow fence each other (they share a transactional id):
// the older one fails.
//
// progress, when not nil, is called after every chunk and once with Done
// set at the end.
func Redrive(ctx context.Context, cl *kgo.Client, flow string, opts RedriveOptions, progress func(Progress)) error {
	if err := kafka.ValidateName(flow); err != nil {
		return fmt.Errorf("dlq: redrive: %w", err)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	var prog *script.Program
	if strings.TrimSpace(opts.Filter) != "" {
		p, err := script.Compile(opts.Filter, "")
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidFilter, err)
		}
		prog = p
	}
	dlqTopic, outTopic, group := kafka.DLQTopic(flow), kafka.DeliveryTopic(flow), RedriveGroup(flow)
	start, end, err := positions(ctx, kadm.NewClient(cl), dlqTopic, group)
	if err != nil {
		return err
	}
	var p Progress
	todo := map[int32]kgo.Offset{}
	for part, e := range end {
		if s := start[part]; e > s {
			p.Total += e - s
			todo[part] = kgo.NewOffset().At(s)
		}
	}
	progress(p)
	if len(todo) == 0 {
		p.Done = true
		progress(p)
		return nil
	}

	base := clientOpts(cl)
	cons, err := kgo.NewClient(append(base,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{dlqTopic: todo}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("dlq: redrive: consumer: %w", err)
	}
	defer cons.Close()
	txnID := "samsa-redrive." + flow
	prod, err := kgo.NewClient(append(base,
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(time.Minute),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)...)
	if err != nil {
		return fmt.Errorf("dlq: redrive: producer: %w", err)
	}
	defer prod.Close()

	remaining := map[int32]int64{}
	for part := range todo {
		remaining[part] = end[part]
	}
	var (
		batch    []*kgo.Record
		scanned  int64
		redriven int64
		offsets  = map[int32]kgo.EpochOffset{}
		written  = map[string]map[int32]int64{}
	)
	flush := func() error {
		if len(batch) == 0 {
			// Only transaction markers were read: nothing to write. A
			// transaction of offsets alone would not end cleanly, so the
			// position moves with the next chunk (or stays, harmlessly:
			// readers skip markers).
			offsets = map[int32]kgo.EpochOffset{}
			return nil
		}
		if err := commitChunk(ctx, prod, txnID, group, dlqTopic, batch, offsets, written); err != nil {
			return err
		}
		p.Scanned += scanned
		p.Redriven += redriven
		batch, scanned, redriven = batch[:0], 0, 0
		offsets = map[int32]kgo.EpochOffset{}
		progress(p)
		return nil
	}
	for len(remaining) > 0 {
		fs := cons.PollRecords(ctx, chunk)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dlq: redrive: %w", err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("dlq: redrive: fetch %s: %w", dlqTopic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			stop, ok := remaining[r.Partition]
			if !ok || r.Offset >= stop {
				return
			}
			offsets[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			if r.Offset+1 >= stop {
				delete(remaining, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			scanned++
			if matches(ctx, r, opts, prog) {
				redriven++
				batch = append(batch, redriveRecord(r, outTopic))
			} else {
				batch = append(batch, &kgo.Record{Topic: dlqTopic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp})
			}
		})
		if len(batch) >= chunk || len(remaining) == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// When Redrive returns, what it wrote is visible: a status read right
	// after it sees the new depth, and the deliverer the redriven events.
	waitVisible(ctx, kadm.NewClient(cl), written)
	p.Done = true
	progress(p)
	return nil
}

// commitChunk writes a chunk's records and the group's new position in one
// transaction.
func commitChunk(ctx context.Context, prod *kgo.Client, txnID, group, topic string, recs []*kgo.Record, offsets map[int32]kgo.EpochOffset, written map[string]map[int32]int64) error {
	if err := prod.BeginTransaction(); err != nil {
		return fmt.Errorf("dlq: redrive: begin transaction: %w", err)
	}
	abort := func(cause error) error {
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := prod.AbortBufferedRecords(actx); err == nil {
			_ = prod.EndTransaction(actx, kgo.TryAbort)
		}
		return fmt.Errorf("dlq: redrive: %w", cause)
	}
	res := prod.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return abort(fmt.Errorf("write: %w", err))
	}
	if err := txnCommitOffsets(ctx, prod, txnID, group, map[string]map[int32]kgo.EpochOffset{topic: offsets}); err != nil {
		return abort(err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return abort(fmt.Errorf("commit: %w", err))
	}
	for _, r := range res {
		if written[r.Record.Topic] == nil {
			written[r.Record.Topic] = map[int32]int64{}
		}
		if r.Record.Offset > written[r.Record.Topic][r.Record.Partition] {
			written[r.Record.Topic][r.Record.Partition] = r.Record.Offset
		}
	}
	return nil
}

func matches(ctx context.Context, r *kgo.Record, opts RedriveOptions, prog *script.Program) bool {
	if !opts.Since.IsZero() || !opts.Until.IsZero() {
		at := Parse(r.Headers).Time
		if at.IsZero() {
			at = r.Timestamp
		}
		if !opts.Since.IsZero() && at.Before(opts.Since) || !opts.Until.IsZero() && !at.Before(opts.Until) {
			return false
		}
	}
	if prog == nil {
		return true
	}
	ev, err := event.Decode(r.Value)
	if err != nil {
		return false // not an envelope: a filter cannot judge it
	}
	res, err := prog.Run(ctx, ev)
	return err == nil && res.Kept
}

// redriveRecord is a dead letter on its way back to the delivery topic:
// same key and value, the dead-letter headers dropped, samsa-redriven
// counting the redrives.
func redriveRecord(r *kgo.Record, topic string) *kgo.Record {
	n := 0
	var h []kgo.RecordHeader
	for _, x := range r.Headers {
		switch {
		case x.Key == HeaderRedriven:
			n, _ = strconv.Atoi(string(x.Value))
		case strings.HasPrefix(x.Key, "samsa-dlq-"):
		default:
			h = append(h, x)
		}
	}
	h = append(h, kgo.RecordHeader{Key: HeaderRedriven, Value: []byte(strconv.Itoa(n + 1))})
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: h}
}

// positions returns, per partition of the dead-letter topic, the group's
// position (or the log start) and the last stable offset. Retriable
// errors (a coordinator still loading, as on a fresh cluster) are retried.
func positions(ctx context.Context, adm *kadm.Client, topic, group string) (start, end map[int32]int64, err error) {
	var (
		ends, starts kadm.ListedOffsets
		committed    kadm.OffsetResponses
	)
	err = retry(ctx, func() error {
		var err error
		if ends, err = adm.ListCommittedOffsets(ctx, topic); err != nil {
			return fmt.Errorf("dlq: end offsets of %s: %w", topic, err)
		}
		if starts, err = adm.ListStartOffsets(ctx, topic); err != nil {
			return fmt.Errorf("dlq: start offsets of %s: %w", topic, err)
		}
		// Wait for offsets committed by a redrive transaction still being
		// completed, rather than read the previous ones.
		committed, err = adm.FetchOffsets(kadm.RequireStable(ctx), group)
		if errors.Is(err, kerr.GroupIDNotFound) {
			committed, err = nil, nil // never redriven
		}
		if err != nil {
			return fmt.Errorf("dlq: offsets of group %s: %w", group, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = o.Err
			return
		}
		end[o.Partition] = o.Offset
		s := int64(0)
		if so, ok := starts.Lookup(topic, o.Partition); ok && so.Err == nil {
			s = so.Offset
		}
		if c, ok := committed.Lookup(topic, o.Partition); ok && c.Err == nil && c.At > s {
			s = c.At
		}
		start[o.Partition] = s
	})
	if lerr != nil {
		return nil, nil, fmt.Errorf("dlq: end offsets of %s: %w", topic, lerr)
	}
	return start, end, nil
}

// retry runs fn until it succeeds, fails with an error Kafka does not call
// retriable, or ten attempts failed.
func retry(ctx context.Context, fn func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 10 || !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// waitVisible waits until read_committed readers can see the records
// written (the last offset written per topic and partition): a committed
// transaction's markers are written after the commit returns. It gives up
// quietly after ten seconds.
func waitVisible(ctx context.Context, adm *kadm.Client, written map[string]map[int32]int64) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topics := make([]string, 0, len(written))
	for t := range written {
		topics = append(topics, t)
	}
	for {
		lso, err := adm.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			visible := true
			for t, ps := range written {
				for p, off := range ps {
					if o, ok := lso.Lookup(t, p); !ok || o.Err != nil || o.Offset <= off {
						visible = false
					}
				}
			}
			if visible {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Depth returns how many dead letters of flow have not been redriven: the
// records of samsa.dlq.<flow> after the redrive group's position. They are
// counted rather than estimated from offsets, because transactional writers
// (the transformer, Kafka destinations, redrives) leave a marker per
// transaction that occupies an offset. cl is any client of the cluster.
func Depth(ctx context.Context, cl *kgo.Client, flow string) (int64, error) {
	topic, group := kafka.DLQTopic(flow), RedriveGroup(flow)
	start, end, err := positions(ctx, kadm.NewClient(cl), topic, group)
	if err != nil {
		return 0, err
	}
	var upper int64
	todo := map[int32]kgo.Offset{}
	for p, e := range end {
		if e > start[p] {
			upper += e - start[p]
			todo[p] = kgo.NewOffset().At(start[p])
		}
	}
	// Counting is a read of the not-yet-redriven dead letters, which
	// should be few; beyond 100000 offsets the difference is close enough.
	if upper == 0 || upper > 100000 {
		return upper, nil
	}
	return countRecords(ctx, cl, topic, todo, end)
}

func countRecords(ctx context.Context, base *kgo.Client, topic string, from map[int32]kgo.Offset, end map[int32]int64) (int64, error) {
	cl, err := kgo.NewClient(append(clientOpts(base),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return 0, fmt.Errorf("dlq: depth: %w", err)
	}
	defer cl.Close()
	remaining := map[int32]int64{}
	for p := range from {
		remaining[p] = end[p]
	}
	var n int64
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("dlq: depth: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			stop, ok := remaining[r.Partition]
			if !ok || r.Offset >= stop {
				return
			}
			if !r.Attrs.IsControl() {
				n++
			}
			if r.Offset+1 >= stop {
				delete(remaining, r.Partition)
			}
		})
	}
	return n, nil
}

// clientOpts keeps the connection options of cl (brokers, TLS, SASL,
// logger, ...) and drops its consumer, group and producer options, as the
// base of the clients Redrive builds.
func clientOpts(cl *kgo.Client) []kgo.Opt {
	var out []kgo.Opt
	for _, o := range cl.Opts() {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt, kgo.ProducerOpt:
			continue
		}
		out = append(out, o)
	}
	return out
}
