package httpdest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/event"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// clientCert makes a CA and a client certificate it signed, in PEM.
func clientCert(t *testing.T) (caPEM, certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "samsa"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

func TestTLSVerificationAndClientCertificate(t *testing.T) {
	_, certPEM, keyPEM, clientCAs := clientCert(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	srv.StartTLS()
	defer srv.Close()
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	deliver := func(tlsMsg *samsav1.Tls) destination.Result {
		t.Helper()
		tc, err := destination.TLSConfig(tlsMsg)
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{URL: srv.URL, AllowPrivateNetwork: true, TLS: tc, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		res := make([]destination.Result, 1)
		d.Deliver(context.Background(), []destination.Item{{Event: &event.Event{ID: "x", Data: []byte("{}")}}}, res)
		return res[0]
	}
	// The server's certificate is not trusted by the system roots: verified, refused.
	if r := deliver(nil); r.Class != destination.Retryable || r.Status != "tls" {
		t.Errorf("untrusted server: %+v", r)
	}
	// Trusted, but no client certificate.
	if r := deliver(&samsav1.Tls{Enabled: true, CaPem: string(serverCA)}); r.Class == destination.Success {
		t.Errorf("delivered without the client certificate the server requires")
	}
	// Trusted, with the client certificate: mTLS.
	if r := deliver(&samsav1.Tls{Enabled: true, CaPem: string(serverCA), CertPem: string(certPEM), KeyPem: string(keyPEM)}); r.Class != destination.Success {
		t.Errorf("mTLS: %+v", r)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	for _, m := range []*samsav1.Tls{
		{Enabled: true, CaPem: "not pem"},
		{Enabled: true, CertPem: "x"},
		{Enabled: true, CertPem: "x", KeyPem: "y"},
	} {
		if _, err := destination.TLSConfig(m); err == nil {
			t.Errorf("TLSConfig(%v) succeeded", m)
		}
	}
	if tc, err := destination.TLSConfig(&samsav1.Tls{}); tc != nil || err != nil {
		t.Errorf("empty Tls: %v %v", tc, err)
	}
}
