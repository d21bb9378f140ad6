package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fillTopic produces n records of about size bytes to topic with an
// idempotent producer (acks=all) and waits for every acknowledgement.
func fillTopic(ctx context.Context, brokers, topic string, n, size int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(50000))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, size)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	errc := make(chan error, 1)
	for i := range n {
		key := fmt.Appendf(nil, "k%d", i%1000)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return fmt.Errorf("bench: fill %s: %w", topic, err)
	default:
		return nil
	}
}

// rawLoop is the ceiling: the simplest correct exactly-once
// consume-transform-produce loop with franz-go (a GroupTransactSession
// copying every record of in to out unchanged, committing the consumed
// offsets in each transaction), on the same broker as Samsa. It returns
// the rate from the end of the first transaction to the end of the last,
// so that joining the group is not counted.
func rawLoop(ctx context.Context, brokers, in, out string, n int) (float64, error) {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(brokers),
		kgo.ConsumerGroup("bench-ceiling-"+in), kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.TransactionalID("bench-ceiling-"+in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	var done, atFirst int
	var first time.Time
	for done < n {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("bench: raw loop: %d of %d: %w", done, n, err)
		}
		fs := sess.PollRecords(ctx, 10000)
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return 0, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return 0, err
		}
		if committed {
			done += fs.NumRecords()
			if first.IsZero() {
				first, atFirst = time.Now(), done
			}
		}
	}
	return float64(done-atFirst) / time.Since(first).Seconds(), nil
}

// createTopics creates topics with the given partitions (replication 1).
func createTopics(ctx context.Context, brokers string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		return err
	}
	return resp.Error()
}
