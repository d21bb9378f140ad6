package delivery

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// Config is the deliverer's engine configuration (flags --consumer-group,
// --instance-id, --max-buffered-*, --commit-interval, --drain-timeout,
// --revoke-timeout, --session-timeout).
type Config struct {
	// Group is the consumer group over the delivery topics. Default
	// samsa-deliverer; tests use their own.
	Group string
	// InstanceID names this replica: it is part of the transactional ids
	// of Kafka destinations, so it must be unique among running replicas
	// and should stay the same across restarts (then a restarted replica
	// fences its predecessor's open transactions at once). Default: the
	// host name, which is the pod name on Kubernetes.
	InstanceID string
	// MaxBufferedPerPartition bounds the events held in memory for one
	// partition (waiting, in flight or retrying); fetching the partition
	// pauses when it is reached. Default 5000.
	MaxBufferedPerPartition int
	// MaxBufferedPerFlow bounds the events held for one flow across its
	// partitions. Default 20000: at 20,000 events/s, a second of work,
	// which keeps every lane busy while bounding the heap (the events'
	// records and decoded envelopes, about 1 KB each for small payloads).
	MaxBufferedPerFlow int
	// MaxBufferedBytes bounds the memory that buffered events hold across
	// every flow of the process: their records, decoded envelopes and
	// bookkeeping (about twice an event's encoded size plus 400 bytes).
	// Each assigned partition is guaranteed an equal share of half of it,
	// the other half goes to whichever partitions need more; a partition
	// over its share pauses while that half is used up. Fetches are
	// sized from it (a sixteenth per fetch). Default 64 MiB: tens of
	// thousands of small events, which keeps the Kafka destination's
	// batches full and every HTTP request slot busy, and bounds the
	// buffer whatever the size of the events, where the counts do not.
	MaxBufferedBytes int64
	// CommitInterval is how often finished offsets are committed. Default 1s.
	CommitInterval time.Duration
	// DrainTimeout bounds how long a shutdown waits for attempts in flight.
	// Default 30s.
	DrainTimeout time.Duration
	// RevokeTimeout bounds how long a rebalance waits for the attempts in
	// flight of the partitions it takes away. Default 15s.
	RevokeTimeout time.Duration
	// SessionTimeout is how long the group waits for a replica that stopped
	// heartbeating (crashed) before its partitions move. Default 45s.
	SessionTimeout time.Duration
}

// DefaultMaxBufferedBytes is the default of Config.MaxBufferedBytes.
const DefaultMaxBufferedBytes = 64 << 20

// RegisterFlags binds the configuration to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Group, "consumer-group", kafka.DelivererGroup, "consumer group over the delivery topics")
	fs.StringVar(&c.InstanceID, "instance-id", host, "unique, stable name of this replica (part of the transactional ids of Kafka destinations)")
	fs.IntVar(&c.MaxBufferedPerPartition, "max-buffered-per-partition", 5000, "events held in memory per partition before fetching it pauses")
	fs.IntVar(&c.MaxBufferedPerFlow, "max-buffered-per-flow", 20000, "events held in memory per flow before fetching its topic pauses")
	fs.Int64Var(&c.MaxBufferedBytes, "max-buffered-bytes", DefaultMaxBufferedBytes, "memory the buffered events of all flows may hold (records and decoded envelopes) before fetching pauses")
	fs.DurationVar(&c.CommitInterval, "commit-interval", time.Second, "how often finished offsets are committed")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "how long a shutdown waits for deliveries in flight")
	fs.DurationVar(&c.RevokeTimeout, "revoke-timeout", 15*time.Second, "how long a rebalance waits for deliveries in flight on the partitions it moves")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 45*time.Second, "how long the group waits for a crashed replica before moving its partitions")
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Group == "" {
		c.Group = kafka.DelivererGroup
	}
	if c.InstanceID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return errors.New("deliverer: --instance-id is empty and the host name is unknown")
		}
		c.InstanceID = host
	}
	if c.MaxBufferedPerPartition == 0 {
		c.MaxBufferedPerPartition = 5000
	}
	if c.MaxBufferedPerFlow == 0 {
		c.MaxBufferedPerFlow = 20000
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.RevokeTimeout == 0 {
		c.RevokeTimeout = 15 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	switch {
	case c.MaxBufferedPerPartition < 1:
		return fmt.Errorf("deliverer: --max-buffered-per-partition %d must be positive", c.MaxBufferedPerPartition)
	case c.MaxBufferedBytes < 1<<20:
		return fmt.Errorf("deliverer: --max-buffered-bytes %d is below 1 MiB", c.MaxBufferedBytes)
	case c.MaxBufferedPerFlow < c.MaxBufferedPerPartition:
		return fmt.Errorf("deliverer: --max-buffered-per-flow %d is below --max-buffered-per-partition %d", c.MaxBufferedPerFlow, c.MaxBufferedPerPartition)
	case c.CommitInterval < 0 || c.DrainTimeout < 0 || c.RevokeTimeout < 0 || c.SessionTimeout < 0:
		return errors.New("deliverer: durations must not be negative")
	}
	return nil
}
