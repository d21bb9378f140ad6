package pipeline

import "github.com/twmb/franz-go/pkg/kgo"

// outputPartitioner places keyed records exactly as Kafka's default
// partitioner does (murmur2 of the key), so that events with the same key
// stay in order in one partition, and keyless records in the partition of
// the same number as their source partition (modulo the partition count),
// which the pipeline passes in Record.Partition: keyless events of one
// source partition keep their order too.
func outputPartitioner() kgo.Partitioner {
	return keyOrSourcePartitioner{kgo.StickyKeyPartitioner(nil)}
}

type keyOrSourcePartitioner struct{ keyed kgo.Partitioner }

func (p keyOrSourcePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{p.keyed.ForTopic(topic)}
}

type topicPartitioner struct{ keyed kgo.TopicPartitioner }

func (topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if len(r.Key) == 0 {
		return int(r.Partition) % n
	}
	return p.keyed.Partition(r, n)
}
