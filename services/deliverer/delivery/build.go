package delivery

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
	"github.com/samsa-dev/samsa/services/deliverer/destination/httpdest"
	"github.com/samsa-dev/samsa/services/deliverer/destination/kafkadest"
	"github.com/samsa-dev/samsa/services/deliverer/destination/pgdest"
)

// DestinationFactory builds the destination of a flow (whose secrets are
// still sealed), for attempts bounded by timeout and at most maxInFlight
// at once. typ labels its metrics ("http", "kafka", "postgres").
type DestinationFactory func(fl *samsav1.Flow, timeout time.Duration, maxInFlight int) (dest destination.Destination, typ string, err error)

func newHandle(d destination.Destination, typ string) *destHandle {
	h := &destHandle{d: d, typ: typ, caps: d.Capabilities()}
	if t, ok := d.(destination.Transactional); ok && t.Transactional() {
		h.txn = t
	}
	if h.caps.MaxBatch < 1 {
		h.caps.MaxBatch = 1
	}
	return h
}

func (d *Deliverer) defaultFactory(fl *samsav1.Flow, timeout time.Duration, maxInFlight int) (destination.Destination, string, error) {
	fl, err := openSecrets(d.box, fl)
	if err != nil {
		return nil, "", err
	}
	switch k := fl.GetDestination().GetKind().(type) {
	case *samsav1.Destination_Http:
		h := k.Http
		tc, err := destination.TLSConfig(h.GetTls())
		if err != nil {
			return nil, "", fmt.Errorf("destination.http: %w", err)
		}
		headers := make(map[string]string, len(h.GetHeaders())+len(h.GetSecretHeaders()))
		for k, v := range h.GetHeaders() {
			headers[k] = v
		}
		for k, v := range h.GetSecretHeaders() {
			headers[k] = v
		}
		dest, err := httpdest.New(httpdest.Config{
			URL: h.GetUrl(), Headers: headers, SigningSecret: h.GetSigningSecret(),
			AllowPrivateNetwork: h.GetAllowPrivateNetwork(), TLS: tc, Timeout: timeout, MaxConns: maxInFlight,
		})
		if err != nil {
			return nil, "", err
		}
		return dest, "http", nil
	case *samsav1.Destination_Kafka:
		kd := k.Kafka
		cfg := kafkadest.Config{
			Topic: kd.GetTopic(), Format: kd.GetFormat(), Own: d.kcfg, Timeout: timeout,
			TransactionalID: "samsa-deliverer." + fl.GetName() + "." + d.cfg.InstanceID,
			Log:             d.log.With(zap.String("flow", fl.GetName())),
		}
		if len(kd.GetBrokers()) > 0 {
			tc, err := destination.TLSConfig(kd.GetTls())
			if err != nil {
				return nil, "", fmt.Errorf("destination.kafka: %w", err)
			}
			cfg.Remote = &kafkadest.Remote{Brokers: kd.GetBrokers(), TLS: tc,
				SASLMechanism: kd.GetSasl().GetMechanism(), SASLUsername: kd.GetSasl().GetUsername(), SASLPassword: kd.GetSasl().GetPassword()}
		}
		dest, err := kafkadest.New(cfg)
		if err != nil {
			return nil, "", err
		}
		return dest, "kafka", nil
	case *samsav1.Destination_Postgres:
		pg := k.Postgres
		dest, err := pgdest.New(pgdest.Config{
			DSN: pg.GetDsn(), Table: pg.GetTable(), IDColumn: pg.GetIdColumn(), Columns: pg.GetColumns(),
			JSONColumn: pg.GetJsonColumn(), Mode: pg.GetMode(), MaxConns: min(maxInFlight, 16), Timeout: timeout,
		})
		if err != nil {
			return nil, "", err
		}
		return dest, "postgres", nil
	}
	return nil, "", ErrNoDestination
}

// openSecrets returns a copy of fl with its sealed secrets opened.
func openSecrets(box *secret.Box, fl *samsav1.Flow) (*samsav1.Flow, error) {
	c := proto.Clone(fl).(*samsav1.Flow)
	var err error
	open := func(field string, p *string) {
		if err != nil || !secret.IsSealed(*p) {
			return
		}
		if box == nil {
			err = fmt.Errorf("%s is sealed but no secret key is configured (--secret-keys)", field)
			return
		}
		v, e := box.Open(*p)
		if e != nil {
			err = fmt.Errorf("%s: %w", field, e)
			return
		}
		*p = v
	}
	d := c.GetDestination()
	if h := d.GetHttp(); h != nil {
		open("destination.http.signingSecret", &h.SigningSecret)
		for k, v := range h.SecretHeaders {
			open("destination.http.secretHeaders["+k+"]", &v)
			h.SecretHeaders[k] = v
		}
		if h.Tls != nil {
			open("destination.http.tls.keyPem", &h.Tls.KeyPem)
		}
	}
	if k := d.GetKafka(); k != nil {
		if k.Tls != nil {
			open("destination.kafka.tls.keyPem", &k.Tls.KeyPem)
		}
		if k.Sasl != nil {
			open("destination.kafka.sasl.password", &k.Sasl.Password)
		}
	}
	if p := d.GetPostgres(); p != nil {
		open("destination.postgres.dsn", &p.Dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", fl.GetName(), err)
	}
	return c, nil
}
