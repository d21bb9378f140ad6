package flow

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Secrets in resources are the string fields listed by sourceSecrets and
// flowSecrets. In samsa.flows they hold sealed values (secret.Box); reads
// through the API return secret.Redacted in their place; a write that sends
// secret.Redacted back keeps the stored value, so that GET, edit, PUT works
// without knowing the secrets. Ingest API keys are not secrets of this kind:
// only their hash is ever stored.

// ErrNoBox means a resource holds sealed secrets but no key was configured
// to open them.
var ErrNoBox = errors.New("flow: resource holds sealed secrets but no secret key is configured")

// secretRef is one secret string field of a resource.
type secretRef struct {
	field string // path as in validation errors
	get   func() string
	set   func(string)
}

func strRef(field string, p *string) secretRef {
	return secretRef{field: field, get: func() string { return *p }, set: func(v string) { *p = v }}
}

func mapRefs(field string, m map[string]string) []secretRef {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]secretRef, 0, len(keys))
	for _, k := range keys {
		out = append(out, secretRef{
			field: fmt.Sprintf("%s[%s]", field, k),
			get:   func() string { return m[k] },
			set:   func(v string) { m[k] = v },
		})
	}
	return out
}

// sourceSecrets lists the secret fields of s (which it may modify through
// the refs).
func sourceSecrets(s *samsav1.Source) []secretRef {
	if sig := s.GetAuth().GetSignature(); sig != nil {
		return []secretRef{strRef("source.auth.signature.secret", &sig.Secret)}
	}
	return nil
}

// flowSecrets lists the secret fields of f.
func flowSecrets(f *samsav1.Flow) []secretRef {
	var out []secretRef
	d := f.GetDestination()
	if h := d.GetHttp(); h != nil {
		out = append(out, strRef("flow.destination.http.signingSecret", &h.SigningSecret))
		out = append(out, mapRefs("flow.destination.http.secretHeaders", h.SecretHeaders)...)
		if h.Tls != nil {
			out = append(out, strRef("flow.destination.http.tls.keyPem", &h.Tls.KeyPem))
		}
	}
	if k := d.GetKafka(); k != nil {
		if k.Tls != nil {
			out = append(out, strRef("flow.destination.kafka.tls.keyPem", &k.Tls.KeyPem))
		}
		if k.Sasl != nil {
			out = append(out, strRef("flow.destination.kafka.sasl.password", &k.Sasl.Password))
		}
	}
	if p := d.GetPostgres(); p != nil {
		out = append(out, strRef("flow.destination.postgres.dsn", &p.Dsn))
	}
	return out
}

// RedactSource returns a copy of s fit for an API response: every secret
// replaced by secret.Redacted, API keys reduced to their name and hash.
func RedactSource(s *samsav1.Source) *samsav1.Source {
	if s == nil {
		return nil
	}
	c := proto.Clone(s).(*samsav1.Source)
	redact(sourceSecrets(c))
	for _, k := range c.GetAuth().GetApiKeys() {
		k.Key = ""
	}
	return c
}

// RedactFlow returns a copy of f with every secret replaced by secret.Redacted.
func RedactFlow(f *samsav1.Flow) *samsav1.Flow {
	if f == nil {
		return nil
	}
	c := proto.Clone(f).(*samsav1.Flow)
	redact(flowSecrets(c))
	return c
}

func redact(refs []secretRef) {
	for _, r := range refs {
		if r.get() != "" {
			r.set(secret.Redacted)
		}
	}
}

// OpenSecrets returns a copy of f with its secrets in plain text, for the
// services that use them (the deliverer signs requests, connects to
// databases). box may be nil when no key is configured; then only resources
// written without encryption can be opened.
func OpenSecrets(box *secret.Box, f *samsav1.Flow) (*samsav1.Flow, error) {
	c := proto.Clone(f).(*samsav1.Flow)
	if err := open(box, flowSecrets(c)); err != nil {
		return nil, fmt.Errorf("flow %s: %w", f.GetName(), err)
	}
	return c, nil
}

// OpenSourceSecrets returns a copy of s with its secrets in plain text (the
// receiver verifies webhook signatures with them).
func OpenSourceSecrets(box *secret.Box, s *samsav1.Source) (*samsav1.Source, error) {
	c := proto.Clone(s).(*samsav1.Source)
	if err := open(box, sourceSecrets(c)); err != nil {
		return nil, fmt.Errorf("source %s: %w", s.GetName(), err)
	}
	return c, nil
}

func open(box *secret.Box, refs []secretRef) error {
	for _, r := range refs {
		v := r.get()
		if !secret.IsSealed(v) {
			continue
		}
		if box == nil {
			return fmt.Errorf("%s: %w", r.field, ErrNoBox)
		}
		pt, err := box.Open(v)
		if err != nil {
			return fmt.Errorf("%s: %w", r.field, err)
		}
		r.set(pt)
	}
	return nil
}

// seal seals every secret in place. Without a box secrets stay in plain
// text (the control service allows that only with --insecure).
func seal(box *secret.Box, refs []secretRef) error {
	if box == nil {
		return nil
	}
	for _, r := range refs {
		v, err := box.Seal(r.get())
		if err != nil {
			return fmt.Errorf("%s: %w", r.field, err)
		}
		r.set(v)
	}
	return nil
}

// resolveSecrets prepares the secrets of a resource being written: a value
// of secret.Redacted is replaced by the stored plaintext of the same field
// (stored holds the opened secrets of the current version, nil if there is
// none), and a value that is already sealed is refused, because a caller
// never sees sealed values and accepting them would let one resource borrow
// another's secret.
func resolveSecrets(refs []secretRef, stored []secretRef) error {
	have := make(map[string]string, len(stored))
	for _, r := range stored {
		have[r.field] = r.get()
	}
	var errs []FieldError
	for _, r := range refs {
		v := r.get()
		switch {
		case v == secret.Redacted:
			old := have[r.field]
			if old == "" {
				errs = append(errs, FieldError{r.field, fmt.Sprintf("%q keeps the stored secret, but there is none: send the secret itself", secret.Redacted)})
				continue
			}
			r.set(old)
		case secret.IsSealed(v):
			errs = append(errs, FieldError{r.field, "looks like a sealed value: send the secret in plain text (it is encrypted before it is stored)"})
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}
