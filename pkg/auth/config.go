package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/samsa-dev/samsa/pkg/config"
)

// Config is the authentication configuration of the control service.
type Config struct {
	// Tokens are "role:token" entries (--tokens, SAMSA_TOKENS).
	Tokens []string
	// TokensFile holds "role:token" entries, one per line.
	TokensFile string
	// TLSCert and TLSKey are the PEM files of the gRPC server's certificate;
	// with both set the gRPC port speaks TLS.
	TLSCert string
	TLSKey  string
	// ClientCA, a PEM file, turns on mutual TLS: only clients with a
	// certificate signed by it may connect (tokens are still required).
	ClientCA string
}

// RegisterFlags binds --tokens, --tokens-file and the --grpc-tls-* flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var((*config.StringList)(&c.Tokens), "tokens", "control API tokens as comma-separated role:token entries, role admin, editor or viewer (prefer SAMSA_TOKENS or --tokens-file)")
	fs.StringVar(&c.TokensFile, "tokens-file", "", "file of role:token lines (# comments allowed)")
	fs.StringVar(&c.TLSCert, "grpc-tls-cert", "", "PEM certificate of the gRPC server (turns on TLS)")
	fs.StringVar(&c.TLSKey, "grpc-tls-key", "", "PEM private key of --grpc-tls-cert")
	fs.StringVar(&c.ClientCA, "grpc-client-ca", "", "PEM CA that signs client certificates (turns on mutual TLS)")
}

// Validate checks the combination of settings.
func (c *Config) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("auth: --grpc-tls-cert and --grpc-tls-key go together")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return errors.New("auth: --grpc-client-ca needs --grpc-tls-cert and --grpc-tls-key")
	}
	return nil
}

// LoadTokens returns the configured tokens, from Tokens and TokensFile.
func (c *Config) LoadTokens() (*Tokens, error) {
	entries := append([]string(nil), c.Tokens...)
	if c.TokensFile != "" {
		more, err := ReadTokensFile(c.TokensFile)
		if err != nil {
			return nil, err
		}
		entries = append(entries, more...)
	}
	return ParseTokens(entries)
}

// ServerTLS returns the TLS configuration of the gRPC server, or nil when
// TLS is not configured.
func (c *Config) ServerTLS() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("auth: grpc certificate: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("auth: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("auth: client CA %s holds no PEM certificate", c.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
