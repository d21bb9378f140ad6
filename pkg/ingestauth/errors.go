package ingestauth

import "errors"

var (
	// ErrUnauthenticated matches every authentication failure (an *Error):
	// the caller answers 401.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrConfig: the source's auth configuration is unusable (bad preset,
	// a secret that cannot be decrypted). It is the operator's problem, not
	// the caller's.
	ErrConfig = errors.New("invalid source auth configuration")
)

// Reason says why authentication failed, in a form fit for a metric label.
type Reason string

// The reasons of authentication failures.
const (
	ReasonMissingCredentials   Reason = "missing_credentials"
	ReasonMalformedCredentials Reason = "malformed_credentials"
	ReasonInvalidAPIKey        Reason = "invalid_api_key"
	ReasonMissingSignature     Reason = "missing_signature"
	ReasonMalformedSignature   Reason = "malformed_signature"
	ReasonBadSignature         Reason = "bad_signature"
	ReasonTimestampExpired     Reason = "timestamp_expired"
)

// Error is an authentication failure. Its message is safe to return to the
// caller: it never contains a secret or an expected signature.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrUnauthenticated) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrUnauthenticated }

func fail(r Reason, msg string) error { return &Error{Reason: r, Msg: msg} }
