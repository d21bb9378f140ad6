package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// topics creates the topics of sources and flows before they are written
// to samsa.flows (flow.Provisioner), so the data plane never creates any.
type topics struct {
	kcfg         *kafka.Config
	cl           *kgo.Client
	dlqRetention time.Duration
}

var _ flow.Provisioner = (*topics)(nil)

// ProvisionSource creates samsa.src.<name> with the source's partitions and
// retention, and keeps the retention of an existing one in line with the
// source. A source reading another topic gets nothing: that topic is not
// Samsa's.
func (t *topics) ProvisionSource(ctx context.Context, src *samsav1.Source) error {
	if src.GetTopic() != kafka.SourceTopic(src.GetName()) {
		return nil
	}
	retention, err := retentionMs(src.GetRetention())
	if err != nil {
		return err
	}
	spec := kafka.TopicSpec{Name: src.GetTopic(), Partitions: src.GetPartitions(), Replication: -1,
		Configs: map[string]*string{"retention.ms": kadm.StringPtr(retention)}}
	if err := t.kcfg.EnsureTopics(ctx, t.cl, spec); err != nil {
		return err
	}
	if err := t.await(ctx, spec.Name); err != nil {
		return err
	}
	// The topic may have existed with another retention (an updated source).
	resp, err := kadm.NewClient(t.cl).AlterTopicConfigs(ctx,
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr(retention)}}, spec.Name)
	if err == nil {
		_, err = resp.On(spec.Name, nil)
	}
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", spec.Name, err)
	}
	return nil
}

// ProvisionFlow creates samsa.out.<flow> and samsa.dlq.<flow>, with the
// flow's partitions or else as many as the source's topic has (so keys keep
// their relative spread), and a long retention for dead letters.
func (t *topics) ProvisionFlow(ctx context.Context, f *samsav1.Flow, src *samsav1.Source) error {
	parts := f.GetPartitions()
	if parts == 0 {
		parts = t.partitionsOf(ctx, src.GetTopic())
	}
	if parts == 0 {
		parts = src.GetPartitions()
	}
	if parts == 0 {
		parts = flow.DefaultSourcePartitions
	}
	dlqMs := strconv.FormatInt(t.dlqRetention.Milliseconds(), 10)
	err := t.kcfg.EnsureTopics(ctx, t.cl,
		kafka.TopicSpec{Name: kafka.DeliveryTopic(f.GetName()), Partitions: parts, Replication: -1},
		kafka.TopicSpec{Name: kafka.DLQTopic(f.GetName()), Partitions: parts, Replication: -1,
			Configs: map[string]*string{"retention.ms": kadm.StringPtr(dlqMs)}},
	)
	if err != nil {
		return err
	}
	return t.await(ctx, kafka.DeliveryTopic(f.GetName()), kafka.DLQTopic(f.GetName()))
}

// awaitTimeout bounds the wait for new topics to show in metadata.
const awaitTimeout = 10 * time.Second

// await waits until the brokers' metadata shows every topic, so that a
// service that sees the resource right after it is written finds its
// topics.
func (t *topics) await(ctx context.Context, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, awaitTimeout)
	defer cancel()
	adm := kadm.NewClient(t.cl)
	for {
		tds, err := adm.ListTopics(ctx, names...)
		if err == nil {
			missing := ""
			for _, n := range names {
				if td, ok := tds[n]; !ok || td.Err != nil || len(td.Partitions) == 0 {
					missing = n
					break
				}
			}
			if missing == "" {
				return nil
			}
			err = fmt.Errorf("topic %s not in the metadata yet", missing)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for new topics: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// partitionsOf returns the partition count of topic, 0 if unknown.
func (t *topics) partitionsOf(ctx context.Context, topic string) int32 {
	if topic == "" {
		return 0
	}
	tds, err := kadm.NewClient(t.cl).ListTopics(ctx, topic)
	if err != nil {
		return 0
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return 0
	}
	return int32(len(td.Partitions))
}

func retentionMs(d string) (string, error) {
	if d == "" {
		d = flow.DefaultSourceRetention
	}
	v, err := time.ParseDuration(d)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v.Milliseconds(), 10), nil
}
