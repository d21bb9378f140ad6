package script

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"

	"github.com/samsa-dev/samsa/pkg/event"
)

// localKey is the thread-local key under which a thread's *runState is stored.
const localKey = "samsa.script.state"

// firstChunk is the number of steps a run may take before the wall-clock
// timer and the context watch are armed. Short runs (the common case) never
// pay for a timer.
const firstChunk = 512

// Reasons for a cancellation, set before thread.Cancel is called.
const (
	reasonNone int32 = iota
	reasonSteps
	reasonTimeout
	reasonContext
)

// runState is the per-run state of a Program: a Starlark thread, reused from
// run to run through the Program's pool, and the accounting of the sandbox.
type runState struct {
	thread starlark.Thread
	prog   *Program
	cfg    *config
	ev     eventValue
	args   starlark.Tuple // (ev,)

	ctx     context.Context
	start   time.Time
	armed   bool
	timer   *time.Timer
	stopCtx func() bool
	reason  atomic.Int32
	reuse   bool // false once a timer or context callback may still fire

	alloc    int64                 // bytes charged to the allocation budget
	outBytes int                   // bytes of JSON output produced
	enc      jsonEncoder           // the JSON encoder of the run (see encoder)
	keys     keyCache              // interned JSON object keys
	doc      jsonDoc               // the payload of the run, decoded lazily
	fields   [numFields]fieldCache // values of the event's fields, kept from run to run
	now      time.Time
	nowSet   bool

	onTimeoutFn func()
	onCtxFn     func()
}

func newRunState(p *Program) *runState {
	st := &runState{prog: p, cfg: &p.cfg, keys: make(keyCache)}
	st.doc.keys = st.keys
	st.ev.st = st
	st.args = starlark.Tuple{&st.ev}
	st.thread.Name = "samsa-script"
	st.thread.Print = st.print
	st.thread.OnMaxSteps = st.onMaxSteps
	st.thread.SetLocal(localKey, st)
	st.onTimeoutFn = func() { st.cancel(reasonTimeout) }
	st.onCtxFn = func() { st.cancel(reasonContext) }
	return st
}

// stateOf returns the runState of a thread created by this package.
func stateOf(thread *starlark.Thread) *runState {
	st, _ := thread.Local(localKey).(*runState)
	if st == nil {
		panic("script: built-in called from a foreign thread")
	}
	return st
}

// begin prepares the state for a run on ev (nil for a program's top-level
// code).
func (st *runState) begin(ctx context.Context, ev *event.Event) {
	st.ctx = ctx
	st.reuse = true
	st.armed = false
	st.reason.Store(reasonNone)
	st.alloc, st.outBytes = 0, 0
	st.nowSet = false
	st.ev.reset(ev)
	st.thread.Uncancel()
	st.thread.Steps = 0
	chunk := uint64(firstChunk)
	if chunk > st.cfg.maxSteps {
		chunk = st.cfg.maxSteps
	}
	st.thread.SetMaxExecutionSteps(chunk)
	if st.cfg.timeout > 0 {
		st.start = time.Now()
	}
}

// end releases the resources of a run and reports whether the state may be
// reused.
func (st *runState) end() bool {
	if st.timer != nil {
		if !st.timer.Stop() {
			st.reuse = false
		}
		st.timer = nil
	}
	if st.stopCtx != nil {
		if !st.stopCtx() {
			st.reuse = false
		}
		st.stopCtx = nil
	}
	st.ev.reset(nil)
	st.doc.reset()
	if cap(st.enc.buf) > maxKeptBuf {
		st.enc.buf = nil
	}
	st.ctx = nil
	return st.reuse
}

// encoder returns the JSON encoder of the run, empty, charging st and
// bounded by limit. Its buffer is reused from one encoding to the next:
// the caller copies the result out before encoding anything else (no
// encoding runs Starlark code, so encodings never nest).
func (st *runState) encoder(limit int) *jsonEncoder {
	e := &st.enc
	fn := e.entryFn
	*e = jsonEncoder{buf: e.buf[:0], limit: limit, st: st, entryFn: fn}
	if fn == nil {
		e.entryFn = e.dictEntry
	}
	return e
}

// onMaxSteps is called by the interpreter when the thread reaches the
// current step bound: first the end of the first chunk, where the timers are
// armed, then the configured limit.
func (st *runState) onMaxSteps(thread *starlark.Thread) {
	if thread.Steps >= st.cfg.maxSteps {
		st.cancel(reasonSteps)
		return
	}
	st.arm()
}

// arm starts watching the wall clock and the context, and raises the step
// bound to the configured limit.
func (st *runState) arm() {
	if st.armed {
		return
	}
	st.armed = true
	st.thread.SetMaxExecutionSteps(st.cfg.maxSteps)
	if st.cfg.timeout > 0 {
		remaining := st.cfg.timeout - time.Since(st.start)
		if remaining <= 0 {
			st.cancel(reasonTimeout)
		} else {
			st.timer = time.AfterFunc(remaining, st.onTimeoutFn)
		}
	}
	if st.ctx != nil && st.ctx.Done() != nil {
		st.stopCtx = context.AfterFunc(st.ctx, st.onCtxFn)
	}
}

// cancel stops the script before its next step. It may be called from any
// goroutine; the first reason wins.
func (st *runState) cancel(reason int32) {
	st.reason.CompareAndSwap(reasonNone, reason)
	st.thread.Cancel(reasonText(reason))
}

func reasonText(reason int32) string {
	switch reason {
	case reasonSteps:
		return "step limit"
	case reasonTimeout:
		return "timeout"
	case reasonContext:
		return "context done"
	}
	return "cancelled"
}

// useSteps charges n steps for work done inside a built-in.
func (st *runState) useSteps(n int) error {
	if n <= 0 {
		return nil
	}
	t := &st.thread
	t.Steps += uint64(n)
	if t.Steps >= st.cfg.maxSteps {
		st.reason.CompareAndSwap(reasonNone, reasonSteps)
		return st.stepLimitError()
	}
	if !st.armed && t.Steps >= firstChunk {
		st.arm()
	}
	if st.cfg.timeout > 0 && st.armed && st.reason.Load() == reasonTimeout {
		return st.timeoutError()
	}
	return nil
}

// useAlloc charges n bytes to the allocation budget.
func (st *runState) useAlloc(n int64, what string) error {
	if n <= 0 {
		return nil
	}
	if n > st.cfg.maxAllocBytes-st.alloc {
		return &limitError{
			msg:      fmt.Sprintf("%s: exceeded the allocation limit of %s per event", what, formatBytes(st.cfg.maxAllocBytes)),
			sentinel: ErrAllocLimit,
		}
	}
	st.alloc += n
	return nil
}

// room returns the bytes left in the allocation budget.
func (st *runState) room() int64 { return st.cfg.maxAllocBytes - st.alloc }

func (st *runState) stepLimitError() error {
	return &limitError{msg: fmt.Sprintf("exceeded the step limit of %d steps", st.cfg.maxSteps), sentinel: ErrStepLimit}
}

func (st *runState) timeoutError() error {
	return &limitError{msg: fmt.Sprintf("exceeded the time limit of %s", st.cfg.timeout), sentinel: ErrTimeout}
}

// runtimeError converts an error from the interpreter into an *Error, or
// into the context's error if the run was abandoned because ctx was done.
func (st *runState) runtimeError(stage string, err error) error {
	var ee *starlark.EvalError
	if !errors.As(err, &ee) {
		return &Error{Stage: stage, Msg: err.Error(), cause: err}
	}
	line, col := evalPosition(ee)
	e := &Error{Stage: stage, Line: line, Col: col, Msg: ee.Msg, cause: ee.Unwrap()}
	switch st.reason.Load() {
	case reasonSteps:
		le := st.stepLimitError()
		e.Msg, e.cause = le.Error(), le
	case reasonTimeout:
		le := st.timeoutError()
		e.Msg, e.cause = le.Error(), le
	case reasonContext:
		if st.ctx != nil && st.ctx.Err() != nil {
			return st.ctx.Err()
		}
		return context.Canceled
	}
	return e
}

// nowTime returns the processing time of the event, read once per run.
func (st *runState) nowTime() time.Time {
	if !st.nowSet {
		st.now = st.cfg.clock()
		st.nowSet = true
	}
	return st.now
}

const maxPrintLen = 4 << 10

// maxKeptBuf is the largest scratch buffer a runState keeps between runs.
const maxKeptBuf = 64 << 10

func (st *runState) print(_ *starlark.Thread, msg string) {
	if st.cfg.print == nil {
		return
	}
	if len(msg) > maxPrintLen {
		msg = msg[:maxPrintLen] + "...(truncated)"
	}
	st.cfg.print(msg)
}
