// Package server is the control service: the samsa.v1 gRPC API
// (SourceService, FlowService, TransformService), its REST mapping through
// grpc-gateway, and the only writer of samsa.flows.
package server

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/samsa-dev/samsa/pkg/auth"
	"github.com/samsa-dev/samsa/pkg/config"
	"github.com/samsa-dev/samsa/pkg/kafka"
)

// Config is the control service's configuration. The zero value is not
// valid; DefaultConfig (the flags' defaults) is.
type Config struct {
	// GRPCAddr serves the gRPC API.
	GRPCAddr string
	// HTTPAddr serves REST, /openapi.json, /metrics, /healthz and /readyz.
	HTTPAddr string
	// Insecure lets the service start without tokens (every caller is an
	// admin) and without SecretKeys (secrets are stored in plain text).
	// Development only.
	Insecure bool
	// SecretKeys seal the secrets of sources and flows: "id:base64key"
	// entries of 32-byte keys, the first one primary.
	SecretKeys []string
	// Auth is the token and gRPC TLS configuration.
	Auth auth.Config
	// MaxBodyBytes bounds a REST request body and a gRPC message.
	MaxBodyBytes int64
	// MaxTestEvents bounds the sample events of one TransformService.Test.
	MaxTestEvents int
	// DLQRetention is the retention of the dead-letter topics the service
	// creates.
	DLQRetention time.Duration
	// DrainTimeout bounds the graceful shutdown.
	DrainTimeout time.Duration

	// FlowsTopic and StatsTopic override samsa.flows and samsa.stats
	// (tests; not a flag).
	FlowsTopic string
	StatsTopic string
	// DelivererGroup overrides the deliverer's consumer group, whose
	// committed offsets give the delivery lag and the delivered counts
	// (tests; not a flag).
	DelivererGroup string
}

// RegisterFlags binds the configuration to flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "address of the gRPC control API")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the REST control API, /openapi.json, /metrics, /healthz and /readyz")
	fs.BoolVar(&c.Insecure, "insecure", false, "start without tokens (every caller is admin) and without --secret-keys (secrets stored in plain text): development only")
	fs.Var((*config.StringList)(&c.SecretKeys), "secret-keys", "keys that seal secrets of sources and flows, id:base64key (32 bytes) comma-separated, first primary (prefer the SAMSA_SECRET_KEYS variable)")
	c.Auth.RegisterFlags(fs)
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest REST request body and gRPC message (413 / ResourceExhausted beyond)")
	fs.IntVar(&c.MaxTestEvents, "max-test-events", 1000, "most sample events in one transform test")
	fs.DurationVar(&c.DLQRetention, "dlq-retention", 30*24*time.Hour, "retention of the dead-letter topics samsa.dlq.<flow> Samsa creates")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 15*time.Second, "graceful shutdown bound for in-flight requests")
}

// DefaultConfig returns the flags' defaults, for embedding the control
// service (samsa dev, tests) without a flag set.
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("control", flag.ContinueOnError))
	return c
}

// Validate checks the configuration as a whole (tokens are checked when
// they are loaded, in New).
func (c *Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("control: --grpc-addr is required"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("control: --http-addr is required"))
	}
	if len(c.SecretKeys) == 0 && !c.Insecure {
		errs = append(errs, errors.New("control: --secret-keys (SAMSA_SECRET_KEYS) is required to encrypt the secrets of sources and flows (generate a key: echo k1:$(head -c32 /dev/urandom | base64)); --insecure stores them in plain text, for development only"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("control: --max-body-bytes %d: want 1 KiB to 64 MiB", c.MaxBodyBytes))
	}
	if c.MaxTestEvents < 1 {
		errs = append(errs, fmt.Errorf("control: --max-test-events %d: want at least 1", c.MaxTestEvents))
	}
	if c.DLQRetention < time.Hour {
		errs = append(errs, fmt.Errorf("control: --dlq-retention %s: want at least 1h", c.DLQRetention))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("control: --drain-timeout %s: want a positive duration", c.DrainTimeout))
	}
	for _, t := range []string{c.FlowsTopic, c.StatsTopic} {
		if t != "" {
			if err := kafka.ValidateTopic(t); err != nil {
				errs = append(errs, fmt.Errorf("control: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Config) flowsTopic() string {
	if c.FlowsTopic != "" {
		return c.FlowsTopic
	}
	return kafka.FlowsTopic
}

func (c *Config) delivererGroup() string {
	if c.DelivererGroup != "" {
		return c.DelivererGroup
	}
	return kafka.DelivererGroup
}

func (c *Config) statsTopic() string {
	if c.StatsTopic != "" {
		return c.StatsTopic
	}
	return kafka.StatsTopic
}
