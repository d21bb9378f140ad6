package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicSpec describes a topic Samsa needs.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Replication of -1 means the Config's ReplicationFactor (or the
	// broker count when smaller).
	Replication int16
	Configs     map[string]*string
}

// FlowsTopicSpec is the compacted topic of sources and flows. One partition
// keeps a single total order of writes.
func FlowsTopicSpec() TopicSpec {
	return TopicSpec{Name: FlowsTopic, Partitions: 1, Replication: -1, Configs: map[string]*string{
		"cleanup.policy":        kadm.StringPtr("compact"),
		"min.compaction.lag.ms": kadm.StringPtr("60000"),
	}}
}

// StatsTopicSpec is the compacted topic of per-flow statistics.
func StatsTopicSpec() TopicSpec {
	return TopicSpec{Name: StatsTopic, Partitions: 1, Replication: -1, Configs: map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"),
		"segment.ms":     kadm.StringPtr("600000"),
	}}
}

// EnsureTopics creates the topics that do not exist yet and leaves existing
// ones alone (their partition counts and configs are the operator's).
func (c *Config) EnsureTopics(ctx context.Context, cl *kgo.Client, specs ...TopicSpec) error {
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("kafka: list brokers: %w", err)
	}
	rf := int16(c.ReplicationFactor)
	if rf <= 0 {
		rf = 3
	}
	if n := int16(len(brokers)); n > 0 && rf > n {
		rf = n
	}
	for _, s := range specs {
		if err := ValidateTopic(s.Name); err != nil {
			return err
		}
		repl := s.Replication
		if repl <= 0 {
			repl = rf
		}
		parts := s.Partitions
		if parts <= 0 {
			parts = 1
		}
		resp, err := adm.CreateTopic(ctx, parts, repl, s.Configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", s.Name, err)
		}
	}
	return nil
}
