// Package httpdest delivers events as HTTP POST requests signed the
// Standard Webhooks way (DESIGN.md §5): the body is the event's payload,
// webhook-id is the event id (the receiver's idempotency key),
// webhook-timestamp and webhook-signature prove the sender, and the event's
// CloudEvents attributes travel as ce-* headers.
//
// Each destination owns one tuned http.Transport, so connections to it are
// kept alive and reused across events. Every connection is checked at dial
// time against the server-side request forgery guard (see RefusedError).
package httpdest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// Config is one HTTP destination. Secret values must be opened already.
type Config struct {
	URL string
	// Headers are sent with every request (plain and opened secret headers).
	Headers map[string]string
	// SigningSecret signs requests; empty sends them unsigned.
	SigningSecret string
	// AllowPrivateNetwork lets requests reach loopback, private, link-local
	// and metadata addresses.
	AllowPrivateNetwork bool
	// TLS is the client TLS configuration; nil means the system roots.
	TLS *tls.Config
	// Timeout bounds one attempt, from dialling to the end of the response
	// headers. Default 10s.
	Timeout time.Duration
	// MaxConns is how many connections are kept alive (the flow's
	// max_in_flight). Default 64.
	MaxConns int
	// Now is the clock for webhook-timestamp. Default time.Now.
	Now func() time.Time
}

// Destination is an HTTP destination.
type Destination struct {
	cfg      Config
	url      string
	host     string
	signer   *Signer
	tr       *http.Transport
	hostErr  error
	headers  http.Header
	userAgnt string
}

// maxDrain is how much of a response body is read, beyond the excerpt kept
// for dead letters, so that the connection can be reused.
const maxDrain = 64 << 10

// New validates cfg and returns a destination. It does not connect.
func New(cfg Config) (*Destination, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("http destination: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http destination: url %q: scheme must be http or https", cfg.URL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("http destination: url %q has no host", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Destination{cfg: cfg, url: u.String(), host: u.Hostname(), userAgnt: "samsa-deliverer/1"}
	if cfg.SigningSecret != "" {
		if d.signer, err = NewSigner(cfg.SigningSecret); err != nil {
			return nil, fmt.Errorf("http destination: %w", err)
		}
	}
	d.headers = make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("http destination: header name %q is not a valid HTTP token", k)
		}
		d.headers.Set(k, v)
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivateNetwork {
		dialer.Control = control
		d.hostErr = checkHost(d.host)
	}
	d.tr = &http.Transport{
		// No proxy: a proxy would dial on our behalf and bypass the guard.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg.TLS,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		DisableCompression:    true,
	}
	// Redirects are not followed (requests go to the transport, not a
	// client): a webhook endpoint that redirects is misconfigured, and
	// following could leave the checked host.
	return d, nil
}

// Capabilities: one request per event, as many at once as the flow allows.
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{MaxBatch: 1}
}

// Close closes idle connections.
func (d *Destination) Close() error {
	d.tr.CloseIdleConnections()
	return nil
}

// Deliver sends one request per item.
func (d *Destination) Deliver(ctx context.Context, items []destination.Item, results []destination.Result) {
	for i := range items {
		results[i] = d.deliver(ctx, &items[i])
	}
}

func (d *Destination) deliver(ctx context.Context, it *destination.Item) destination.Result {
	if d.hostErr != nil {
		return destination.Result{Class: destination.Permanent, Status: "refused", Err: d.hostErr.Error()}
	}
	ev := it.Event
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(ev.Data))
	if err != nil {
		return destination.Result{Class: destination.Permanent, Status: "request", Err: err.Error()}
	}
	h := make(http.Header, len(d.headers)+16)
	req.Header = h
	for k, v := range d.headers {
		h[k] = v
	}
	ct := ev.ContentType
	if ct == "" {
		ct = "application/json"
	}
	ts := d.cfg.Now().Unix()
	// One backing array for the header values of a request.
	vals := make([]string, 0, 14)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set("Content-Type", ct)
	set("User-Agent", d.userAgnt)
	set("Webhook-Id", ev.ID)
	set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	if d.signer != nil {
		set("Webhook-Signature", d.signer.Sign(ev.ID, ts, ev.Data))
	}
	setCloudEvents(h, it, set)
	// A traced event gets a span per attempt; the destination receives the
	// span's context, so its own spans join the trace.
	if ev.TraceParent != "" {
		sctx, span := tracer.Start(telemetry.EventContext(ctx, ev), "samsa.deliver",
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("samsa.event_id", ev.ID), attribute.String("http.url", d.url)))
		if span.IsRecording() {
			var c event.Event
			telemetry.InjectEvent(sctx, &c)
			set("Traceparent", c.TraceParent)
			defer span.End()
			res := d.roundTrip(ctx, req)
			span.SetAttributes(attribute.String("samsa.status", res.Status))
			if res.Class != destination.Success {
				span.SetStatus(codes.Error, res.Err)
			}
			return res
		}
		span.End()
	}
	return d.roundTrip(ctx, req)
}

// roundTrip sends one request and classifies its outcome.
func (d *Destination) roundTrip(ctx context.Context, req *http.Request) destination.Result {
	// The transport directly: the client would copy the headers for
	// redirects, which are not followed anyway.
	resp, err := d.tr.RoundTrip(req)
	if err != nil {
		return classifyError(ctx, err)
	}
	var excerpt []byte
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		excerpt, _ = io.ReadAll(io.LimitReader(resp.Body, dlq.MaxResponseExcerpt))
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
	return classifyStatus(resp, excerpt, d.cfg.Now())
}

// tracer records the deliverer's spans (the global provider).
var tracer = telemetry.Tracer("deliverer")

// setCloudEvents sets the CloudEvents binary-mode headers: the context
// attributes and every extension attribute whose name is a valid header.
func setCloudEvents(h http.Header, it *destination.Item, set func(k, v string)) {
	ev := it.Event
	set("Ce-Specversion", "1.0")
	set("Ce-Id", ev.ID)
	if ev.Source != "" {
		set("Ce-Source", ev.Source)
	}
	if ev.Type != "" {
		set("Ce-Type", ev.Type)
	}
	if ev.Subject != "" {
		set("Ce-Subject", ev.Subject)
	}
	if !ev.Time.IsZero() {
		var buf [40]byte
		set("Ce-Time", string(ev.Time.UTC().AppendFormat(buf[:0], time.RFC3339Nano)))
	}
	for k, v := range ev.Attributes {
		if !validHeaderName(k) || !validHeaderValue(v) {
			continue
		}
		switch strings.ToLower(k) {
		case "id", "source", "type", "subject", "time", "specversion", "datacontenttype":
			continue // context attributes come from the envelope
		}
		h.Set("ce-"+k, v)
	}
	if ev.TraceParent != "" {
		set("Traceparent", ev.TraceParent)
		if ev.TraceState != "" {
			set("Tracestate", ev.TraceState)
		}
	}
}

// classifyStatus maps a response to a result (DESIGN.md §5): 2xx success;
// 408, 429 and 5xx retryable; anything else permanent.
func classifyStatus(resp *http.Response, excerpt []byte, now time.Time) destination.Result {
	code := resp.StatusCode
	r := destination.Result{Status: strconv.Itoa(code), Response: destination.Excerpt(excerpt, dlq.MaxResponseExcerpt)}
	switch {
	case code >= 200 && code < 300:
		r.Class = destination.Success
		r.Response = ""
		return r
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		r.Class = destination.Retryable
		r.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		r.Throttled = code == http.StatusTooManyRequests
	case code >= 300 && code < 400:
		r.Class = destination.Permanent
		r.Err = fmt.Sprintf("HTTP %d: redirects are not followed (location %q)", code, resp.Header.Get("Location"))
		return r
	default:
		r.Class = destination.Permanent
	}
	r.Err = "HTTP " + resp.Status
	return r
}

func classifyError(ctx context.Context, err error) destination.Result {
	if ctx.Err() == context.Canceled {
		// The deliverer is stopping or the partition moved away: the
		// attempt says nothing about the destination.
		return destination.Result{Class: destination.Requeue, Status: "canceled", Err: err.Error()}
	}
	var refused *RefusedError
	if errors.As(err, &refused) {
		return destination.Result{Class: destination.Permanent, Status: "refused", Err: refused.Error()}
	}
	var uerr *url.Error
	msg := err.Error()
	if errors.As(err, &uerr) {
		msg = uerr.Err.Error()
	}
	var (
		certErr   *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid):
		return destination.Result{Class: destination.Retryable, Status: "tls", Err: msg}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return destination.Result{Class: destination.Retryable, Status: "timeout", Err: msg}
	}
	return destination.Result{Class: destination.Retryable, Status: "connection", Err: msg}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date. It returns 0 when the header is absent or unparsable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > 365*24*3600 {
			secs = 365 * 24 * 3600
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
