// Package script runs a flow's filter and transform: small Starlark
// programs (https://github.com/google/starlark-go) evaluated for every event
// in a sandbox with no access to the outside world and with bounded steps,
// wall-clock time, allocation and output.
//
// A Program is compiled once per flow version and is safe for concurrent
// use: Run may be called from many goroutines at once. The language surface
// offered to users is described in docs/transforms.md.
package script

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/samsa-dev/samsa/pkg/event"
)

// Program is a compiled filter and transform.
type Program struct {
	cfg       config
	filter    *starlark.Function // nil: keep every event
	transform *starlark.Function // nil: identity
	pool      sync.Pool          // of *runState
}

// Result is the outcome of running a Program on one event.
type Result struct {
	// Kept is false when the filter rejected the event.
	Kept bool
	// Outputs are the events to emit, in order. Empty with Kept set means
	// the transform dropped the event (returned None or an empty list).
	Outputs []Output
}

// Output is one event produced by the transform. Fields the script did not
// set are inherited from the input event.
type Output struct {
	// Data is the payload: JSON produced by the script, or the input payload
	// unchanged when the event was passed through (no transform, or the
	// transform returned event). It may alias the input event's Data.
	Data []byte
	// ContentType of Data: "application/json" for JSON produced by the
	// script; the input's content type when the payload was passed through.
	ContentType string
	Type        string
	Subject     string
	Key         string
	// Attributes may be the input event's map itself when the script did not
	// change them; callers must not modify it.
	Attributes map[string]string
}

const jsonContentType = "application/json"

// Compile compiles a flow's filter and transform.
//
// filter is a boolean expression evaluated with event in scope; an empty
// filter keeps every event. transform is a program defining a function
// transform(event); an empty transform passes events through unchanged.
// The transform's top-level code runs once, here, under the same limits as
// a Run; its global values are then frozen.
//
// A compile error is an *Error with Stage set to StageFilter or
// StageTransform.
func Compile(filter, transform string, opts ...Option) (*Program, error) {
	p := &Program{cfg: defaultConfig()}
	for _, o := range opts {
		o(&p.cfg)
	}
	p.pool.New = func() any { return newRunState(p) }

	if strings.TrimSpace(filter) != "" {
		fn, err := p.compileFilter(filter)
		if err != nil {
			return nil, err
		}
		p.filter = fn
	}
	if strings.TrimSpace(transform) != "" {
		fn, err := p.compileTransform(transform)
		if err != nil {
			return nil, err
		}
		p.transform = fn
	}
	return p, nil
}

func fileOptions() *syntax.FileOptions {
	return &syntax.FileOptions{
		Set:             true,
		While:           true,
		TopLevelControl: true,
		GlobalReassign:  true,
		Recursion:       false,
	}
}

const filterFunc = "$filter"

func (p *Program) compileFilter(src string) (*starlark.Function, error) {
	opts := fileOptions()
	expr, err := parseFilter(opts, src)
	if err != nil {
		return nil, compileError(StageFilter, err)
	}
	rw := newRewriter(expr)
	expr = rw.expr(expr)
	if rw.err != nil {
		return nil, compileError(StageFilter, rw.err)
	}
	pos := syntax.Start(expr)
	f := &syntax.File{
		Path:    StageFilter,
		Options: opts,
		Stmts: []syntax.Stmt{&syntax.DefStmt{
			Def:    pos,
			Name:   &syntax.Ident{NamePos: pos, Name: filterFunc},
			Lparen: pos,
			Params: []syntax.Expr{&syntax.Ident{NamePos: pos, Name: "event"}},
			Rparen: pos,
			Body:   []syntax.Stmt{&syntax.ReturnStmt{Return: pos, Result: expr}},
		}},
	}
	globals, err := p.initFile(StageFilter, f)
	if err != nil {
		return nil, err
	}
	return globals[filterFunc].(*starlark.Function), nil
}

// parseFilter parses a filter expression. An expression spanning several
// lines need not be parenthesized: if it does not parse as is, it is parsed
// again inside parentheses, with positions mapped back to the source.
func parseFilter(opts *syntax.FileOptions, src string) (syntax.Expr, error) {
	expr, err := opts.ParseExpr(StageFilter, src, 0)
	if err == nil || !strings.Contains(strings.TrimSpace(src), "\n") {
		return expr, err
	}
	wrapped, err2 := opts.ParseExpr(StageFilter, "(\n"+src+"\n)", 0)
	if err2 != nil {
		return nil, err
	}
	inner := wrapped.(*syntax.ParenExpr).X
	shiftLines(inner, -1)
	return inner, nil
}

func (p *Program) compileTransform(src string) (*starlark.Function, error) {
	opts := fileOptions()
	f, err := opts.Parse(StageTransform, src, 0)
	if err != nil {
		return nil, compileError(StageTransform, err)
	}
	rw := newRewriter(f)
	rw.file(f)
	if rw.err != nil {
		return nil, compileError(StageTransform, rw.err)
	}
	globals, err := p.initFile(StageTransform, f)
	if err != nil {
		return nil, err
	}
	v, ok := globals["transform"]
	if !ok {
		return nil, &Error{Stage: StageTransform, Line: 1, Col: 1, Msg: "the program does not define a function transform(event)"}
	}
	fn, ok := v.(*starlark.Function)
	if !ok {
		return nil, &Error{Stage: StageTransform, Line: 1, Col: 1, Msg: fmt.Sprintf("transform is a %s, want a function transform(event)", v.Type())}
	}
	if err := checkArity(fn); err != nil {
		pos := fn.Position()
		return nil, &Error{Stage: StageTransform, Line: int(pos.Line), Col: int(pos.Col), Msg: err.Error()}
	}
	return fn, nil
}

// checkArity verifies that fn can be called with exactly one positional
// argument.
func checkArity(fn *starlark.Function) error {
	positional := fn.NumParams() - fn.NumKwonlyParams()
	if fn.HasVarargs() {
		positional--
	}
	if fn.HasKwargs() {
		positional--
	}
	if positional < 1 && !fn.HasVarargs() {
		return errors.New("transform must take one parameter, the event")
	}
	n := fn.NumParams()
	if fn.HasVarargs() {
		n--
	}
	if fn.HasKwargs() {
		n--
	}
	for i := 1; i < n; i++ {
		if fn.ParamDefault(i) == nil {
			name, _ := fn.Param(i)
			return fmt.Errorf("transform must take one parameter, the event (parameter %s has no default value)", name)
		}
	}
	return nil
}

// initFile resolves, compiles and executes the top-level code of f, then
// freezes and returns its globals.
func (p *Program) initFile(stage string, f *syntax.File) (starlark.StringDict, error) {
	prog, err := starlark.FileProgram(f, predeclared.Has)
	if err != nil {
		return nil, compileError(stage, err)
	}
	st := p.pool.Get().(*runState)
	st.begin(context.Background(), nil)
	globals, err := prog.Init(&st.thread, predeclared)
	if err != nil {
		err = st.runtimeError(stage, err)
	}
	p.release(st)
	if err != nil {
		return nil, err
	}
	globals.Freeze()
	return globals, nil
}

// Run runs the filter and then, if the event is kept, the transform on ev.
//
// A failure caused by the script or the event (an exception, a limit, a
// result that cannot be encoded, a payload that is not valid JSON) is
// returned as an *Error: the event should be dead-lettered with it. If ctx
// is done before or during the run, Run returns ctx.Err() (not an *Error).
//
// ev must not be nil. Run does not modify it; outputs may alias ev.Data and
// ev.Attributes.
func (p *Program) Run(ctx context.Context, ev *event.Event) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if p.filter == nil && p.transform == nil {
		return Result{Kept: true, Outputs: []Output{passthrough(ev)}}, nil
	}

	st := p.pool.Get().(*runState)
	defer p.release(st)
	st.begin(ctx, ev)

	if p.filter != nil {
		v, err := starlark.Call(&st.thread, p.filter, st.args[:], nil)
		if err != nil {
			return Result{}, st.runtimeError(StageFilter, err)
		}
		if !v.Truth() {
			return Result{}, nil
		}
	}
	if p.transform == nil {
		return Result{Kept: true, Outputs: []Output{passthrough(ev)}}, nil
	}
	v, err := starlark.Call(&st.thread, p.transform, st.args[:], nil)
	if err != nil {
		return Result{}, st.runtimeError(StageTransform, err)
	}
	outs, err := st.outputs(v)
	if err != nil {
		return Result{}, err
	}
	return Result{Kept: true, Outputs: outs}, nil
}

func (p *Program) release(st *runState) {
	if st.end() {
		p.pool.Put(st)
	}
}

func passthrough(ev *event.Event) Output {
	return Output{
		Data:        ev.Data,
		ContentType: ev.ContentType,
		Type:        ev.Type,
		Subject:     ev.Subject,
		Key:         ev.Key,
		Attributes:  ev.Attributes,
	}
}

// isJSON reports whether a payload of content type ct is parsed as JSON:
// an empty content type, application/json, text/json and any +json type.
func isJSON(ct string) bool {
	if ct == "" || ct == jsonContentType {
		return true
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "" || ct == jsonContentType || ct == "text/json" || strings.HasSuffix(ct, "+json")
}
