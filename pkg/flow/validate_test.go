package flow

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func validSource() *samsav1.Source {
	s := &samsav1.Source{
		Name: "orders",
		Auth: &samsav1.SourceAuth{
			ApiKeys:   []*samsav1.ApiKey{{Name: "shop", Hash: strings.Repeat("ab", 32)}},
			Signature: &samsav1.Signature{Preset: "github", Secret: "s3cret"},
		},
		RateLimit: &samsav1.RateLimit{PerSecond: 100, Burst: 200},
	}
	applySourceDefaults(s)
	return s
}

func validFlow() *samsav1.Flow {
	return &samsav1.Flow{
		Name:      "orders-to-crm",
		Source:    "orders",
		Filter:    `event.type == "order.created"`,
		Transform: "def transform(event):\n    return {\"id\": event.data[\"id\"]}\n",
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url:           "https://crm.example.com/hooks",
			Headers:       map[string]string{"X-Team": "shop"},
			SecretHeaders: map[string]string{"Authorization": "Bearer x"},
			SigningSecret: "whsec_c2VjcmV0",
		}}},
		Delivery: &samsav1.Delivery{
			Retry:              &samsav1.Retry{InitialBackoff: "1s", MaxBackoff: "1m", MaxElapsed: "24h", Multiplier: 2, MaxAttempts: 10},
			RateLimit:          &samsav1.RateLimit{PerSecond: 50},
			MaxInFlight:        16,
			Timeout:            "5s",
			MaintenanceWindows: []*samsav1.MaintenanceWindow{{Name: "nightly", Cron: "0 2 * * SUN", Duration: "2h", TimeZone: "Europe/Berlin"}},
			CircuitBreaker:     &samsav1.CircuitBreaker{FailureThreshold: 5, OpenDuration: "30s"},
			Ordering:           "key",
			RampUp:             "30s",
		},
	}
}

func httpDest(f *samsav1.Flow) *samsav1.HttpDestination { return f.Destination.GetHttp() }

func kafkaFlow(mod func(k *samsav1.KafkaDestination)) func(f *samsav1.Flow) {
	return func(f *samsav1.Flow) {
		k := &samsav1.KafkaDestination{Topic: "crm-orders"}
		mod(k)
		f.Destination = &samsav1.Destination{Kind: &samsav1.Destination_Kafka{Kafka: k}}
	}
}

func pgFlow(mod func(p *samsav1.PostgresDestination)) func(f *samsav1.Flow) {
	return func(f *samsav1.Flow) {
		p := &samsav1.PostgresDestination{Dsn: "postgres://u:pw@db.example.com:5432/shop", Table: "public.orders"}
		mod(p)
		f.Destination = &samsav1.Destination{Kind: &samsav1.Destination_Postgres{Postgres: p}}
	}
}

const testCert = `-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw
DgYDVQQKEwdBY21lIENvMB4XDTE3MTAyMDE5NDMwNloXDTE4MTAyMDE5NDMwNlow
EjEQMA4GA1UEChMHQWNtZSBDbzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD0d
7VNhbWvZLWPuj/RtHFjvtJBEwOkhbN/BnnE8rnZR8+sbwnc/KhCk3FhnpHZnQz7B
5aETbbIgmuvewdjvSBSjYzBhMA4GA1UdDwEB/wQEAwICpDATBgNVHSUEDDAKBggr
BgEFBQcDATAPBgNVHRMBAf8EBTADAQH/MCkGA1UdEQQiMCCCDmxvY2FsaG9zdDo1
NDUzgg4xMjcuMC4wLjE6NTQ1MzAKBggqhkjOPQQDAgNIADBFAiEA2zpJEPQyz6/l
Wf86aX6PepsntZv2GYlA5UpabfT2EZICICpJ5h/iI+i341gBmLiAFQOyTDT+/wQc
6MF9+Yw1Yy0t
-----END CERTIFICATE-----`

func TestValidateSourceErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(s *samsav1.Source)
		want string
	}{
		{"empty name", func(s *samsav1.Source) { s.Name = "" }, "source.name: name is empty"},
		{"bad name", func(s *samsav1.Source) { s.Name, s.Topic = "Orders", "x" }, `source.name: name "Orders" must match`},
		{"bad topic", func(s *samsav1.Source) { s.Topic, s.Partitions, s.Retention = "a b", 0, "" }, `source.topic: topic "a b": character ' ' not allowed (letters, digits, '.', '_', '-')`},
		{"reserved topic", func(s *samsav1.Source) { s.Topic, s.Partitions, s.Retention = "samsa.flows", 0, "" }, `source.topic: "samsa.flows" is reserved for Samsa's own topics (the source's own topic is samsa.src.orders)`},
		{"format", func(s *samsav1.Source) { s.Format = "xml" }, `source.format: "xml" is not one of envelope, json, bytes`},
		{"own topic json", func(s *samsav1.Source) { s.Format = "json" }, `source.format: samsa.src.orders is written by the receiver in the envelope format; "json" is only for other topics`},
		{"partitions of foreign topic", func(s *samsav1.Source) { s.Topic, s.Format, s.Retention = "shop.orders", "json", "" }, "source.partitions: only for the source's own topic samsa.src.orders, which Samsa creates; shop.orders is not Samsa's"},
		{"partitions range", func(s *samsav1.Source) { s.Partitions = 5000 }, "source.partitions: 5000 is out of range [0, 1000]"},
		{"retention syntax", func(s *samsav1.Source) { s.Retention = "7 days" }, `source.retention: "7 days" is not a duration (Go syntax: "500ms", "30s", "5m", "2h")`},
		{"retention range", func(s *samsav1.Source) { s.Retention = "1s" }, "source.retention: 1s is out of range [1m, 87600h]"},
		{"rate negative", func(s *samsav1.Source) { s.RateLimit.PerSecond = -1 }, "source.rateLimit.perSecond: -1 is out of range [0, 1000000]"},
		{"burst without rate", func(s *samsav1.Source) { s.RateLimit.PerSecond = 0 }, "source.rateLimit.burst: set without perSecond"},
		{"burst range", func(s *samsav1.Source) { s.RateLimit.Burst = -3 }, "source.rateLimit.burst: -3 is out of range [0, 1000000]"},
		{"description", func(s *samsav1.Source) { s.Description = strings.Repeat("x", 2000) }, "source.description: 2000 bytes, at most 1024"},
		{"api key name", func(s *samsav1.Source) { s.Auth.ApiKeys[0].Name = "" }, "source.auth.apiKeys[0].name: required (it identifies the key in logs and for rotation)"},
		{"api key dup", func(s *samsav1.Source) {
			s.Auth.ApiKeys = append(s.Auth.ApiKeys, &samsav1.ApiKey{Name: "shop", Hash: strings.Repeat("cd", 32)})
		}, `source.auth.apiKeys[1].name: "shop" is used by another key`},
		{"api key hash", func(s *samsav1.Source) { s.Auth.ApiKeys[0].Hash = "abc" }, "source.auth.apiKeys[0].hash: want the 64 hex digits of the key's SHA-256"},
		{"signature preset", func(s *samsav1.Source) { s.Auth.Signature.Preset = "gitlab" }, `source.auth.signature.preset: "gitlab" is not one of github, stripe, standard-webhooks, generic`},
		{"signature no preset", func(s *samsav1.Source) { s.Auth.Signature.Preset = "" }, "source.auth.signature.preset: required: one of github, stripe, standard-webhooks, generic"},
		{"signature secret", func(s *samsav1.Source) { s.Auth.Signature.Secret = "" }, "source.auth.signature.secret: required"},
		{"generic header", func(s *samsav1.Source) { s.Auth.Signature.Preset = "generic" }, "source.auth.signature.header: required for preset generic"},
		{"generic bad header", func(s *samsav1.Source) { s.Auth.Signature.Preset, s.Auth.Signature.Header = "generic", "X Sig" }, `source.auth.signature.header: "X Sig" is not a valid header name`},
		{"generic algorithm", func(s *samsav1.Source) {
			s.Auth.Signature.Preset, s.Auth.Signature.Header, s.Auth.Signature.Algorithm = "generic", "X-Sig", "md5"
		}, `source.auth.signature.algorithm: "md5" is not one of sha256, sha1, sha512`},
		{"generic encoding", func(s *samsav1.Source) {
			s.Auth.Signature.Preset, s.Auth.Signature.Header, s.Auth.Signature.Encoding = "generic", "X-Sig", "base32"
		}, `source.auth.signature.encoding: "base32" is not one of hex, base64`},
		{"preset fixes header", func(s *samsav1.Source) { s.Auth.Signature.Header = "X-Sig" }, "source.auth.signature.header: only for preset generic (preset github fixes it)"},
		{"whsec", func(s *samsav1.Source) {
			s.Auth.Signature.Preset, s.Auth.Signature.Secret = "standard-webhooks", "whsec_!!"
		}, "source.auth.signature.secret: starts with whsec_ but the rest is not base64"},
		{"tolerance", func(s *samsav1.Source) { s.Auth.Signature.Tolerance = "48h" }, "source.auth.signature.tolerance: 48h is out of range [1s, 24h]"},
		{"negative version", func(s *samsav1.Source) { s.Version = -1 }, "source.version: must not be negative"},
	}
	if err := ValidateSource(validSource()); err != nil {
		t.Fatalf("valid source: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := validSource()
			tc.mod(s)
			checkErr(t, ValidateSource(s), tc.want)
		})
	}
}

func TestValidateFlowErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(f *samsav1.Flow)
		want string
	}{
		{"name", func(f *samsav1.Flow) { f.Name = "a_b" }, `flow.name: name "a_b" must match`},
		{"no source", func(f *samsav1.Flow) { f.Source = "" }, "flow.source: required"},
		{"bad source", func(f *samsav1.Flow) { f.Source = "9x" }, `flow.source: name "9x" must match`},
		{"transform undefined", func(f *samsav1.Flow) {
			f.Transform = "def transform(event):\n    d = event.data\n    return {\"a\": d[\"x\"] * amout}\n"
		}, "flow.transform: line 3, column 27: undefined: amout"},
		{"transform syntax", func(f *samsav1.Flow) { f.Transform = "def transform(event)\n    return event\n" }, "flow.transform: line 2, column 1: got newline, want ':'"},
		{"transform missing function", func(f *samsav1.Flow) { f.Transform = "x = 1\n" }, "flow.transform: line 1, column 1: the program does not define a function transform(event)"},
		{"filter", func(f *samsav1.Flow) { f.Filter = `event.type ==` }, "flow.filter: line 1, column 14: got end of file, want primary expression"},
		{"filter undefined", func(f *samsav1.Flow) { f.Filter = `evnt.type == "x"` }, "flow.filter: line 1, column 1: undefined: evnt (did you mean event?)"},
		{"no destination", func(f *samsav1.Flow) { f.Destination = nil }, "flow.destination: required: one of http, kafka, postgres"},
		{"url required", func(f *samsav1.Flow) { httpDest(f).Url = "" }, "flow.destination.http.url: required"},
		{"url scheme", func(f *samsav1.Flow) { httpDest(f).Url = "ftp://x.example.com/" }, `flow.destination.http.url: scheme "ftp": want http or https`},
		{"url no host", func(f *samsav1.Flow) { httpDest(f).Url = "https:///path" }, "flow.destination.http.url: no host"},
		{"url unparsable", func(f *samsav1.Flow) { httpDest(f).Url = "https://exa mple.com/" }, `flow.destination.http.url: not a URL: invalid character " " in host name`},
		{"url credentials", func(f *samsav1.Flow) { httpDest(f).Url = "https://u:p@x.example.com/" }, "flow.destination.http.url: credentials in the URL would be stored in plain text: put them in secretHeaders (e.g. Authorization)"},
		{"url loopback", func(f *samsav1.Flow) { httpDest(f).Url = "http://127.0.0.1:9000/x" }, "flow.destination.http.url: host 127.0.0.1 is a loopback address; set allowPrivateNetwork to allow it"},
		{"url localhost", func(f *samsav1.Flow) { httpDest(f).Url = "http://localhost:9000/x" }, "flow.destination.http.url: host localhost is a loopback address; set allowPrivateNetwork to allow it"},
		{"url private", func(f *samsav1.Flow) { httpDest(f).Url = "http://10.1.2.3/x" }, "flow.destination.http.url: host 10.1.2.3 is a private network address; set allowPrivateNetwork to allow it"},
		{"url link-local", func(f *samsav1.Flow) { httpDest(f).Url = "http://169.254.169.254/latest" }, "flow.destination.http.url: host 169.254.169.254 is a cloud metadata service; set allowPrivateNetwork to allow it"},
		{"url metadata name", func(f *samsav1.Flow) { httpDest(f).Url = "http://metadata.google.internal/computeMetadata/v1/" }, "flow.destination.http.url: host metadata.google.internal is a cloud metadata service; set allowPrivateNetwork to allow it"},
		{"url decimal IPv4", func(f *samsav1.Flow) { httpDest(f).Url = "http://2130706433/" }, "flow.destination.http.url: host 2130706433 is an IPv4 address not in dotted-decimal form; set allowPrivateNetwork to allow it"},
		{"url hex IPv4", func(f *samsav1.Flow) { httpDest(f).Url = "http://0x7f.1/" }, "flow.destination.http.url: host 0x7f.1 is an IPv4 address not in dotted-decimal form; set allowPrivateNetwork to allow it"},
		{"url octal IPv4", func(f *samsav1.Flow) { httpDest(f).Url = "http://0177.0.0.1/" }, "flow.destination.http.url: host 0177.0.0.1 is an IPv4 address not in dotted-decimal form; set allowPrivateNetwork to allow it"},
		{"url NAT64", func(f *samsav1.Flow) { httpDest(f).Url = "http://[64:ff9b::a9fe:a9fe]/" }, "flow.destination.http.url: host 64:ff9b::a9fe:a9fe is a cloud metadata service (via NAT64); set allowPrivateNetwork to allow it"},
		{"url 6to4", func(f *samsav1.Flow) { httpDest(f).Url = "http://[2002:0a00:0001::1]/" }, "flow.destination.http.url: host 2002:0a00:0001::1 is a private network address (via 6to4); set allowPrivateNetwork to allow it"},
		{"header name", func(f *samsav1.Flow) { httpDest(f).Headers["Bad Header"] = "x" }, "flow.destination.http.headers[Bad Header]: not a valid header name"},
		{"header value", func(f *samsav1.Flow) { httpDest(f).Headers["X-A"] = "a\r\nB: c" }, "flow.destination.http.headers[X-A]: the value holds characters not allowed in a header (control characters, line breaks)"},
		{"reserved header", func(f *samsav1.Flow) { httpDest(f).Headers["webhook-signature"] = "x" }, "flow.destination.http.headers[webhook-signature]: set by Samsa on every request; it cannot be overridden"},
		{"header in both", func(f *samsav1.Flow) { httpDest(f).Headers["authorization"] = "x" }, "flow.destination.http.secretHeaders[Authorization]: also set in headers"},
		{"signing secret", func(f *samsav1.Flow) { httpDest(f).SigningSecret = "whsec_***" }, "flow.destination.http.signingSecret: starts with whsec_ but the rest is not base64"},
		{"tls on http", func(f *samsav1.Flow) {
			httpDest(f).Url = "http://crm.example.com/"
			httpDest(f).Tls = &samsav1.Tls{Enabled: true}
		}, "flow.destination.http.tls: set for an http:// url; use https://"},
		{"tls ca", func(f *samsav1.Flow) { httpDest(f).Tls = &samsav1.Tls{CaPem: "nope"} }, "flow.destination.http.tls.caPem: holds no PEM certificate"},
		{"tls key without cert", func(f *samsav1.Flow) { httpDest(f).Tls = &samsav1.Tls{KeyPem: "k"} }, "flow.destination.http.tls.certPem: required with keyPem"},
		{"tls cert without key", func(f *samsav1.Flow) { httpDest(f).Tls = &samsav1.Tls{CertPem: testCert} }, "flow.destination.http.tls.keyPem: required with certPem"},
		{"tls key mismatch", func(f *samsav1.Flow) { httpDest(f).Tls = &samsav1.Tls{CertPem: testCert, KeyPem: "garbage"} }, "flow.destination.http.tls.keyPem: does not go with certPem: tls: failed to find any PEM data in key input"},
		{"kafka topic", func(f *samsav1.Flow) {}, ""},
		{"kafka no topic", kafkaFlow(func(k *samsav1.KafkaDestination) { k.Topic = "" }), "flow.destination.kafka.topic: required"},
		{"kafka bad topic", kafkaFlow(func(k *samsav1.KafkaDestination) { k.Topic = "a/b" }), `flow.destination.kafka.topic: topic "a/b": character '/' not allowed (letters, digits, '.', '_', '-')`},
		{"kafka internal topic", kafkaFlow(func(k *samsav1.KafkaDestination) { k.Topic = "samsa.flows" }), "flow.destination.kafka.topic: samsa.flows is one of Samsa's own topics; only samsa.src.<source> topics may be written (to feed another source)"},
		{"kafka loop", kafkaFlow(func(k *samsav1.KafkaDestination) { k.Topic = "samsa.src.orders" }), "flow.destination.kafka.topic: samsa.src.orders is the flow's own source topic: every event would loop forever"},
		{"kafka broker", kafkaFlow(func(k *samsav1.KafkaDestination) { k.Brokers = []string{"kafka1"} }), `flow.destination.kafka.brokers[0]: "kafka1": want host:port`},
		{"kafka format", kafkaFlow(func(k *samsav1.KafkaDestination) { k.Format = "xml" }), `flow.destination.kafka.format: "xml" is not one of envelope, json, avro`},
		{"sasl mechanism", kafkaFlow(func(k *samsav1.KafkaDestination) {
			k.Brokers = []string{"k:9092"}
			k.Sasl = &samsav1.Sasl{Mechanism: "GSSAPI", Username: "u", Password: "p"}
		}), `flow.destination.kafka.sasl.mechanism: "GSSAPI" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"sasl password", kafkaFlow(func(k *samsav1.KafkaDestination) {
			k.Brokers = []string{"k:9092"}
			k.Sasl = &samsav1.Sasl{Mechanism: "PLAIN", Username: "u"}
		}), "flow.destination.kafka.sasl.password: required"},
		{"sasl without brokers", kafkaFlow(func(k *samsav1.KafkaDestination) {
			k.Sasl = &samsav1.Sasl{Mechanism: "PLAIN", Username: "u", Password: "p"}
		}), "flow.destination.kafka.brokers: required with tls or sasl (Samsa's own cluster uses its own settings)"},
		{"pg dsn", pgFlow(func(p *samsav1.PostgresDestination) { p.Dsn = "postgres://u:secretpw@db:notaport/x" }), "flow.destination.postgres.dsn: not a valid PostgreSQL connection string or URL"},
		{"pg no dsn", pgFlow(func(p *samsav1.PostgresDestination) { p.Dsn = "" }), "flow.destination.postgres.dsn: required"},
		{"pg table", pgFlow(func(p *samsav1.PostgresDestination) { p.Table = `orders"; drop table x; --` }), `flow.destination.postgres.table: "orders\"; drop table x; --" is not a plain identifier (letters, digits, _; not starting with a digit; at most 63)`},
		{"pg table parts", pgFlow(func(p *samsav1.PostgresDestination) { p.Table = "a.b.c" }), `flow.destination.postgres.table: "a.b.c": want table or schema.table`},
		{"pg id column", pgFlow(func(p *samsav1.PostgresDestination) { p.IdColumn = "1id" }), `flow.destination.postgres.idColumn: "1id" is not a plain identifier (letters, digits, _; not starting with a digit; at most 63)`},
		{"pg column", pgFlow(func(p *samsav1.PostgresDestination) { p.Columns = map[string]string{"to tal": "amount"} }), `flow.destination.postgres.columns[to tal]: "to tal" is not a plain identifier (letters, digits, _; not starting with a digit; at most 63)`},
		{"pg column path", pgFlow(func(p *samsav1.PostgresDestination) { p.Columns = map[string]string{"total": "a..b"} }), `flow.destination.postgres.columns[total]: "a..b" is not a payload field path (e.g. "amount" or "customer.id")`},
		{"pg column is id", pgFlow(func(p *samsav1.PostgresDestination) { p.Columns = map[string]string{"event_id": "id"} }), "flow.destination.postgres.columns[event_id]: is the id column, which holds the event id"},
		{"pg mode", pgFlow(func(p *samsav1.PostgresDestination) { p.Mode = "merge" }), `flow.destination.postgres.mode: "merge" is not one of upsert, insert`},
		{"retry initial syntax", func(f *samsav1.Flow) { f.Delivery.Retry.InitialBackoff = "1 second" }, `flow.delivery.retry.initialBackoff: "1 second" is not a duration (Go syntax: "500ms", "30s", "5m", "2h")`},
		{"retry initial > max", func(f *samsav1.Flow) { f.Delivery.Retry.InitialBackoff = "2m" }, "flow.delivery.retry.initialBackoff: 2m0s is longer than maxBackoff 1m0s"},
		{"retry initial > default max", func(f *samsav1.Flow) { f.Delivery.Retry.InitialBackoff, f.Delivery.Retry.MaxBackoff = "5m", "" }, "flow.delivery.retry.initialBackoff: 5m0s is longer than maxBackoff 1m0s"},
		{"retry max range", func(f *samsav1.Flow) { f.Delivery.Retry.MaxBackoff = "48h" }, "flow.delivery.retry.maxBackoff: 48h is out of range [1ms, 24h]"},
		{"retry elapsed", func(f *samsav1.Flow) { f.Delivery.Retry.MaxElapsed = "1000h" }, "flow.delivery.retry.maxElapsed: 1000h is out of range [1s, 720h]"},
		{"retry multiplier", func(f *samsav1.Flow) { f.Delivery.Retry.Multiplier = 0.5 }, "flow.delivery.retry.multiplier: 0.5 is out of range [1, 10]"},
		{"retry attempts", func(f *samsav1.Flow) { f.Delivery.Retry.MaxAttempts = -1 }, "flow.delivery.retry.maxAttempts: -1 is out of range [0, 1000]"},
		{"rate limit", func(f *samsav1.Flow) { f.Delivery.RateLimit.PerSecond = 2e6 }, "flow.delivery.rateLimit.perSecond: 2e+06 is out of range [0, 1000000]"},
		{"max in flight", func(f *samsav1.Flow) { f.Delivery.MaxInFlight = 20000 }, "flow.delivery.maxInFlight: 20000 is out of range [0, 10000]"},
		{"timeout syntax", func(f *samsav1.Flow) { f.Delivery.Timeout = "10" }, `flow.delivery.timeout: "10" is not a duration (Go syntax: "500ms", "30s", "5m", "2h")`},
		{"timeout range", func(f *samsav1.Flow) { f.Delivery.Timeout = "1h" }, "flow.delivery.timeout: 1h is out of range [1ms, 10m]"},
		{"cron", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].Cron = "0 2 * *" }, `flow.delivery.maintenanceWindows[0].cron: "0 2 * *": expected exactly 5 fields, found 4: [0 2 * *]`},
		{"cron value", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].Cron = "0 25 * * *" }, `flow.delivery.maintenanceWindows[0].cron: "0 25 * * *": end of range (25) above maximum (23): 25`},
		{"cron tz", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].Cron = "CRON_TZ=UTC 0 2 * * *" }, `flow.delivery.maintenanceWindows[0].cron: "CRON_TZ=UTC 0 2 * * *": set the time zone in timeZone, not in the expression`},
		{"cron required", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].Cron = "" }, `flow.delivery.maintenanceWindows[0].cron: required: five fields, minute hour day-of-month month day-of-week (e.g. "0 2 * * SUN")`},
		{"window duration", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].Duration = "" }, "flow.delivery.maintenanceWindows[0].duration: required"},
		{"window duration range", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].Duration = "30s" }, "flow.delivery.maintenanceWindows[0].duration: 30s is out of range [1m, 168h]"},
		{"time zone", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].TimeZone = "Mars/Olympus" }, `flow.delivery.maintenanceWindows[0].timeZone: "Mars/Olympus" is not an IANA time zone (e.g. "Europe/Berlin", "UTC")`},
		{"time zone local", func(f *samsav1.Flow) { f.Delivery.MaintenanceWindows[0].TimeZone = "Local" }, `flow.delivery.maintenanceWindows[0].timeZone: "Local" depends on the machine: name an IANA zone such as "Europe/Berlin"`},
		{"breaker threshold", func(f *samsav1.Flow) { f.Delivery.CircuitBreaker.FailureThreshold = -2 }, "flow.delivery.circuitBreaker.failureThreshold: -2 is out of range [0, 1000]"},
		{"breaker open", func(f *samsav1.Flow) { f.Delivery.CircuitBreaker.OpenDuration = "2h" }, "flow.delivery.circuitBreaker.openDuration: 2h is out of range [1s, 1h]"},
		{"ordering", func(f *samsav1.Flow) { f.Delivery.Ordering = "global" }, `flow.delivery.ordering: "global" is not one of key, none`},
		{"ramp up", func(f *samsav1.Flow) { f.Delivery.RampUp = "-1s" }, "flow.delivery.rampUp: -1s is out of range [0s, 1h]"},
		{"partitions", func(f *samsav1.Flow) { f.Partitions = -1 }, "flow.partitions: -1 is out of range [0, 1000]"},
		{"description", func(f *samsav1.Flow) { f.Description = strings.Repeat("é", 600) }, "flow.description: 1200 bytes, at most 1024"},
	}
	if err := ValidateFlow(validFlow()); err != nil {
		t.Fatalf("valid flow: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := validFlow()
			tc.mod(f)
			checkErr(t, ValidateFlow(f), tc.want)
		})
	}
}

// checkErr wants an ErrInvalid whose message starts with want (the whole
// message for most cases), or no error when want is empty.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v is not ErrInvalid", err)
	}
	if got := err.Error(); got != want && !(strings.HasSuffix(want, "must match") && strings.HasPrefix(got, want)) {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestValidateErrorsList(t *testing.T) {
	f := validFlow()
	f.Delivery.Timeout = "0s"
	f.Delivery.Ordering = "x"
	err := ValidateFlow(f)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("want two field errors, got %v", err)
	}
	want := `flow.delivery.timeout: 0s is out of range [1ms, 10m]; flow.delivery.ordering: "x" is not one of key, none`
	if err.Error() != want {
		t.Fatalf("got %s\nwant %s", err, want)
	}
	// A valid flow is not modified by validation.
	g, h := validFlow(), validFlow()
	_ = ValidateFlow(g)
	if !proto.Equal(g, h) {
		t.Fatal("validation modified the flow")
	}
}
