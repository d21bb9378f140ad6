package kafka

import (
	"flag"

	"github.com/samsa-dev/samsa/pkg/config"
)

// RegisterFlags binds the configuration to --kafka-* flags (and so to
// SAMSA_KAFKA_* environment variables).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var((*config.StringList)(&c.Brokers), "kafka-brokers", "Kafka seed brokers, host:port, comma-separated (required)")
	fs.StringVar(&c.ClientID, "kafka-client-id", "samsa", "Kafka client id")
	fs.BoolVar(&c.TLS, "kafka-tls", false, "connect to Kafka with TLS")
	fs.StringVar(&c.CAFile, "kafka-ca-file", "", "PEM file of the CA that signed the brokers' certificates (default: system roots)")
	fs.StringVar(&c.CertFile, "kafka-cert-file", "", "PEM client certificate for mTLS to Kafka")
	fs.StringVar(&c.KeyFile, "kafka-key-file", "", "PEM private key of --kafka-cert-file")
	fs.StringVar(&c.ServerName, "kafka-tls-server-name", "", "name to verify in the brokers' certificates (default: the broker host)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: none)")
	fs.StringVar(&c.SASLUsername, "kafka-sasl-username", "", "SASL username")
	fs.StringVar(&c.SASLPassword, "kafka-sasl-password", "", "SASL password (prefer the SAMSA_KAFKA_SASL_PASSWORD variable)")
	fs.IntVar(&c.ReplicationFactor, "kafka-replication-factor", 3, "replication factor of topics Samsa creates (capped at the broker count)")
}
