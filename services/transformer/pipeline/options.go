package pipeline

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/stats"
)

// Counters receives what every transaction did per flow. It is the hook for
// statistics publishing: *stats.Recorder satisfies it. Calls are serial;
// they must be quick.
//
// A batch's counts are added just before the transaction's own records
// (WithTxnRecords) are built, so the statistics committed with a batch
// include it, and are added again negated when the transaction does not
// commit. So committed counts add up exactly:
// Received + Expanded = FilteredOut + DeadLettered + Transformed. (A report
// published from outside the transaction in between may briefly include a
// batch that is then aborted; the next report corrects it.)
type Counters interface {
	// Add adds a transaction's counts for a flow.
	Add(flow string, c stats.Counts)
	// Error records the flow's latest dead-lettered event.
	Error(flow, stage, msg, eventID string, at time.Time)
}

// restarter is implemented by Counters that can start afresh when a
// transaction's outcome is unknown (*stats.Recorder: see its Restart).
type restarter interface{ Restart() }

// Option configures a Pipeline.
type Option func(*Pipeline)

// WithCounters reports per-flow counts of committed transactions to c.
// Default: none (the Prometheus metrics are always kept).
func WithCounters(c Counters) Option { return func(p *Pipeline) { p.counters = c } }

// WithTxnRecords makes every transaction also write the records fn returns,
// just before it commits; fn runs on the pipeline's goroutine and may
// return nil. This is how per-flow statistics reports can be written
// exactly once with the work they count. (Counters is called after the
// commit, so a report built from it covers the transactions before the
// one it is written in.) Default: none.
func WithTxnRecords(fn func() []*kgo.Record) Option { return func(p *Pipeline) { p.txnRecords = fn } }

// WithClientOpts appends franz-go options to the session's client, after
// the pipeline's own (tests shorten timeouts with it). Default: none.
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(p *Pipeline) { p.clientOpts = append(p.clientOpts, opts...) }
}
