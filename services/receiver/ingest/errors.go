package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/samsa-dev/samsa/pkg/ingestauth"
)

// The kinds of ingest failure. Every error the ingest path returns wraps
// exactly one of them (in an *Error); statusOf maps them to HTTP statuses,
// gRPC codes and metric reasons in one place.
var (
	ErrUnknownSource    = errors.New("unknown source")
	ErrNativeSource     = errors.New("source does not accept ingest")
	ErrUnauthenticated  = ingestauth.ErrUnauthenticated
	ErrUnsupportedMedia = errors.New("unsupported content type")
	ErrTooLarge         = errors.New("request too large")
	ErrTooManyEvents    = errors.New("too many events")
	ErrMalformed        = errors.New("malformed request")
	ErrRateLimited      = errors.New("rate limited")
	ErrBufferFull       = errors.New("producer buffer full")
	ErrUnavailable      = errors.New("kafka unavailable")
	ErrSourceConfig     = errors.New("source misconfigured")
	ErrMethod           = errors.New("method not allowed")
	ErrInternal         = errors.New("internal error")
)

// Error is an ingest failure: its message is returned to the caller as is
// (it names the problem and where, never a secret).
type Error struct {
	Kind error
	Msg  string
	// RetryAfter is set for 429s.
	RetryAfter time.Duration
	// reason overrides the metric reason of Kind (auth failures).
	reason string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// answer is how an error kind is answered.
type answer struct {
	http   int
	grpc   codes.Code
	reason string // metric label
}

var statuses = []struct {
	kind error
	answer
}{
	{ErrUnknownSource, answer{http.StatusNotFound, codes.NotFound, "unknown_source"}},
	{ErrNativeSource, answer{http.StatusConflict, codes.FailedPrecondition, "native_source"}},
	{ErrUnauthenticated, answer{http.StatusUnauthorized, codes.Unauthenticated, "unauthenticated"}},
	{ErrUnsupportedMedia, answer{http.StatusUnsupportedMediaType, codes.InvalidArgument, "content_type"}},
	{ErrTooLarge, answer{http.StatusRequestEntityTooLarge, codes.InvalidArgument, "too_large"}},
	{ErrTooManyEvents, answer{http.StatusRequestEntityTooLarge, codes.InvalidArgument, "too_many_events"}},
	{ErrMalformed, answer{http.StatusBadRequest, codes.InvalidArgument, "malformed"}},
	{ErrRateLimited, answer{http.StatusTooManyRequests, codes.ResourceExhausted, "rate_limited"}},
	{ErrBufferFull, answer{http.StatusTooManyRequests, codes.ResourceExhausted, "buffer_full"}},
	{ErrUnavailable, answer{http.StatusServiceUnavailable, codes.Unavailable, "kafka_unavailable"}},
	{ErrSourceConfig, answer{http.StatusInternalServerError, codes.Internal, "source_config"}},
	{ErrMethod, answer{http.StatusMethodNotAllowed, codes.Unimplemented, "method"}},
}

// statusOf maps an error of the ingest path to its answer. An error of no
// known kind is a 500.
func statusOf(err error) answer {
	for _, s := range statuses {
		if errors.Is(err, s.kind) {
			st := s.answer
			var e *Error
			if errors.As(err, &e) && e.reason != "" {
				st.reason = e.reason
			}
			return st
		}
	}
	return answer{http.StatusInternalServerError, codes.Internal, "internal"}
}
