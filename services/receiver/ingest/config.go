package ingest

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/samsa-dev/samsa/pkg/config"
)

// Config is the receiver's configuration. RegisterFlags binds it to flags
// (and so to SAMSA_* environment variables); the zero value is not valid,
// the flags' defaults are.
type Config struct {
	// HTTPAddr serves ingest, /metrics, /healthz and /readyz.
	HTTPAddr string
	// GRPCAddr serves samsa.v1.IngestService; empty disables it.
	GRPCAddr string
	// SecretKeys open the sealed signing secrets of sources: "id:base64key",
	// the first one primary (the control service's format).
	SecretKeys []string
	// Insecure accepts requests for sources without auth configuration and
	// lets the receiver start without SecretKeys. For development only.
	Insecure bool

	// MaxBodyBytes bounds a request body (413 beyond).
	MaxBodyBytes int64
	// MaxEvents bounds the events of one request (413 beyond).
	MaxEvents int
	// MaxDepth bounds the nesting of JSON payloads (400 beyond).
	MaxDepth int
	// MaxEventBytes bounds one encoded event, the Kafka record's value:
	// Kafka refuses records larger than the topic's max.message.bytes
	// (1 MiB by default), so larger events are refused up front (413).
	MaxEventBytes int
	// MaxBufferedBytes bounds the encoded events waiting for Kafka's
	// acknowledgement, over all requests. A request that would exceed it
	// gets 429 with Retry-After instead of growing memory without bound.
	MaxBufferedBytes int64
	// ProduceTimeout bounds how long an event may wait for Kafka before its
	// request fails with 503.
	ProduceTimeout time.Duration
	// Linger is how long the producer waits to fill a batch. A little
	// linger makes larger batches out of concurrent single-event requests;
	// every acknowledgement waits for it. The flag's default is 1ms (Kafka
	// 4's producer lingers 5ms): under load batches fill while a produce is
	// in flight anyway, and end-to-end latency is measured against it
	// (docs/benchmarks.md).
	Linger time.Duration
	// CreateTopics creates a source's topic on its first event when it does
	// not exist (partitions and retention from the source).
	CreateTopics bool
	// DrainTimeout bounds the graceful shutdown: in-flight requests finish
	// and the producer flushes within it.
	DrainTimeout time.Duration
	// StatsInterval is how often the receiver publishes the ingest counts
	// of the sources that changed to samsa.stats, for the control
	// service's sources page (it also publishes them when it stops). Zero
	// disables publishing.
	StatsInterval time.Duration
	// StatsTopic overrides samsa.stats (tests; not a flag).
	StatsTopic string
}

// RegisterFlags binds the configuration to flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8081", "address of the ingest HTTP API, /metrics, /healthz and /readyz")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9091", "address of the gRPC IngestService (empty disables it)")
	fs.Var((*config.StringList)(&c.SecretKeys), "secret-keys", "keys that open sealed source secrets, id:base64key comma-separated, first primary (prefer the SAMSA_SECRET_KEYS variable)")
	fs.BoolVar(&c.Insecure, "insecure", false, "accept sources without auth and start without --secret-keys (development only)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 5<<20, "largest request body accepted (413 beyond)")
	fs.IntVar(&c.MaxEvents, "max-events", 1000, "most events in one request (413 beyond)")
	fs.IntVar(&c.MaxDepth, "max-depth", 64, "deepest nesting of a JSON payload (400 beyond)")
	fs.IntVar(&c.MaxEventBytes, "max-event-bytes", 1_000_000, "largest encoded event (a Kafka record; keep below the topics' max.message.bytes)")
	fs.Int64Var(&c.MaxBufferedBytes, "max-buffered-bytes", 128<<20, "encoded events awaiting Kafka's acknowledgement, over all requests (429 beyond)")
	fs.DurationVar(&c.ProduceTimeout, "produce-timeout", 10*time.Second, "how long events may wait for Kafka before the request fails with 503")
	fs.DurationVar(&c.Linger, "linger", time.Millisecond, "how long the producer waits to fill a batch (every acknowledgement waits for it)")
	fs.BoolVar(&c.CreateTopics, "create-topics", true, "create a source's topic on its first event if it does not exist")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "graceful shutdown bound: in-flight requests finish and events are flushed within it")
	fs.DurationVar(&c.StatsInterval, "stats-interval", 5*time.Second, "how often per-source ingest counts are published to samsa.stats for the control service's sources page (0 disables)")
}

// Validate checks the configuration as a whole.
func (c *Config) Validate() error {
	var errs []error
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("receiver: --http-addr is required"))
	}
	if len(c.SecretKeys) == 0 && !c.Insecure {
		errs = append(errs, errors.New("receiver: --secret-keys (SAMSA_SECRET_KEYS) is required to open source secrets; use --insecure only for development"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("receiver: --max-body-bytes %d: want at least 1024", c.MaxBodyBytes))
	}
	if c.MaxEvents < 1 {
		errs = append(errs, fmt.Errorf("receiver: --max-events %d: want at least 1", c.MaxEvents))
	}
	if c.MaxDepth < 1 || c.MaxDepth > 10000 {
		errs = append(errs, fmt.Errorf("receiver: --max-depth %d: want 1 to 10000", c.MaxDepth))
	}
	if c.MaxEventBytes < 1024 || c.MaxEventBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("receiver: --max-event-bytes %d: want 1 KiB to 1 GiB", c.MaxEventBytes))
	}
	if c.MaxBufferedBytes < 2*c.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("receiver: --max-buffered-bytes %d: want at least twice --max-body-bytes (%d)", c.MaxBufferedBytes, 2*c.MaxBodyBytes))
	}
	if c.ProduceTimeout < time.Second {
		errs = append(errs, fmt.Errorf("receiver: --produce-timeout %s: want at least 1s", c.ProduceTimeout))
	}
	if c.Linger < 0 || c.Linger > time.Second {
		errs = append(errs, fmt.Errorf("receiver: --linger %s: want 0 to 1s", c.Linger))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("receiver: --drain-timeout %s: want a positive duration", c.DrainTimeout))
	}
	if c.StatsInterval != 0 && (c.StatsInterval < 100*time.Millisecond || c.StatsInterval > time.Hour) {
		errs = append(errs, fmt.Errorf("receiver: --stats-interval %s: want 0 (off) or 100ms to 1h", c.StatsInterval))
	}
	return errors.Join(errs...)
}

// DefaultConfig returns the flags' defaults, for embedding the receiver
// (samsa dev, tests) without a flag set.
func DefaultConfig() Config {
	var c Config
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	c.RegisterFlags(fs)
	return c
}
