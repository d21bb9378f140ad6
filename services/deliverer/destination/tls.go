package destination

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// TLSConfig builds the client TLS configuration of a destination. It
// returns nil when t is nil or not enabled and has nothing set, which means
// the defaults: TLS only for https URLs, verified against the system roots.
// Verification stays on unless t asks otherwise. KeyPem must be opened
// (plain text) already.
func TLSConfig(t *samsav1.Tls) (*tls.Config, error) {
	if t == nil || (!t.GetEnabled() && t.GetCaPem() == "" && t.GetCertPem() == "" && t.GetServerName() == "" && !t.GetInsecureSkipVerify()) {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.GetServerName(),
		InsecureSkipVerify: t.GetInsecureSkipVerify(), //nolint:gosec // explicit, per destination
	}
	if ca := t.GetCaPem(); ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ca)) {
			return nil, errors.New("tls.caPem holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if (t.GetCertPem() == "") != (t.GetKeyPem() == "") {
		return nil, errors.New("tls: a client certificate needs both certPem and keyPem")
	}
	if t.GetCertPem() != "" {
		cert, err := tls.X509KeyPair([]byte(t.GetCertPem()), []byte(t.GetKeyPem()))
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
