// Package kafka builds franz-go clients from one configuration struct shared
// by every Samsa service, bootstraps Samsa's topics and derives their names.
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
)

// Config is how a service reaches Kafka. The zero value plus Brokers is a
// plaintext, unauthenticated connection.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID names the client in broker logs and quotas. Default "samsa".
	ClientID string
	// TLS enables TLS. CAFile, CertFile and KeyFile are PEM files; without
	// CAFile the system roots are used.
	TLS      bool
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the name verified in the broker's certificate.
	ServerName string
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	SASLMechanism string
	SASLUsername  string
	SASLPassword  string
	// ReplicationFactor of topics Samsa creates. Default 3, or 1 when the
	// cluster has fewer brokers.
	ReplicationFactor int
}

// Validate checks the configuration for mistakes that would otherwise only
// show up as connection errors.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers configured")
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("kafka: broker %q: want host:port", b)
		}
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("kafka: sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if c.SASLMechanism != "" && c.SASLUsername == "" {
		return errors.New("kafka: sasl mechanism set without a username")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("kafka: a client certificate needs both a cert file and a key file")
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "") {
		return errors.New("kafka: CA or client certificate given but TLS is off")
	}
	return nil
}

// concurrentTxnBackoff is the retry interval after CONCURRENT_TRANSACTIONS
// (franz-go lengthens it when the condition lasts).
const concurrentTxnBackoff = 2 * time.Millisecond

// Options turns the configuration into franz-go client options, with logs
// going to log through kzap. Callers append their own (consumer group,
// transactional id, ...).

func (c *Config) Options(log *zap.Logger) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "samsa"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id),
		kgo.DialTimeout(10 * time.Second),
		// A transaction begun right after the previous one ended can find
		// the broker still writing the previous one's commit markers
		// (CONCURRENT_TRANSACTIONS). franz-go retries after 20 ms by
		// default; the markers take a few, and the transformer and the
		// deliverer's Kafka destination begin transactions back to back,
		// so each stage would add up to 20 ms to every event's latency.
		kgo.ConcurrentTransactionsBackoff(concurrentTxnBackoff),
		// A consumer holds one fetch response while the next is in
		// flight; franz-go's default of 50 MiB per response made a
		// transformer or deliverer catching up on a backlog hold
		// 100 MiB and more of fetched records. 8 MiB is ~25,000 events
		// of 300 bytes: more than one batch.
		kgo.FetchMaxBytes(8 << 20),
	}
	if log != nil {
		opts = append(opts, kgo.WithLogger(kzap.New(log.Named("kafka"), kzap.Level(kgo.LogLevelWarn))))
	}
	if c.TLS {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	return opts, nil
}

// NewClient returns a client with the configuration's options followed by extra.
func (c *Config) NewClient(log *zap.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Options(log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return cl, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: CA file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
