// Package destination is the contract between the deliverer's engine
// (services/deliverer/delivery: lanes, retries, offsets, dead letters) and
// the places events are delivered to (httpdest, kafkadest, pgdest).
//
// A destination attempts a batch of events and classifies each outcome; the
// engine decides what happens next (retry after a backoff, dead-letter,
// commit). Destinations never retry on their own, never sleep, and never
// dead-letter: one attempt per call keeps retry policy, breaker and
// metrics in one place.
package destination

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
)

// Class is what an attempt's outcome means for the event.
type Class uint8

const (
	// Success: the destination has the event.
	Success Class = iota
	// Retryable: the attempt failed in a way that may go away (timeouts,
	// connection errors, HTTP 408, 429 and 5xx, a database that is down).
	Retryable
	// Permanent: retrying cannot help (HTTP 4xx, a missing table, a value
	// of the wrong type); the event goes to the dead-letter topic.
	Permanent
	// Requeue: the event was not attempted, or its attempt was undone with
	// the rest of an atomic batch that failed because of another event. It
	// is tried again at once and the attempt does not count.
	Requeue
)

func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case Requeue:
		return "requeue"
	}
	return "unknown"
}

// Result is the outcome of one event's attempt.
type Result struct {
	Class Class
	// Status is the destination's answer in a few characters: an HTTP
	// status code ("503"), or a class such as "timeout", "connection",
	// "refused", "tls", or a SQLSTATE ("pg-42P01").
	Status string
	// Err explains a failure in words, for logs and dead-letter headers.
	Err string
	// Response is an excerpt of the destination's response body.
	Response string
	// RetryAfter is the destination's own idea of when to retry (HTTP
	// Retry-After); zero when it has none.
	RetryAfter time.Duration
	// Throttled marks a failure that says the destination is alive but
	// busy (HTTP 429): it does not count towards opening the breaker.
	Throttled bool
	// Alone, with Requeue, asks for the event to be tried again in a
	// batch of its own: a failure of the whole batch could not be pinned
	// on one event (a broker rejects a record batch as a whole).
	Alone bool
}

// Item is one event to deliver.
type Item struct {
	Event *event.Event
	// Envelope is the value of the delivery-topic record the event came
	// in: the encoded envelope, unchanged. It must not be modified.
	Envelope []byte
	// Attempt is 1 for the first attempt.
	Attempt int
}

// Destination delivers events. Implementations are safe for concurrent use
// (up to Capabilities().MaxConcurrency calls at once).
type Destination interface {
	// Deliver attempts every item and sets results[i] for items[i]
	// (len(results) == len(items)). ctx carries the attempt's deadline.
	// Items of one partition key appear in their order and are applied in
	// that order; a batch holds several items of one key only when the
	// destination declares OrderedBatch.
	Deliver(ctx context.Context, items []Item, results []Result)
	// Capabilities tells the engine how to feed the destination.
	Capabilities() Capabilities
	// Close releases connections. In-flight Deliver calls have returned.
	Close() error
}

// Capabilities describe how a destination wants its batches.
type Capabilities struct {
	// MaxBatch is the most items one Deliver call takes. 1 for HTTP.
	MaxBatch int
	// OrderedBatch: a batch may hold several consecutive events of one
	// key; the destination applies them in order, and a failure of one
	// leaves the later ones of its key undone (Requeue or failed).
	OrderedBatch bool
	// MaxConcurrency bounds concurrent Deliver calls; 0 means the flow's
	// max_in_flight decides alone.
	MaxConcurrency int
}

// Member identifies the consumer group generation that consumed the
// events, which fences a transactional offset commit (KIP-447): a member
// that lost its partitions in a rebalance can no longer commit for them.
type Member struct {
	Group      string
	MemberID   string
	Generation int32
}

// Offset is a consumed offset to commit and the metadata stored with it
// (the deliverer keeps the partition's cumulative counts there; see
// stats.CommitMetadata).
type Offset struct {
	kgo.EpochOffset
	Metadata string
}

// Transactional destinations write to the deliverer's own Kafka cluster in
// transactions that also commit the consumed offsets, which makes delivery
// exactly-once. Deliver opens the transaction (after a failure it has
// aborted it already); Commit finishes it.
type Transactional interface {
	Destination
	// Transactional reports whether this destination commits offsets; a
	// destination type may be transactional in some configurations only.
	Transactional() bool
	// Commit writes deadLetters to their topics in the transaction Deliver
	// opened (or a new one), commits offsets with their metadata for the
	// group member, and commits the transaction. After an error, nothing
	// the transaction wrote is visible and no offset moved.
	Commit(ctx context.Context, deadLetters []*kgo.Record, offsets map[string]map[int32]Offset, m Member) error
	// Abort discards the open transaction, if any.
	Abort(ctx context.Context) error
}

// Excerpt returns at most n bytes of b as a string, cut on a rune boundary.
func Excerpt(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	for n > 0 && b[n]&0xC0 == 0x80 {
		n--
	}
	return string(b[:n])
}
