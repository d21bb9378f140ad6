// Package ingestauth authenticates producers at the receiver's front door,
// per source: bearer API keys, compared in constant time against the SHA-256
// hashes stored in the source (see secret.HashKey), and HMAC signatures of
// webhook bodies, with presets for the common senders:
//
//   - "github": X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//   - "stripe": Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>
//     (several v1 entries during secret rotation), with a timestamp tolerance
//   - "standard-webhooks": webhook-id, webhook-timestamp and webhook-signature:
//     v1,<base64 HMAC-SHA256(key, id.timestamp.body)> (space-separated list),
//     the key being the base64 part of a "whsec_" secret, with a tolerance
//   - "generic": a configured header, algorithm (sha256, sha1, sha512),
//     encoding (hex, base64) and optional prefix such as "sha256=", over the
//     body alone.
//
// When a source has both API keys and a signature, either one suffices.
package ingestauth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Presets are the signature presets, as Signature.preset names them.
const (
	PresetGitHub           = "github"
	PresetStripe           = "stripe"
	PresetStandardWebhooks = "standard-webhooks"
	PresetGeneric          = "generic"
)

// DefaultTolerance is how far the timestamp of a timestamped scheme (stripe,
// standard-webhooks) may be from the receiver's clock, either way. Both
// Stripe's and the Standard Webhooks libraries default to five minutes.
const DefaultTolerance = 5 * time.Minute

// Header names of the presets.
const (
	HeaderGitHub          = "X-Hub-Signature-256"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderStripe          = "Stripe-Signature"
	HeaderWebhookID       = "Webhook-Id"
	HeaderWebhookTime     = "Webhook-Timestamp"
	HeaderWebhookSig      = "Webhook-Signature"
	standardWebhookPrefix = "whsec_"
)

// Verifier authenticates the requests of one source. Build it with New when
// the source is loaded (or changes); it is immutable and safe for
// concurrent use.
type Verifier struct {
	keyHashes [][]byte // hex SHA-256 of each API key
	keyNames  []string
	sig       *signature
	now       func() time.Time
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithClock makes the Verifier read the time from now instead of
// time.Now, for tests of timestamp tolerance.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// New returns the Verifier of a source's auth (nil: none configured). open
// decrypts the sealed signing secret (secret.Box.Open); it may be nil when
// the secret is not sealed. New fails when the configuration is invalid or
// the secret cannot be opened.
func New(auth *samsav1.SourceAuth, open func(string) (string, error), opts ...Option) (*Verifier, error) {
	v := &Verifier{now: time.Now}
	for _, o := range opts {
		o(v)
	}
	for i, k := range auth.GetApiKeys() {
		h := strings.ToLower(k.GetHash())
		if h == "" && k.GetKey() != "" && !secret.IsSealed(k.GetKey()) {
			// A key written in plain text by an older writer: hash it here.
			h = secret.HashKey(k.GetKey())
		}
		if len(h) != sha256.Size*2 {
			return nil, fmt.Errorf("%w: api_keys[%d] (%q): hash is not a hex SHA-256", ErrConfig, i, k.GetName())
		}
		if _, err := hex.DecodeString(h); err != nil {
			return nil, fmt.Errorf("%w: api_keys[%d] (%q): hash is not a hex SHA-256", ErrConfig, i, k.GetName())
		}
		v.keyHashes = append(v.keyHashes, []byte(h))
		v.keyNames = append(v.keyNames, k.GetName())
	}
	if s := auth.GetSignature(); s != nil {
		sec := s.GetSecret()
		if secret.IsSealed(sec) {
			if open == nil {
				return nil, fmt.Errorf("%w: signature secret is encrypted and no decryption key is configured", ErrConfig)
			}
			var err error
			if sec, err = open(sec); err != nil {
				return nil, fmt.Errorf("%w: signature secret: %w", ErrConfig, err)
			}
		}
		sig, err := newSignature(s, sec)
		if err != nil {
			return nil, err
		}
		v.sig = sig
	}
	return v, nil
}

// Configured reports whether the source has any auth: without, the
// receiver accepts its requests only in insecure (development) mode.
func (v *Verifier) Configured() bool { return len(v.keyHashes) > 0 || v.sig != nil }

// HasSignature reports whether a signature is configured, so that the
// caller knows it must read the body before authenticating.
func (v *Verifier) HasSignature() bool { return v.sig != nil }

// Preset is the signature preset, or "" without a signature.
func (v *Verifier) Preset() string {
	if v.sig == nil {
		return ""
	}
	return v.sig.preset
}

// CheckAPIKey checks the value of an Authorization header ("Bearer <key>")
// against the source's keys and returns the matching key's name. Every
// stored hash is compared, in constant time, whatever matches.
func (v *Verifier) CheckAPIKey(authorization string) (string, error) {
	if authorization == "" {
		return "", fail(ReasonMissingCredentials, "missing credentials: send Authorization: Bearer <api key>")
	}
	scheme, key, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", fail(ReasonMalformedCredentials, "malformed Authorization header: want Bearer <api key>")
	}
	if len(v.keyHashes) == 0 {
		return "", fail(ReasonInvalidAPIKey, "invalid API key: this source accepts no API keys")
	}
	h := []byte(secret.HashKey(strings.TrimSpace(key)))
	match := -1
	for i, want := range v.keyHashes {
		if subtle.ConstantTimeCompare(h, want) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", fail(ReasonInvalidAPIKey, "invalid API key")
	}
	return v.keyNames[match], nil
}

// VerifySignature checks the request's signature headers against body.
func (v *Verifier) VerifySignature(h http.Header, body []byte) error {
	if v.sig == nil {
		return fail(ReasonMissingCredentials, "missing credentials: this source accepts no signatures")
	}
	return v.sig.verify(h, body, v.now())
}

// Authenticate accepts a request that carries a valid API key or, failing
// that, a valid signature (when both are configured, either suffices). The
// error names what was wrong with the credentials the request did carry.
func (v *Verifier) Authenticate(h http.Header, body []byte) error {
	authz := h.Get("Authorization")
	if v.sig == nil {
		_, err := v.CheckAPIKey(authz)
		return err
	}
	var keyErr error
	if authz != "" {
		if _, keyErr = v.CheckAPIKey(authz); keyErr == nil {
			return nil
		}
	}
	err := v.sig.verify(h, body, v.now())
	if err == nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) && ae.Reason == ReasonMissingSignature {
		if keyErr != nil {
			return keyErr // the request tried a key, not a signature
		}
		if len(v.keyHashes) > 0 {
			return fail(ReasonMissingCredentials, "missing credentials: send Authorization: Bearer <api key> or a signature in "+v.sig.header)
		}
	}
	return err
}

// ValidateSignature checks a signature configuration the way New does, for
// writers that want to reject a bad configuration up front. The secret is
// not checked when sealed.
func ValidateSignature(s *samsav1.Signature) error {
	sec := s.GetSecret()
	if secret.IsSealed(sec) {
		sec = "sealed"
	}
	_, err := newSignature(s, sec)
	return err
}

// signature is a parsed, ready-to-use signature configuration.
type signature struct {
	preset    string
	key       []byte
	newHash   func() hash.Hash
	header    string
	prefix    string
	base64    bool
	tolerance time.Duration
}

func newSignature(s *samsav1.Signature, sec string) (*signature, error) {
	if sec == "" {
		return nil, fmt.Errorf("%w: signature.secret is empty", ErrConfig)
	}
	sig := &signature{preset: s.GetPreset(), key: []byte(sec), newHash: sha256.New, tolerance: DefaultTolerance}
	if t := s.GetTolerance(); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: signature.tolerance %q: want a positive duration such as 5m", ErrConfig, t)
		}
		sig.tolerance = d
	}
	switch sig.preset {
	case PresetGitHub:
		sig.header, sig.prefix = HeaderGitHub, "sha256="
	case PresetStripe:
		sig.header = HeaderStripe
	case PresetStandardWebhooks:
		sig.header = HeaderWebhookSig
		if b64, ok := strings.CutPrefix(sec, standardWebhookPrefix); ok {
			key, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("%w: signature.secret: a whsec_ secret must be followed by base64: %w", ErrConfig, err)
			}
			sig.key = key
		}
	case PresetGeneric:
		sig.header = http.CanonicalHeaderKey(strings.TrimSpace(s.GetHeader()))
		if sig.header == "" {
			return nil, fmt.Errorf("%w: signature.header is required for the generic preset", ErrConfig)
		}
		switch strings.ToLower(s.GetAlgorithm()) {
		case "", "sha256":
		case "sha1":
			sig.newHash = sha1.New
		case "sha512":
			sig.newHash = sha512.New
		default:
			return nil, fmt.Errorf("%w: signature.algorithm %q: want sha256, sha1 or sha512", ErrConfig, s.GetAlgorithm())
		}
		switch strings.ToLower(s.GetEncoding()) {
		case "", "hex":
		case "base64":
			sig.base64 = true
		default:
			return nil, fmt.Errorf("%w: signature.encoding %q: want hex or base64", ErrConfig, s.GetEncoding())
		}
		sig.prefix = s.GetPrefix()
	default:
		return nil, fmt.Errorf("%w: signature.preset %q: want github, stripe, standard-webhooks or generic", ErrConfig, sig.preset)
	}
	return sig, nil
}

func (s *signature) mac(parts ...[]byte) []byte {
	m := hmac.New(s.newHash, s.key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func (s *signature) verify(h http.Header, body []byte, now time.Time) error {
	switch s.preset {
	case PresetStripe:
		return s.verifyStripe(h, body, now)
	case PresetStandardWebhooks:
		return s.verifyStandard(h, body, now)
	}
	// github and generic: one MAC over the body, in one header.
	got := strings.TrimSpace(h.Get(s.header))
	if got == "" {
		return fail(ReasonMissingSignature, "missing signature: header "+s.header+" is absent")
	}
	enc, ok := cutPrefixFold(got, s.prefix)
	if !ok {
		return fail(ReasonMalformedSignature, fmt.Sprintf("malformed signature in %s: want the prefix %q", s.header, s.prefix))
	}
	var sum []byte
	var err error
	if s.base64 {
		sum, err = decodeBase64(enc)
	} else {
		sum, err = hex.DecodeString(enc)
	}
	if err != nil {
		return fail(ReasonMalformedSignature, fmt.Sprintf("malformed signature in %s: not %s", s.header, map[bool]string{false: "hex", true: "base64"}[s.base64]))
	}
	if !hmac.Equal(sum, s.mac(body)) {
		return fail(ReasonBadSignature, "signature mismatch in "+s.header)
	}
	return nil
}

func (s *signature) verifyStripe(h http.Header, body []byte, now time.Time) error {
	v := h.Get(HeaderStripe)
	if v == "" {
		return fail(ReasonMissingSignature, "missing signature: header Stripe-Signature is absent")
	}
	var ts string
	var sigs [][]byte
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = val
		case "v1":
			if b, err := hex.DecodeString(val); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fail(ReasonMalformedSignature, "malformed Stripe-Signature: want t=<timestamp>,v1=<hex signature>")
	}
	t, err := parseUnix(ts)
	if err != nil {
		return fail(ReasonMalformedSignature, "malformed Stripe-Signature: timestamp t is not a Unix time")
	}
	want := s.mac([]byte(ts), []byte("."), body)
	ok := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			ok = true
		}
	}
	if !ok {
		return fail(ReasonBadSignature, "signature mismatch in Stripe-Signature")
	}
	// The timestamp is checked after the MAC, which covers it: an old but
	// authentic request is a replay, not a forgery.
	return s.checkTime(t, now, "Stripe-Signature timestamp")
}

func (s *signature) verifyStandard(h http.Header, body []byte, now time.Time) error {
	id, ts, v := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTime), h.Get(HeaderWebhookSig)
	if v == "" {
		return fail(ReasonMissingSignature, "missing signature: header webhook-signature is absent")
	}
	if id == "" || ts == "" {
		return fail(ReasonMalformedSignature, "malformed signature: webhook-id and webhook-timestamp are required with webhook-signature")
	}
	t, err := parseUnix(ts)
	if err != nil {
		return fail(ReasonMalformedSignature, "malformed signature: webhook-timestamp is not a Unix time")
	}
	want := s.mac([]byte(id), []byte("."), []byte(ts), []byte("."), body)
	ok, seen := false, false
	for _, item := range strings.Fields(v) {
		ver, enc, found := strings.Cut(item, ",")
		if !found || ver != "v1" {
			continue // other schemes (v1a: asymmetric) are not ours to check
		}
		seen = true
		if sig, err := decodeBase64(enc); err == nil && hmac.Equal(sig, want) {
			ok = true
		}
	}
	if !seen {
		return fail(ReasonMalformedSignature, "malformed webhook-signature: want v1,<base64 signature>")
	}
	if !ok {
		return fail(ReasonBadSignature, "signature mismatch in webhook-signature")
	}
	return s.checkTime(t, now, "webhook-timestamp")
}

func (s *signature) checkTime(t, now time.Time, what string) error {
	d := now.Sub(t)
	if d > s.tolerance || d < -s.tolerance {
		return fail(ReasonTimestampExpired, fmt.Sprintf("%s %s is outside the tolerance of %s", what, t.UTC().Format(time.RFC3339), s.tolerance))
	}
	return nil
}

func parseUnix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, errors.New("not a Unix time")
	}
	return time.Unix(n, 0), nil
}

// decodeBase64 accepts standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// Sign returns the headers a sender configured like s would add to body,
// at time t, with delivery id (standard-webhooks). The secret is in plain
// text. It exists for tests and for tools that send signed requests.
func Sign(s *samsav1.Signature, plainSecret string, body []byte, t time.Time, id string) (http.Header, error) {
	sig, err := newSignature(s, plainSecret)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	ts := strconv.FormatInt(t.Unix(), 10)
	switch sig.preset {
	case PresetStripe:
		h.Set(HeaderStripe, "t="+ts+",v1="+hex.EncodeToString(sig.mac([]byte(ts), []byte("."), body)))
	case PresetStandardWebhooks:
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTime, ts)
		h.Set(HeaderWebhookSig, "v1,"+base64.StdEncoding.EncodeToString(sig.mac([]byte(id), []byte("."), []byte(ts), []byte("."), body)))
	default:
		sum := sig.mac(body)
		enc := hex.EncodeToString(sum)
		if sig.base64 {
			enc = base64.StdEncoding.EncodeToString(sum)
		}
		h.Set(sig.header, sig.prefix+enc)
	}
	return h, nil
}
