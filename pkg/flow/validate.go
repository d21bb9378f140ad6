package flow

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	// Maintenance windows name IANA zones; embedding the zone database
	// makes every service agree on them, even in images without
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/robfig/cron/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/netguard"
	"github.com/samsa-dev/samsa/pkg/script"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Bounds enforced by validation. They keep a typo ("10000h" for a timeout)
// from turning into a flow that looks stuck.
const (
	MaxPartitions     = 1000
	MaxDescription    = 1024
	MaxInFlight       = 10000
	MaxRatePerSecond  = 1_000_000
	MaxBurst          = 1_000_000
	MaxRetryAttempts  = 1000
	MaxRetryMultiple  = 10
	MaxBreakerFailure = 1000
	MinAPIKeyLength   = 16
	MaxAPIKeys        = 100
	MaxMaintenance    = 20
	MaxHeaders        = 64
)

// Duration bounds of each duration field.
var (
	retentionBounds      = bounds{time.Minute, 10 * 365 * 24 * time.Hour}
	toleranceBounds      = bounds{time.Second, 24 * time.Hour}
	timeoutBounds        = bounds{time.Millisecond, 10 * time.Minute}
	initialBackoffBounds = bounds{time.Millisecond, time.Hour}
	maxBackoffBounds     = bounds{time.Millisecond, 24 * time.Hour}
	maxElapsedBounds     = bounds{time.Second, 30 * 24 * time.Hour}
	windowBounds         = bounds{time.Minute, 7 * 24 * time.Hour}
	openDurationBounds   = bounds{time.Second, time.Hour}
	rampUpBounds         = bounds{0, time.Hour}
)

type bounds struct{ min, max time.Duration }

// Allowed values of the enumerated fields.
var (
	SourceFormats      = []string{"envelope", "json", "bytes"}
	KafkaFormats       = []string{"envelope", "json", "avro"}
	SignaturePresets   = []string{"github", "stripe", "standard-webhooks", "generic"}
	SignatureAlgos     = []string{"sha256", "sha1", "sha512"}
	SignatureEncodings = []string{"hex", "base64"}
	SASLMechanisms     = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	Orderings          = []string{"key", "none"}
	PostgresModes      = []string{"upsert", "insert"}
)

// reservedHeaders are set by the deliverer on every request; a flow may not
// override them.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "Transfer-Encoding": true, "Connection": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true,
}

// pgIdentRE is an unquoted PostgreSQL identifier: it needs no quoting rules
// in the deliverer's SQL and cannot smuggle any.
var pgIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// fieldPathRE is a path into the payload, "amount" or "customer.id".
var fieldPathRE = regexp.MustCompile(`^[^.\s]+(\.[^.\s]+)*$`)

// ValidateSource checks a source as it is about to be stored: defaults
// applied, secrets in plain text, API keys hashed. The error is a
// *ValidationError naming every offending field.
func ValidateSource(s *samsav1.Source) error {
	var c checker
	c.name("source.name", s.GetName())
	if len(c.errs) > 0 {
		// Everything else is judged against the source's own topic name.
		return c.err()
	}
	own := kafka.SourceTopic(s.GetName())
	switch t := s.GetTopic(); {
	case t == "":
		c.add("source.topic", "required")
	case kafka.ValidateTopic(t) != nil:
		c.add("source.topic", "%v", kafka.ValidateTopic(t))
	case t != own && strings.HasPrefix(t, "samsa."):
		c.add("source.topic", "%q is reserved for Samsa's own topics (the source's own topic is %s)", t, own)
	}
	c.oneOf("source.format", s.GetFormat(), SourceFormats)
	if s.GetTopic() == own && s.GetFormat() != "" && s.GetFormat() != "envelope" && slices.Contains(SourceFormats, s.GetFormat()) {
		c.add("source.format", "%s is written by the receiver in the envelope format; %q is only for other topics", own, s.GetFormat())
	}
	if s.GetTopic() != own {
		if s.GetPartitions() != 0 {
			c.add("source.partitions", "only for the source's own topic %s, which Samsa creates; %s is not Samsa's", own, s.GetTopic())
		}
		if s.GetRetention() != "" {
			c.add("source.retention", "only for the source's own topic %s, which Samsa creates; %s is not Samsa's", own, s.GetTopic())
		}
	}
	c.intRange("source.partitions", int64(s.GetPartitions()), 0, MaxPartitions)
	c.duration("source.retention", s.GetRetention(), retentionBounds)
	c.rateLimit("source.rateLimit", s.GetRateLimit())
	c.description("source.description", s.GetDescription())
	c.version("source.version", s.GetVersion())
	if a := s.GetAuth(); a != nil {
		c.apiKeys(a.GetApiKeys())
		if sig := a.GetSignature(); sig != nil {
			c.signature(sig)
		}
	}
	return c.err()
}

// ValidateFlow checks a flow as it is about to be stored (secrets in plain
// text), except that its source exists, which needs the store. The filter
// and the transform are compiled with opts.
func ValidateFlow(f *samsav1.Flow, opts ...script.Option) error {
	var c checker
	c.name("flow.name", f.GetName())
	if f.GetSource() == "" {
		c.add("flow.source", "required")
	} else if err := kafka.ValidateName(f.GetSource()); err != nil {
		c.add("flow.source", "%v", err)
	}
	if _, err := script.Compile(f.GetFilter(), f.GetTransform(), opts...); err != nil {
		var se *script.Error
		if errors.As(err, &se) {
			c.add("flow."+se.Stage, "%s", se.Error())
		} else {
			c.add("flow.transform", "%v", err)
		}
	}
	c.destination(f)
	c.delivery(f.GetDelivery())
	c.intRange("flow.partitions", int64(f.GetPartitions()), 0, MaxPartitions)
	c.description("flow.description", f.GetDescription())
	c.version("flow.version", f.GetVersion())
	return c.err()
}

// checker collects field errors.
type checker struct{ errs []FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: c.errs}
}

func (c *checker) name(field, v string) {
	if err := kafka.ValidateName(v); err != nil {
		c.add(field, "%v", err)
	}
}

func (c *checker) version(field string, v int64) {
	if v < 0 {
		c.add(field, "must not be negative")
	}
}

func (c *checker) description(field, v string) {
	if len(v) > MaxDescription {
		c.add(field, "%d bytes, at most %d", len(v), MaxDescription)
	}
}

func (c *checker) oneOf(field, v string, allowed []string) {
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.add(field, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func (c *checker) intRange(field string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.add(field, "%d is out of range [%d, %d]", v, lo, hi)
	}
}

// duration checks an optional duration field and returns its value (0 when
// empty or invalid).
func (c *checker) duration(field, v string, b bounds) time.Duration {
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		c.add(field, "%q is not a duration (Go syntax: \"500ms\", \"30s\", \"5m\", \"2h\")", v)
		return 0
	}
	if d < b.min || d > b.max {
		c.add(field, "%s is out of range [%s, %s]", v, fmtDuration(b.min), fmtDuration(b.max))
		return 0
	}
	return d
}

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

func (c *checker) rateLimit(field string, rl *samsav1.RateLimit) {
	if rl == nil {
		return
	}
	ps := rl.GetPerSecond()
	switch {
	case math.IsNaN(ps) || math.IsInf(ps, 0) || ps < 0 || ps > MaxRatePerSecond:
		c.add(field+".perSecond", "%v is out of range [0, %d]", ps, MaxRatePerSecond)
	case ps == 0 && rl.GetBurst() != 0:
		c.add(field+".burst", "set without perSecond")
	}
	c.intRange(field+".burst", int64(rl.GetBurst()), 0, MaxBurst)
}

func (c *checker) apiKeys(keys []*samsav1.ApiKey) {
	if len(keys) > MaxAPIKeys {
		c.add("source.auth.apiKeys", "%d keys, at most %d", len(keys), MaxAPIKeys)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		f := fmt.Sprintf("source.auth.apiKeys[%d]", i)
		switch {
		case k.GetName() == "":
			c.add(f+".name", "required (it identifies the key in logs and for rotation)")
		case seen[k.GetName()]:
			c.add(f+".name", "%q is used by another key", k.GetName())
		case len(k.GetName()) > 63:
			c.add(f+".name", "at most 63 characters")
		}
		seen[k.GetName()] = true
		if k.GetKey() != "" {
			c.add(f+".key", "internal: key not hashed before validation")
		}
		if h := k.GetHash(); len(h) != 64 || !isLowerHex(h) {
			c.add(f+".hash", "want the 64 hex digits of the key's SHA-256")
		}
	}
}

func isLowerHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func (c *checker) signature(sig *samsav1.Signature) {
	const f = "source.auth.signature"
	if sig.GetPreset() == "" {
		c.add(f+".preset", "required: one of %s", strings.Join(SignaturePresets, ", "))
	} else {
		c.oneOf(f+".preset", sig.GetPreset(), SignaturePresets)
	}
	if sig.GetSecret() == "" {
		c.add(f+".secret", "required")
	}
	if sig.GetPreset() == "generic" {
		if sig.GetHeader() == "" {
			c.add(f+".header", "required for preset generic")
		} else if !httpguts.ValidHeaderFieldName(sig.GetHeader()) {
			c.add(f+".header", "%q is not a valid header name", sig.GetHeader())
		}
		c.oneOf(f+".algorithm", sig.GetAlgorithm(), SignatureAlgos)
		c.oneOf(f+".encoding", sig.GetEncoding(), SignatureEncodings)
	} else if sig.GetPreset() != "" {
		for _, nv := range [][2]string{{"header", sig.GetHeader()}, {"algorithm", sig.GetAlgorithm()}, {"encoding", sig.GetEncoding()}, {"prefix", sig.GetPrefix()}} {
			if nv[1] != "" {
				c.add(f+"."+nv[0], "only for preset generic (preset %s fixes it)", sig.GetPreset())
			}
		}
	}
	if sig.GetPreset() == "standard-webhooks" && strings.HasPrefix(sig.GetSecret(), "whsec_") {
		if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig.GetSecret(), "whsec_")); err != nil {
			c.add(f+".secret", "starts with whsec_ but the rest is not base64")
		}
	}
	c.duration(f+".tolerance", sig.GetTolerance(), toleranceBounds)
}

func (c *checker) destination(fl *samsav1.Flow) {
	d := fl.GetDestination()
	switch {
	case d.GetHttp() != nil:
		c.httpDestination(d.GetHttp())
	case d.GetKafka() != nil:
		c.kafkaDestination(fl, d.GetKafka())
	case d.GetPostgres() != nil:
		c.postgresDestination(d.GetPostgres())
	default:
		c.add("flow.destination", "required: one of http, kafka, postgres")
	}
}

func (c *checker) httpDestination(h *samsav1.HttpDestination) {
	const f = "flow.destination.http"
	c.url(f+".url", h.GetUrl(), h.GetAllowPrivateNetwork())
	c.headers(f+".headers", h.GetHeaders())
	c.headers(f+".secretHeaders", h.GetSecretHeaders())
	for _, k := range sortedKeys(h.GetSecretHeaders()) {
		for p := range h.GetHeaders() {
			if strings.EqualFold(p, k) {
				c.add(f+".secretHeaders["+k+"]", "also set in headers")
			}
		}
	}
	if s := h.GetSigningSecret(); strings.HasPrefix(s, "whsec_") {
		if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_")); err != nil {
			c.add(f+".signingSecret", "starts with whsec_ but the rest is not base64")
		}
	}
	if t := h.GetTls(); t != nil {
		if strings.HasPrefix(strings.ToLower(h.GetUrl()), "http://") && (t.GetEnabled() || t.GetCertPem() != "" || t.GetCaPem() != "") {
			c.add(f+".tls", "set for an http:// url; use https://")
		}
		c.tls(f+".tls", t)
	}
}

func (c *checker) url(field, raw string, allowPrivate bool) {
	if raw == "" {
		c.add(field, "required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		c.add(field, "not a URL: %v", stripURLErr(err))
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		c.add(field, "scheme %q: want http or https", u.Scheme)
		return
	}
	if u.Hostname() == "" {
		c.add(field, "no host")
		return
	}
	if u.User != nil {
		c.add(field, "credentials in the URL would be stored in plain text: put them in secretHeaders (e.g. Authorization)")
		return
	}
	if u.Fragment != "" {
		c.add(field, "has a fragment (#...), which is never sent")
		return
	}
	if allowPrivate {
		return
	}
	reason := netguard.RefusedHost(u.Hostname())
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		reason = netguard.Refused(ip)
	}
	if reason != "" {
		c.add(field, "host %s is %s; set allowPrivateNetwork to allow it", u.Hostname(), reason)
	}
}

// stripURLErr drops the URL itself from url.Parse errors: it may hold
// credentials.
func stripURLErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *checker) headers(field string, h map[string]string) {
	if len(h) > MaxHeaders {
		c.add(field, "%d headers, at most %d", len(h), MaxHeaders)
	}
	for _, k := range sortedKeys(h) {
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			c.add(field+"["+k+"]", "not a valid header name")
		case reservedHeaders[canonicalHeader(k)]:
			c.add(field+"["+k+"]", "set by Samsa on every request; it cannot be overridden")
		case !httpguts.ValidHeaderFieldValue(h[k]):
			c.add(field+"["+k+"]", "the value holds characters not allowed in a header (control characters, line breaks)")
		}
	}
}

func canonicalHeader(k string) string {
	parts := strings.Split(strings.ToLower(k), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *checker) tls(field string, t *samsav1.Tls) {
	if ca := t.GetCaPem(); ca != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(ca)) {
			c.add(field+".caPem", "holds no PEM certificate")
		}
	}
	switch cert, key := t.GetCertPem(), t.GetKeyPem(); {
	case cert == "" && key == "":
	case cert == "":
		c.add(field+".certPem", "required with keyPem")
	case key == "":
		c.add(field+".keyPem", "required with certPem")
	default:
		if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
			// The error text of X509KeyPair never quotes the key.
			if b, _ := pem.Decode([]byte(cert)); b == nil {
				c.add(field+".certPem", "holds no PEM certificate")
			} else {
				c.add(field+".keyPem", "does not go with certPem: %v", err)
			}
		}
	}
	if sn := t.GetServerName(); sn != "" && strings.ContainsAny(sn, " /:") {
		c.add(field+".serverName", "%q is not a host name", sn)
	}
}

func (c *checker) kafkaDestination(fl *samsav1.Flow, k *samsav1.KafkaDestination) {
	const f = "flow.destination.kafka"
	switch t := k.GetTopic(); {
	case t == "":
		c.add(f+".topic", "required")
	case kafka.ValidateTopic(t) != nil:
		c.add(f+".topic", "%v", kafka.ValidateTopic(t))
	case len(k.GetBrokers()) == 0 && isInternalTopic(t):
		c.add(f+".topic", "%s is one of Samsa's own topics; only samsa.src.<source> topics may be written (to feed another source)", t)
	case len(k.GetBrokers()) == 0 && t == kafka.SourceTopic(fl.GetSource()):
		c.add(f+".topic", "%s is the flow's own source topic: every event would loop forever", t)
	}
	for i, b := range k.GetBrokers() {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			c.add(fmt.Sprintf("%s.brokers[%d]", f, i), "%q: want host:port", b)
		}
	}
	c.oneOf(f+".format", k.GetFormat(), KafkaFormats)
	if t := k.GetTls(); t != nil {
		c.tls(f+".tls", t)
	}
	if s := k.GetSasl(); s != nil {
		if s.GetMechanism() == "" {
			c.add(f+".sasl.mechanism", "required: one of %s", strings.Join(SASLMechanisms, ", "))
		} else {
			c.oneOf(f+".sasl.mechanism", s.GetMechanism(), SASLMechanisms)
		}
		if s.GetUsername() == "" {
			c.add(f+".sasl.username", "required")
		}
		if s.GetPassword() == "" {
			c.add(f+".sasl.password", "required")
		}
	}
	if (k.GetTls() != nil || k.GetSasl() != nil) && len(k.GetBrokers()) == 0 {
		c.add(f+".brokers", "required with tls or sasl (Samsa's own cluster uses its own settings)")
	}
}

// isInternalTopic reports whether a topic is Samsa's and not a source topic.
func isInternalTopic(t string) bool {
	return strings.HasPrefix(t, "samsa.") && !strings.HasPrefix(t, "samsa.src.")
}

func (c *checker) postgresDestination(p *samsav1.PostgresDestination) {
	const f = "flow.destination.postgres"
	if p.GetDsn() == "" {
		c.add(f+".dsn", "required")
	} else if _, err := pgconn.ParseConfig(p.GetDsn()); err != nil {
		// The parser's message may quote the DSN, password and all.
		c.add(f+".dsn", "not a valid PostgreSQL connection string or URL")
	}
	if p.GetTable() == "" {
		c.add(f+".table", "required")
	} else {
		parts := strings.Split(p.GetTable(), ".")
		if len(parts) > 2 {
			c.add(f+".table", "%q: want table or schema.table", p.GetTable())
		}
		for _, part := range parts {
			if !pgIdentRE.MatchString(part) {
				c.add(f+".table", "%q is not a plain identifier (letters, digits, _; not starting with a digit; at most 63)", p.GetTable())
				break
			}
		}
	}
	c.ident(f+".idColumn", p.GetIdColumn())
	c.ident(f+".jsonColumn", p.GetJsonColumn())
	idCol := p.GetIdColumn()
	if idCol == "" {
		idCol = "event_id"
	}
	for _, col := range sortedKeys(p.GetColumns()) {
		field := f + ".columns[" + col + "]"
		switch {
		case !pgIdentRE.MatchString(col):
			c.add(field, "%q is not a plain identifier (letters, digits, _; not starting with a digit; at most 63)", col)
		case strings.EqualFold(col, idCol):
			c.add(field, "is the id column, which holds the event id")
		case !fieldPathRE.MatchString(p.GetColumns()[col]):
			c.add(field, "%q is not a payload field path (e.g. \"amount\" or \"customer.id\")", p.GetColumns()[col])
		}
	}
	if len(p.GetColumns()) > 0 && p.GetJsonColumn() != "" {
		c.add(f+".jsonColumn", "only used when columns is empty")
	}
	c.oneOf(f+".mode", p.GetMode(), PostgresModes)
}

func (c *checker) ident(field, v string) {
	if v != "" && !pgIdentRE.MatchString(v) {
		c.add(field, "%q is not a plain identifier (letters, digits, _; not starting with a digit; at most 63)", v)
	}
}

func (c *checker) delivery(d *samsav1.Delivery) {
	if d == nil {
		return
	}
	const f = "flow.delivery"
	if r := d.GetRetry(); r != nil {
		initial := c.duration(f+".retry.initialBackoff", r.GetInitialBackoff(), initialBackoffBounds)
		maxB := c.duration(f+".retry.maxBackoff", r.GetMaxBackoff(), maxBackoffBounds)
		if initial == 0 && r.GetInitialBackoff() == "" {
			initial = 500 * time.Millisecond
		}
		if maxB == 0 && r.GetMaxBackoff() == "" {
			maxB = time.Minute
		}
		if initial > 0 && maxB > 0 && initial > maxB {
			c.add(f+".retry.initialBackoff", "%s is longer than maxBackoff %s", initial, maxB)
		}
		c.duration(f+".retry.maxElapsed", r.GetMaxElapsed(), maxElapsedBounds)
		if m := r.GetMultiplier(); m != 0 && (math.IsNaN(m) || m < 1 || m > MaxRetryMultiple) {
			c.add(f+".retry.multiplier", "%v is out of range [1, %d]", m, MaxRetryMultiple)
		}
		c.intRange(f+".retry.maxAttempts", int64(r.GetMaxAttempts()), 0, MaxRetryAttempts)
	}
	c.rateLimit(f+".rateLimit", d.GetRateLimit())
	c.intRange(f+".maxInFlight", int64(d.GetMaxInFlight()), 0, MaxInFlight)
	c.duration(f+".timeout", d.GetTimeout(), timeoutBounds)
	if len(d.GetMaintenanceWindows()) > MaxMaintenance {
		c.add(f+".maintenanceWindows", "%d windows, at most %d", len(d.GetMaintenanceWindows()), MaxMaintenance)
	}
	for i, w := range d.GetMaintenanceWindows() {
		c.window(fmt.Sprintf("%s.maintenanceWindows[%d]", f, i), w)
	}
	if cb := d.GetCircuitBreaker(); cb != nil {
		if t := cb.GetFailureThreshold(); t != -1 {
			c.intRange(f+".circuitBreaker.failureThreshold", int64(t), 0, MaxBreakerFailure)
		}
		c.duration(f+".circuitBreaker.openDuration", cb.GetOpenDuration(), openDurationBounds)
	}
	c.oneOf(f+".ordering", d.GetOrdering(), Orderings)
	c.duration(f+".rampUp", d.GetRampUp(), rampUpBounds)
}

func (c *checker) window(f string, w *samsav1.MaintenanceWindow) {
	if len(w.GetName()) > 63 {
		c.add(f+".name", "at most 63 characters")
	}
	if w.GetCron() == "" {
		c.add(f+".cron", "required: five fields, minute hour day-of-month month day-of-week (e.g. \"0 2 * * SUN\")")
	} else if _, err := ParseCron(w.GetCron()); err != nil {
		c.add(f+".cron", "%v", err)
	}
	if w.GetDuration() == "" {
		c.add(f+".duration", "required")
	} else {
		c.duration(f+".duration", w.GetDuration(), windowBounds)
	}
	if _, err := LoadZone(w.GetTimeZone()); err != nil {
		c.add(f+".timeZone", "%v", err)
	}
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses the cron expression of a maintenance window: five fields
// (minute hour day-of-month month day-of-week) or a descriptor such as
// @daily. The time zone is the window's timeZone, never part of the
// expression.
func ParseCron(expr string) (cron.Schedule, error) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("%q: set the time zone in timeZone, not in the expression", expr)
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", expr, err)
	}
	return s, nil
}

// LoadZone returns the location of a maintenance window's time zone, an
// IANA name; empty means UTC.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("%q depends on the machine: name an IANA zone such as \"Europe/Berlin\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone (e.g. \"Europe/Berlin\", \"UTC\")", name)
	}
	return loc, nil
}
