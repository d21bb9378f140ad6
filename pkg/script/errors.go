package script

import (
	"errors"
	"fmt"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Stages reported in Error.Stage.
const (
	StageFilter    = "filter"
	StageTransform = "transform"
)

// Sentinel errors wrapped by an *Error when the script hit one of the
// sandbox limits. Test for them with errors.Is.
var (
	ErrStepLimit   = errors.New("step limit exceeded")
	ErrTimeout     = errors.New("time limit exceeded")
	ErrAllocLimit  = errors.New("allocation limit exceeded")
	ErrOutputLimit = errors.New("output limit exceeded")
)

// Error is a compile or runtime error of a filter or a transform. Line and
// Col are 1-based positions in the filter or transform source, 0 when no
// position applies (for example a result that cannot be encoded as JSON).
//
// Error() renders the position and the message, e.g.
// "line 3, column 12: undefined: amout"; callers add the field name.
type Error struct {
	Stage string // StageFilter or StageTransform
	Line  int
	Col   int
	Msg   string

	cause error
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Unwrap returns the underlying cause: one of the sentinel errors for a limit,
// or the error returned by a built-in function.
func (e *Error) Unwrap() error { return e.cause }

// limitError is returned by the sandbox guards; it renders msg and unwraps
// to one of the sentinels.
type limitError struct {
	msg      string
	sentinel error
}

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return e.sentinel }

// compileError converts a parser or resolver error into an *Error.
func compileError(stage string, err error) *Error {
	var se syntax.Error
	if errors.As(err, &se) {
		return &Error{Stage: stage, Line: int(se.Pos.Line), Col: int(se.Pos.Col), Msg: se.Msg, cause: err}
	}
	var el resolve.ErrorList
	if errors.As(err, &el) && len(el) > 0 {
		msg := el[0].Msg
		if len(el) > 1 {
			msg = fmt.Sprintf("%s (and %d more errors)", msg, len(el)-1)
		}
		return &Error{Stage: stage, Line: int(el[0].Pos.Line), Col: int(el[0].Pos.Col), Msg: msg, cause: err}
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		line, col := evalPosition(ee)
		return &Error{Stage: stage, Line: line, Col: col, Msg: ee.Msg, cause: ee.Unwrap()}
	}
	return &Error{Stage: stage, Msg: err.Error(), cause: err}
}

// evalPosition returns the position of the innermost Starlark frame of the
// error's call stack (built-in frames have no line).
func evalPosition(ee *starlark.EvalError) (line, col int) {
	for i := len(ee.CallStack) - 1; i >= 0; i-- {
		pos := ee.CallStack[i].Pos
		if pos.Line > 0 {
			return int(pos.Line), int(pos.Col)
		}
	}
	return 0, 0
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
