package pipeline

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-dev/samsa/pkg/kafka"
)

// Config is the transformer pipeline's configuration.
type Config struct {
	// Group is the consumer group shared by every transformer replica.
	// Default kafka.TransformerGroup. Replicas of one deployment must use
	// the same group; tests and side-by-side installations on one cluster
	// use their own.
	Group string
	// TransactionalID identifies this replica's transactional producer. It
	// must be unique among the running replicas and stable across restarts
	// of the same replica: a restarted replica that reuses it fences its
	// previous incarnation and aborts the transaction that incarnation
	// left open at once, instead of leaving read_committed readers (and
	// the partitions' next owner) waiting for the transaction timeout.
	// Default "samsa-transformer-" + the host name (the pod name on
	// Kubernetes, which a restarted container keeps).
	TransactionalID string
	// TransactionTimeout bounds how long a transaction of a replica that
	// died without a successor reusing its transactional id stays open.
	// Default 20s.
	TransactionTimeout time.Duration
	// MaxBatch is the most records consumed in one transaction. Larger
	// batches amortise the commit (a few round trips); smaller ones lower
	// latency and the work lost to a rebalance. Default 10000.
	MaxBatch int
	// BatchWindow is how long after a transaction ends the next batch may
	// keep collecting records before its transaction begins. The broker is
	// still writing the ended transaction's commit markers then, and holds
	// the next transaction's first writes until it is done; records that
	// arrive meanwhile join this batch instead of waiting for the next one.
	// It never delays a batch when the previous transaction ended longer
	// ago, nor one that is full. Zero turns it off. The flag's default is
	// 5ms: at 2,000 events/s it halves the time an event waits for its
	// transaction (docs/benchmarks.md).
	BatchWindow time.Duration
	// Workers is the number of goroutines that run filters and transforms
	// in parallel. Default GOMAXPROCS.
	Workers int
	// StartLookback: a source topic the group has no committed offset for
	// (its first flow was just added) is read from the first record stamped
	// at or after the creation of the source's oldest flow, minus this
	// margin for clock skew between the control service and producers.
	// Default 1m.
	StartLookback time.Duration
	// ScriptMaxSteps and ScriptTimeout bound one event's filter and
	// transform (see pkg/script). Defaults 1,000,000 steps and 100ms.
	ScriptMaxSteps uint64
	ScriptTimeout  time.Duration
	// NoTopicCreation stops the transformer from creating a flow's
	// delivery and dead-letter topics when they do not exist. The control
	// service creates them when a flow is written; creating them here is
	// the fallback for a flow whose topics were deleted or never created,
	// which would otherwise stall every flow of its source. Default false
	// (missing topics are created).
	NoTopicCreation bool
	// SessionTimeout is how long the group waits for a silent replica (one
	// that crashed) before giving its partitions to the others. Default 15s.
	SessionTimeout time.Duration
	// DrainTimeout bounds the graceful shutdown: the batch in progress
	// must be committed within it, or it is aborted (and redone by the
	// partitions' next owner). Default 30s.
	DrainTimeout time.Duration
}

// RegisterFlags binds the configuration to command-line flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Group, "group", kafka.TransformerGroup, "consumer group of the transformer replicas")
	fs.StringVar(&c.TransactionalID, "transactional-id", "", "transactional id of this replica: unique per running replica, stable across its restarts (default samsa-transformer-<hostname>)")
	fs.DurationVar(&c.TransactionTimeout, "transaction-timeout", 20*time.Second, "Kafka transaction timeout")
	fs.IntVar(&c.MaxBatch, "max-batch", 10000, "most records consumed in one transaction")
	fs.DurationVar(&c.BatchWindow, "batch-window", 5*time.Millisecond, "after a transaction ends, how long the next batch may collect records before its transaction begins (0: off)")
	fs.IntVar(&c.Workers, "workers", 0, "goroutines running filters and transforms (default GOMAXPROCS)")
	fs.DurationVar(&c.StartLookback, "start-lookback", time.Minute, "a source's first flow reads records stamped from this long before the flow was created")
	fs.Uint64Var(&c.ScriptMaxSteps, "script-max-steps", 1_000_000, "step limit of one event's filter and transform")
	fs.DurationVar(&c.ScriptTimeout, "script-timeout", 100*time.Millisecond, "wall-clock limit of one event's filter and transform")
	fs.Var(invertedBool{&c.NoTopicCreation}, "create-missing-topics", "create a flow's delivery and dead-letter topics if they are missing (fallback; the control service creates them) (default true)")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 15*time.Second, "how long the group waits for a crashed replica before reassigning its partitions")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on shutdown, how long the batch in progress may take to commit")
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = kafka.TransformerGroup
	}
	if c.TransactionalID == "" {
		c.TransactionalID = DefaultTransactionalID()
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 20 * time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 10000
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.StartLookback < 0 {
		c.StartLookback = 0
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 15 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	return c
}

// Validate reports configuration mistakes.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("max batch %d: must not be negative", c.MaxBatch))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers %d: must not be negative", c.Workers))
	}
	if c.BatchWindow < 0 || c.BatchWindow > time.Second {
		errs = append(errs, fmt.Errorf("batch window %s: want 0 to 1s", c.BatchWindow))
	}
	if c.TransactionTimeout != 0 && c.TransactionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("transaction timeout %s: want at least 1s", c.TransactionTimeout))
	}
	if c.ScriptTimeout < 0 {
		errs = append(errs, fmt.Errorf("script timeout %s: must not be negative", c.ScriptTimeout))
	}
	if strings.ContainsAny(c.TransactionalID, " \t\n") {
		errs = append(errs, fmt.Errorf("transactional id %q: must not contain spaces", c.TransactionalID))
	}
	return errors.Join(errs...)
}

// DefaultTransactionalID is "samsa-transformer-" followed by the host name.
func DefaultTransactionalID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "samsa-transformer-" + host
}

// invertedBool is a boolean flag that sets the negation of its field.
type invertedBool struct{ p *bool }

func (b invertedBool) IsBoolFlag() bool { return true }

func (b invertedBool) String() string {
	if b.p == nil {
		return "true"
	}
	return strconv.FormatBool(!*b.p)
}

func (b invertedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b.p = !v
	return nil
}
