// Package kafkadest delivers events to a Kafka topic.
//
// On Samsa's own cluster (the destination names no brokers) delivery is
// exactly-once: a batch's records, its dead letters and the consumed
// delivery-topic offsets commit in one transaction, fenced by the consumer
// group generation (KIP-447), so that a batch is either entirely visible to
// read_committed readers with its offsets committed, or not at all, also
// across crashes and rebalances.
//
// On another cluster no transaction can span both clusters. There the
// producer is idempotent (no duplicates from its own retries) and delivery
// is at-least-once: a crash between the write and the offset commit writes
// the batch again. Every record carries the event id in the header
// samsa-event-id for consumers that deduplicate.
package kafkadest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// HeaderEventID carries the event id on every record written.
const HeaderEventID = "samsa-event-id"

// Formats of the record value.
const (
	// FormatEnvelope writes the event's envelope, unchanged (Avro
	// single-object encoding, as in every Samsa topic).
	FormatEnvelope = "envelope"
	// FormatJSON writes the payload; the CloudEvents attributes go into
	// ce_* headers (the CloudEvents Kafka binding) and content-type.
	FormatJSON = "json"
	// FormatAvro writes the envelope as Avro single-object encoding, which
	// is what the envelope is; it names the intent for readers that want
	// Avro (with a schema registry configured it would be the Confluent
	// wire format).
	FormatAvro = "avro"
)

// Config is one Kafka destination.
type Config struct {
	Topic  string
	Format string
	// Own is the deliverer's cluster. When Remote is nil the destination
	// writes there, transactionally.
	Own *kafka.Config
	// Remote, when set, is another cluster: written idempotently,
	// at-least-once.
	Remote *Remote
	// TransactionalID of the transactional producer (own cluster). It
	// must be unique per flow and replica and stable across restarts.
	TransactionalID string
	// Timeout bounds one batch. Default 10s.
	Timeout time.Duration
	Log     *zap.Logger
}

// Remote is another cluster and how to reach it. SASLPassword and the TLS
// key must be opened already.
type Remote struct {
	Brokers       []string
	TLS           *tls.Config
	SASLMechanism string
	SASLUsername  string
	SASLPassword  string
}

// Destination is a Kafka destination.
type Destination struct {
	cfg Config
	txn bool
	log *zap.Logger

	mu     sync.Mutex // one transaction at a time; guards the fields below
	cl     *kgo.Client
	inTxn  bool
	topics map[string]kadm.TopicID
}

// New validates cfg and returns a destination; it connects lazily.
func New(cfg Config) (*Destination, error) {
	if err := kafka.ValidateTopic(cfg.Topic); err != nil {
		return nil, fmt.Errorf("kafka destination: %w", err)
	}
	switch cfg.Format {
	case "":
		cfg.Format = FormatEnvelope
	case FormatEnvelope, FormatJSON, FormatAvro:
	default:
		return nil, fmt.Errorf("kafka destination: format %q: want envelope, json or avro", cfg.Format)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	d := &Destination{cfg: cfg, log: cfg.Log, topics: map[string]kadm.TopicID{}}
	if cfg.Remote == nil {
		if cfg.Own == nil {
			return nil, errors.New("kafka destination: no cluster configured")
		}
		if cfg.TransactionalID == "" {
			return nil, errors.New("kafka destination: a transactional id is required on the own cluster")
		}
		d.txn = true
		// Initialise the producer id now: that fences a previous
		// incarnation of this replica (same transactional id) and aborts
		// its open transaction, whose pending offsets would otherwise hold
		// up the consumer until the transaction times out.
		go d.init()
	} else {
		if len(cfg.Remote.Brokers) == 0 {
			return nil, errors.New("kafka destination: remote cluster without brokers")
		}
		switch strings.ToUpper(cfg.Remote.SASLMechanism) {
		case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("kafka destination: sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", cfg.Remote.SASLMechanism)
		}
	}
	return d, nil
}

// Transactional reports whether the destination commits offsets in its
// transactions (own cluster).
func (d *Destination) Transactional() bool { return d.txn }

// Capabilities: large ordered batches; one transaction at a time on the
// own cluster.
func (d *Destination) Capabilities() destination.Capabilities {
	c := destination.Capabilities{MaxBatch: 5000, OrderedBatch: true}
	if d.txn {
		c.MaxConcurrency = 1
	}
	return c
}

func (d *Destination) init() {
	d.mu.Lock()
	defer d.mu.Unlock()
	cl, err := d.client()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		d.log.Warn("initialising the transactional producer failed; retrying with the first batch", zap.Error(err))
	}
}

func (d *Destination) client() (*kgo.Client, error) {
	if d.cl != nil {
		return d.cl, nil
	}
	var (
		cl  *kgo.Client
		err error
	)
	if d.txn {
		cl, err = d.cfg.Own.NewClient(d.log,
			kgo.TransactionalID(d.cfg.TransactionalID),
			// Short, so that after a crash an open transaction of a
			// replica that does not come back stops holding readers up
			// soon; a replica that does come back aborts it at once.
			kgo.TransactionTimeout(30*time.Second),
			kgo.ProducerBatchMaxBytes(4<<20),
			// Deliver produces a whole batch and waits for it: lingering
			// would only delay every batch (franz-go's default is 10 ms).
			kgo.ProducerLinger(0),
		)
	} else {
		r := d.cfg.Remote
		opts := []kgo.Opt{
			kgo.SeedBrokers(r.Brokers...),
			kgo.DialTimeout(10 * time.Second),
			kgo.WithLogger(kzap.New(d.log.Named("kafka-destination"), kzap.Level(kgo.LogLevelWarn))),
			kgo.RecordDeliveryTimeout(d.cfg.Timeout),
			kgo.ProducerBatchMaxBytes(4 << 20),
			kgo.ProducerLinger(0), // as above
		}
		if r.TLS != nil {
			opts = append(opts, kgo.DialTLSConfig(r.TLS))
		}
		switch strings.ToUpper(r.SASLMechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: r.SASLUsername, Pass: r.SASLPassword}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: r.SASLUsername, Pass: r.SASLPassword}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: r.SASLUsername, Pass: r.SASLPassword}.AsSha512Mechanism()))
		}
		cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka destination: client: %w", err)
	}
	d.cl = cl
	return cl, nil
}

// reset drops a client whose transactional state may be broken; the next
// call makes a new one (which fences the old producer's transaction).
func (d *Destination) reset() {
	if d.cl != nil {
		d.cl.Close()
		d.cl = nil
	}
	d.inTxn = false
}

func (d *Destination) record(it *destination.Item) *kgo.Record {
	ev := it.Event
	r := &kgo.Record{Topic: d.cfg.Topic, Headers: make([]kgo.RecordHeader, 0, 8)}
	if ev.Key != "" {
		r.Key = []byte(ev.Key)
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderEventID, Value: []byte(ev.ID)})
	switch d.cfg.Format {
	case FormatJSON:
		r.Value = ev.Data
		ct := ev.ContentType
		if ct == "" {
			ct = "application/json"
		}
		add := func(k, v string) {
			if v != "" {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
		}
		add("content-type", ct)
		add("ce_specversion", "1.0")
		add("ce_id", ev.ID)
		add("ce_source", ev.Source)
		add("ce_type", ev.Type)
		add("ce_subject", ev.Subject)
		if !ev.Time.IsZero() {
			add("ce_time", ev.Time.UTC().Format(time.RFC3339Nano))
		}
	default:
		r.Value = it.Envelope
	}
	return r
}

// Deliver writes the batch. On the own cluster the records stay in an
// open transaction that Commit (or Abort) ends; if any record fails, the
// transaction is aborted at once: the failed records are reported, the
// others requeued.
func (d *Destination) Deliver(ctx context.Context, items []destination.Item, results []destination.Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cl, err := d.client()
	if err != nil {
		fill(results, destination.Result{Class: destination.Retryable, Status: "kafka", Err: err.Error()})
		return
	}
	if d.txn && !d.inTxn {
		if err := cl.BeginTransaction(); err != nil {
			d.reset()
			fill(results, destination.Result{Class: destination.Retryable, Status: "kafka", Err: "begin transaction: " + err.Error()})
			return
		}
		d.inTxn = true
	}
	var wg sync.WaitGroup
	errs := make([]error, len(items))
	wg.Add(len(items))
	for i := range items {
		i := i
		cl.Produce(ctx, d.record(&items[i]), func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err == nil {
			results[i] = destination.Result{Class: destination.Success}
			continue
		}
		failed = true
		results[i] = classify(ctx, err)
		if results[i].Class == destination.Permanent && len(items) > 1 {
			// A broker rejects a record batch as a whole: which of its
			// events is at fault shows only when they go one by one.
			results[i] = destination.Result{Class: destination.Requeue, Alone: true, Status: results[i].Status, Err: results[i].Err}
		}
	}
	if failed && d.txn {
		// Nothing of a failed transaction can commit: the records that
		// made it are undone with the rest.
		d.abortLocked()
		for i := range results {
			if results[i].Class == destination.Success {
				results[i] = destination.Result{Class: destination.Requeue, Status: "kafka", Err: "transaction aborted because of another event"}
			}
		}
	}
}

func fill(results []destination.Result, r destination.Result) {
	for i := range results {
		results[i] = r
	}
}

// permanent errors concern one record and do not go away by retrying it.
var permanent = []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage, kerr.InvalidTimestamp}

func classify(ctx context.Context, err error) destination.Result {
	if ctx.Err() == context.Canceled {
		return destination.Result{Class: destination.Requeue, Status: "canceled", Err: err.Error()}
	}
	for _, p := range permanent {
		if errors.Is(err, p) {
			return destination.Result{Class: destination.Permanent, Status: "kafka", Err: err.Error()}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) {
		return destination.Result{Class: destination.Retryable, Status: "timeout", Err: err.Error()}
	}
	return destination.Result{Class: destination.Retryable, Status: "kafka", Err: err.Error()}
}

// Commit writes the dead letters into the open transaction (or a new one),
// commits the consumed offsets for the group member in it, and commits.
func (d *Destination) Commit(ctx context.Context, dead []*kgo.Record, offsets map[string]map[int32]destination.Offset, m destination.Member) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.txn {
		return errors.New("kafka destination: not transactional")
	}
	cl, err := d.client()
	if err != nil {
		return err
	}
	if !d.inTxn {
		if err := cl.BeginTransaction(); err != nil {
			d.reset()
			return fmt.Errorf("begin transaction: %w", err)
		}
		d.inTxn = true
	}
	if len(dead) > 0 {
		if err := cl.ProduceSync(ctx, dead...).FirstErr(); err != nil {
			d.abortLocked()
			return fmt.Errorf("write dead letters: %w", err)
		}
	}
	if err := d.commitOffsetsLocked(ctx, cl, offsets, m); err != nil {
		d.abortLocked()
		return err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		d.abortLocked()
		return fmt.Errorf("commit transaction: %w", err)
	}
	d.inTxn = false
	return nil
}

// Abort discards the open transaction.
func (d *Destination) Abort(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.abortLocked()
	return nil
}

func (d *Destination) abortLocked() {
	if !d.inTxn || d.cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	err := d.cl.AbortBufferedRecords(ctx)
	if err == nil {
		err = d.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	d.inTxn = false
	if err != nil {
		// The producer's state is unknown: start over with a new one,
		// whose initialisation aborts whatever is left open.
		d.log.Warn("aborting a transaction failed; recreating the producer", zap.Error(err))
		d.reset()
	}
}

// commitOffsetsLocked adds the consumed offsets to the open transaction,
// fenced by the group member's generation.
func (d *Destination) commitOffsetsLocked(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]destination.Offset, m destination.Member) error {
	if len(offsets) == 0 {
		return nil
	}
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = d.cfg.TransactionalID, id, epoch, m.Group
	addResp, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("add offsets to transaction: %w", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = d.cfg.TransactionalID, m.Group, id, epoch
	req.Generation, req.MemberID = m.Generation, m.MemberID
	for t, ps := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = t
		rt.TopicID, err = d.topicID(ctx, cl, t)
		if err != nil {
			return err
		}
		for p, o := range ps {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, o.Offset, o.Epoch
			if o.Metadata != "" {
				rp.Metadata = kmsg.StringPtr(o.Metadata)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("commit offsets in transaction: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit offsets in transaction: partition %d: %w", p.Partition, err)
			}
		}
	}
	return nil
}

// topicID is needed by newer TxnOffsetCommit versions, which name topics by id.
func (d *Destination) topicID(ctx context.Context, cl *kgo.Client, topic string) (kadm.TopicID, error) {
	if id, ok := d.topics[topic]; ok {
		return id, nil
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicID{}, fmt.Errorf("topic id of %s: %w", topic, err)
	}
	t, ok := td[topic]
	if !ok || t.Err != nil {
		return kadm.TopicID{}, fmt.Errorf("topic id of %s: %v", topic, t.Err)
	}
	d.topics[topic] = t.ID
	return t.ID, nil
}

// Close aborts an open transaction and closes the client.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.abortLocked()
	if d.cl != nil {
		d.cl.Close()
		d.cl = nil
	}
	return nil
}
