package script

import "time"

// Option configures a Program. Options are given to Compile and apply to
// every Run of the compiled program.
type Option func(*config)

type config struct {
	maxSteps       uint64
	timeout        time.Duration
	maxAllocBytes  int64
	maxOutputBytes int
	maxOutputs     int
	print          func(msg string)
	clock          func() time.Time
	eagerData      bool // decode event.data whole into Starlark values (tests compare both ways)
}

const (
	defaultMaxSteps       = 1_000_000
	defaultTimeout        = 100 * time.Millisecond
	defaultMaxAllocBytes  = 64 << 20
	defaultMaxOutputBytes = 1 << 20
	defaultMaxOutputs     = 1000
)

func defaultConfig() config {
	return config{
		maxSteps:       defaultMaxSteps,
		timeout:        defaultTimeout,
		maxAllocBytes:  defaultMaxAllocBytes,
		maxOutputBytes: defaultMaxOutputBytes,
		maxOutputs:     defaultMaxOutputs,
		clock:          time.Now,
	}
}

// WithMaxSteps bounds the number of Starlark computation steps (roughly,
// bytecode instructions, plus one step per element for built-ins that
// iterate, such as sorted or list) that the filter and the transform may
// execute together for one event. The same bound applies to the top-level
// code of the transform, run once by Compile.
//
// Default: 1,000,000. A value of 0 restores the default.
func WithMaxSteps(n uint64) Option {
	return func(c *config) {
		if n == 0 {
			n = defaultMaxSteps
		}
		c.maxSteps = n
	}
}

// WithTimeout bounds the wall-clock time of one Run (filter and transform
// together). When the time is up the script is cancelled before its next
// step and Run returns an *Error wrapping ErrTimeout. A single built-in
// operation already in progress is not interrupted.
//
// Default: 100ms. A value <= 0 disables the wall-clock limit; the step
// limit still applies.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithMaxAllocBytes bounds the memory that one Run may allocate through
// operations whose result size is not fixed by the program text: string
// and list concatenation and repetition, slicing, string methods such as
// join, replace, format and split, conversions such as list, sorted and str,
// string formatting, and the json, re and base64 modules. The count is
// cumulative (memory later freed still counts) and approximate (about 16
// bytes per list element, 1 byte per string byte).
//
// Default: 64 MiB. A value <= 0 restores the default.
func WithMaxAllocBytes(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			n = defaultMaxAllocBytes
		}
		c.maxAllocBytes = n
	}
}

// WithMaxOutputBytes bounds the total size of the JSON the transform produces
// for one event, summed over all its outputs. Outputs that pass the input
// payload through unchanged (an empty transform, or returning event) do not
// count.
//
// Default: 1 MiB. A value <= 0 restores the default.
func WithMaxOutputBytes(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = defaultMaxOutputBytes
		}
		c.maxOutputBytes = n
	}
}

// WithMaxOutputs bounds the number of outputs one event may fan out to.
//
// Default: 1000. A value <= 0 restores the default.
func WithMaxOutputs(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = defaultMaxOutputs
		}
		c.maxOutputs = n
	}
}

// WithPrint sets the function that receives the output of the Starlark
// print built-in, one call per print, without a trailing newline. It may be
// called concurrently from several Runs. Messages longer than 4 KiB are
// truncated.
//
// Default: nil, print output is discarded.
func WithPrint(fn func(msg string)) Option {
	return func(c *config) { c.print = fn }
}

// WithClock sets the clock behind the time.now() function of the transform
// language. It is read at most once per Run, the first time the script calls
// time.now(), so every call within one event sees the same instant: the time
// the event was processed.
//
// Default: time.Now. A nil clock restores the default.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			now = time.Now
		}
		c.clock = now
	}
}
