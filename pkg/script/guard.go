package script

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Approximate heap cost of the values the guards account for.
const (
	elemBytes  = 16 // one element of a list or tuple (an interface value)
	entryBytes = 64 // one dict or set entry
	strBytes   = 32 // a small string value in a list (header and box)
	maxIntBits = 64 << 10
)

// guards are the predeclared built-ins the rewriter (rewrite.go) calls in
// place of unbounded operations.
var guards = starlark.StringDict{
	"$add":      starlark.NewBuiltin("$add", binGuard(syntax.PLUS)),
	"$sub":      starlark.NewBuiltin("$sub", binGuard(syntax.MINUS)),
	"$mul":      starlark.NewBuiltin("$mul", binGuard(syntax.STAR)),
	"$mod":      starlark.NewBuiltin("$mod", binGuard(syntax.PERCENT)),
	"$lsh":      starlark.NewBuiltin("$lsh", binGuard(syntax.LTLT)),
	"$or":       starlark.NewBuiltin("$or", binGuard(syntax.PIPE)),
	"$and":      starlark.NewBuiltin("$and", binGuard(syntax.AMP)),
	"$xor":      starlark.NewBuiltin("$xor", binGuard(syntax.CIRCUMFLEX)),
	"$iadd":     starlark.NewBuiltin("$iadd", inplaceGuard(syntax.PLUS)),
	"$ior":      starlark.NewBuiltin("$ior", inplaceGuard(syntax.PIPE)),
	"$augindex": starlark.NewBuiltin("$augindex", augIndexGuard),
	"$augattr":  starlark.NewBuiltin("$augattr", augAttrGuard),
	"$slice":    starlark.NewBuiltin("$slice", sliceGuard),
	"$method":   starlark.NewBuiltin("$method", methodGuard),
	"$attr":     starlark.NewBuiltin("$attr", attrGuard),
	"$spread":   starlark.NewBuiltin("$spread", spreadGuard),
	"$eq":       starlark.NewBuiltin("$eq", compareGuard(syntax.EQL)),
	"$ne":       starlark.NewBuiltin("$ne", compareGuard(syntax.NEQ)),
	"$lt":       starlark.NewBuiltin("$lt", compareGuard(syntax.LT)),
	"$le":       starlark.NewBuiltin("$le", compareGuard(syntax.LE)),
	"$gt":       starlark.NewBuiltin("$gt", compareGuard(syntax.GT)),
	"$ge":       starlark.NewBuiltin("$ge", compareGuard(syntax.GE)),
	"$in":       starlark.NewBuiltin("$in", inGuard(false)),
	"$notin":    starlark.NewBuiltin("$notin", inGuard(true)),
}

type builtinFunc = func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)

func binGuard(op syntax.Token) builtinFunc {
	return func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		return binop(thread, op, args[0], args[1])
	}
}

func inplaceGuard(op syntax.Token) builtinFunc {
	return func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		return inplace(thread, op, args[0], args[1])
	}
}

// binop performs x op y after charging its result to the allocation budget.
func binop(thread *starlark.Thread, op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	switch op {
	case syntax.PLUS:
		if n := concatBytes(x, y); n > 0 {
			if err := stateOf(thread).useAlloc(n, "concatenation"); err != nil {
				return nil, err
			}
		}
	case syntax.STAR:
		if err := checkMul(thread, x, y); err != nil {
			return nil, err
		}
	case syntax.PERCENT:
		if f, ok := x.(starlark.String); ok {
			return formatPercent(thread, f, y)
		}
	case syntax.LTLT:
		if xi, ok := x.(starlark.Int); ok {
			if yi, ok := y.(starlark.Int); ok {
				if n, ok := yi.Int64(); ok && n > 0 && int64(intBits(xi))+n > maxIntBits {
					return nil, intTooLarge("<<")
				}
			}
		}
	case syntax.PIPE, syntax.AMP, syntax.CIRCUMFLEX, syntax.MINUS:
		if n := collectionLen(x) + collectionLen(y); n > 0 {
			if err := stateOf(thread).useAlloc(int64(n)*entryBytes, "set or dict "+op.String()); err != nil {
				return nil, err
			}
		}
	}
	return starlark.Binary(op, x, y)
}

// inplace performs x op= y. Like the interpreter, list += iterable extends
// the list and dict |= dict updates the dict, in place.
func inplace(thread *starlark.Thread, op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	switch op {
	case syntax.PLUS:
		if xl, ok := x.(*starlark.List); ok {
			if _, ok := y.(starlark.Iterable); ok {
				if _, err := callMethod(thread, xl, "extend", starlark.Tuple{y}, nil); err != nil {
					return nil, err
				}
				return xl, nil
			}
		}
	case syntax.PIPE:
		if isDict(x) && isDict(y) {
			if _, err := callMethod(thread, x, "update", starlark.Tuple{y}, nil); err != nil {
				return nil, err
			}
			return x, nil
		}
	}
	return binop(thread, op, x, y)
}

// concatBytes is the size of x + y for sequences, 0 otherwise.
func concatBytes(x, y starlark.Value) int64 {
	switch x := x.(type) {
	case starlark.String:
		if y, ok := y.(starlark.String); ok {
			return int64(len(x)) + int64(len(y))
		}
	case starlark.Bytes:
		if y, ok := y.(starlark.Bytes); ok {
			return int64(len(x)) + int64(len(y))
		}
	case *starlark.List:
		if y, ok := y.(*starlark.List); ok {
			return int64(x.Len()+y.Len()) * elemBytes
		}
	case starlark.Tuple:
		if y, ok := y.(starlark.Tuple); ok {
			return int64(len(x)+len(y)) * elemBytes
		}
	}
	return 0
}

func checkMul(thread *starlark.Thread, x, y starlark.Value) error {
	xi, xInt := x.(starlark.Int)
	yi, yInt := y.(starlark.Int)
	var seq starlark.Value
	switch {
	case xInt && yInt:
		if intBits(xi)+intBits(yi) > maxIntBits {
			return intTooLarge("*")
		}
		return nil
	case xInt:
		seq, yi = y, xi
	case yInt:
		seq = x
	default:
		return nil
	}
	// yi is the repeat count.
	var unit, n int64
	switch x := seq.(type) {
	case starlark.String:
		unit, n = 1, int64(len(x))
	case starlark.Bytes:
		unit, n = 1, int64(len(x))
	case *starlark.List:
		unit, n = elemBytes, int64(x.Len())
	case starlark.Tuple:
		unit, n = elemBytes, int64(len(x))
	default:
		return nil
	}
	if n == 0 || yi.Sign() <= 0 {
		return nil
	}
	st := stateOf(thread)
	count, ok := yi.Int64()
	size := n * unit
	if !ok || count > st.room()/size {
		return st.useAlloc(st.room()+1, fmt.Sprintf("repeating a %s of length %d %s times", seq.Type(), n, yi))
	}
	return st.useAlloc(size*count, "repetition")
}

func intBits(i starlark.Int) int {
	if n, ok := i.Int64(); ok {
		if n < 0 {
			n = -n
		}
		return bits.Len64(uint64(n))
	}
	return i.BigInt().BitLen()
}

func intTooLarge(op string) error {
	return &limitError{msg: fmt.Sprintf("integer %s: the result would exceed %d bits", op, maxIntBits), sentinel: ErrAllocLimit}
}

// collectionLen is the length of a dict or set, 0 for other values.
func collectionLen(v starlark.Value) int {
	switch v := v.(type) {
	case *starlark.Dict:
		return v.Len()
	case *lazyObject:
		return v.Len()
	case *starlark.Set:
		return v.Len()
	}
	return 0
}

// formatPercent performs format % args after checking an upper bound of the
// result's size.
func formatPercent(thread *starlark.Thread, format starlark.String, args starlark.Value) (starlark.Value, error) {
	st := stateOf(thread)
	n := int64(strings.Count(string(format), "%"))
	var vals []starlark.Value
	switch a := args.(type) {
	case starlark.Tuple:
		vals = a
	case *starlark.Dict, *lazyObject:
		for _, item := range a.(starlark.IterableMapping).Items() {
			vals = append(vals, item[1])
		}
	default:
		vals = []starlark.Value{args}
	}
	var argMax int64
	for _, x := range vals {
		n, err := formatSize(st, x, st.room())
		if err != nil {
			return nil, err
		}
		argMax = max(argMax, n)
	}
	if n > 0 && argMax > (st.room()-int64(len(format)))/n {
		return nil, st.useAlloc(st.room()+1, "string formatting")
	}
	v, err := starlark.Binary(syntax.PERCENT, format, realize(args))
	if err != nil {
		return nil, err
	}
	return v, st.useAlloc(sizeOf(v), "string formatting")
}

// formatSize is an upper bound of the length of v formatted by %s, %r or
// {}, stopping once it exceeds limit.
func formatSize(st *runState, v starlark.Value, limit int64) (int64, error) {
	if s, ok := v.(starlark.String); ok {
		return quotedLen(string(s)), nil
	}
	return reprSize(st, v, limit)
}

// reprSize is an upper bound of the length of repr(v), computed by walking
// v until the bound exceeds limit (so shared substructures cannot make the
// walk itself expensive). The walk is charged to st's step budget (st may
// be nil).
func reprSize(st *runState, v starlark.Value, limit int64) (int64, error) {
	w := sizeWalker{st: st, limit: limit}
	w.walk(v, 0)
	if w.err == nil && st != nil {
		w.err = st.useSteps(w.visits / bytesPerStep)
	}
	return w.n, w.err
}

type sizeWalker struct {
	st       *runState
	n, limit int64
	visits   int
	err      error
}

// walkCheckpoint is the number of values visited between two checks of the
// step and time limits.
const walkCheckpoint = 1 << 16

func (w *sizeWalker) walk(v starlark.Value, depth int) {
	if w.n > w.limit || w.err != nil {
		return
	}
	if depth > maxJSONDepth {
		w.n = w.limit + 1
		return
	}
	if w.visits++; w.visits%walkCheckpoint == 0 && w.st != nil {
		if w.err = w.st.useSteps(walkCheckpoint / bytesPerStep); w.err != nil {
			return
		}
	}
	switch v := v.(type) {
	case starlark.String:
		w.n += quotedLen(string(v))
	case starlark.Bytes:
		w.n += quotedLen(string(v)) + 1
	case starlark.Int:
		w.n += int64(intBits(v))*10/33 + 2
	case starlark.Float, starlark.Bool, starlark.NoneType:
		w.n += 32
	case *starlark.List:
		w.n += 2
		for i, n := 0, v.Len(); i < n && w.n <= w.limit; i++ {
			w.n += 2
			w.walk(v.Index(i), depth+1)
		}
	case starlark.Tuple:
		w.n += 3
		for _, x := range v {
			if w.n > w.limit {
				break
			}
			w.n += 2
			w.walk(x, depth+1)
		}
	case *starlark.Dict:
		w.n += 2
		for _, item := range v.Items() {
			if w.n > w.limit {
				break
			}
			w.n += 4
			w.walk(item[0], depth+1)
			w.walk(item[1], depth+1)
		}
	case *lazyObject:
		if v.dict != nil {
			w.visits--
			w.walk(v.dict, depth)
			return
		}
		w.n += 2
		v.index()
		for i := range v.entries {
			if w.n > w.limit {
				break
			}
			w.n += 4
			w.walk(v.doc.key(v.key(i)), depth+1)
			w.walk(v.value(i), depth+1)
		}
	case *starlark.Set:
		w.n += 7
		for x := range v.Elements() {
			if w.n > w.limit {
				break
			}
			w.n += 2
			w.walk(x, depth+1)
		}
	default:
		if s, ok := v.(starlark.Sequence); ok {
			// e.g. "abc".elems(): its repr contains the whole string.
			w.n += 4*int64(s.Len()) + 32
		} else {
			w.n += 256
		}
	}
}

// quotedLen is an upper bound of the length of a quoted Starlark string.
func quotedLen(s string) int64 {
	n := int64(2)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				n += 2
			case c < ' ' || c == 0x7f:
				n += 4
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 4
		case strconv.IsPrint(r):
			n += int64(size)
		default:
			n += 10
		}
		i += size
	}
	return n
}

// sizeOf is the approximate heap size of a value just produced by an
// operation (its elements are not counted; they exist already).
func sizeOf(v starlark.Value) int64 {
	switch v := v.(type) {
	case starlark.String:
		return int64(len(v))
	case starlark.Bytes:
		return int64(len(v))
	case *starlark.List:
		return int64(v.Len()) * elemBytes
	case starlark.Tuple:
		return int64(len(v)) * elemBytes
	case *starlark.Dict:
		return int64(v.Len()) * entryBytes
	case *lazyObject:
		return int64(v.Len()) * entryBytes
	case *starlark.Set:
		return int64(v.Len()) * entryBytes
	}
	return 0
}

// lenOf returns the length of v if it has one.
func lenOf(v starlark.Value) (int, bool) {
	if s, ok := v.(interface{ Len() int }); ok {
		return s.Len(), true
	}
	return 0, false
}

// ---- x[i] op= y and x.f op= y ----

func augIndexGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	op, x, k, y := augOp(args[0]), args[1], args[2], args[3]
	old, err := getIndex(x, k)
	if err != nil {
		return nil, err
	}
	v, err := inplace(thread, op, old, y)
	if err != nil {
		return nil, err
	}
	return starlark.None, setIndex(x, k, v)
}

func augAttrGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	op, x, name, y := augOp(args[0]), args[1], string(args[2].(starlark.String)), args[3]
	old, err := getAttr(x, name)
	if err != nil {
		return nil, err
	}
	v, err := inplace(thread, op, old, y)
	if err != nil {
		return nil, err
	}
	if sf, ok := x.(starlark.HasSetField); ok {
		return starlark.None, sf.SetField(name, v)
	}
	return nil, fmt.Errorf("can't assign to .%s field of %s", name, x.Type())
}

var opsByName = func() map[string]syntax.Token {
	m := make(map[string]syntax.Token)
	for op := range binGuards {
		m[op.String()] = op
	}
	return m
}()

func augOp(v starlark.Value) syntax.Token {
	return opsByName[string(v.(starlark.String))]
}

// getIndex implements x[y] as the interpreter does.
func getIndex(x, y starlark.Value) (starlark.Value, error) {
	switch x := x.(type) {
	case starlark.Mapping:
		z, found, err := x.Get(y)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("key %v not in %s", y, x.Type())
		}
		return z, nil
	case starlark.Indexable:
		n := x.Len()
		i, err := starlark.AsInt32(y)
		if err != nil {
			return nil, fmt.Errorf("%s index: %s", x.Type(), err)
		}
		orig := i
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil, outOfRange(orig, n, x)
		}
		return x.Index(i), nil
	}
	return nil, fmt.Errorf("unhandled index operation %s[%s]", x.Type(), y.Type())
}

// setIndex implements x[y] = z as the interpreter does.
func setIndex(x, y, z starlark.Value) error {
	switch x := x.(type) {
	case starlark.HasSetKey:
		return x.SetKey(y, z)
	case starlark.HasSetIndex:
		n := x.Len()
		i, err := starlark.AsInt32(y)
		if err != nil {
			return err
		}
		orig := i
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return outOfRange(orig, n, x)
		}
		return x.SetIndex(i, z)
	}
	return fmt.Errorf("%s value does not support item assignment", x.Type())
}

func outOfRange(i, n int, x starlark.Value) error {
	if n == 0 {
		return fmt.Errorf("index %d out of range: empty %s", i, x.Type())
	}
	return fmt.Errorf("%s index %d out of range [%d:%d]", x.Type(), i, -n, n-1)
}

// getAttr implements x.name as the interpreter does (without the spelling
// hint).
func getAttr(x starlark.Value, name string) (starlark.Value, error) {
	ha, ok := x.(starlark.HasAttrs)
	if !ok {
		return nil, fmt.Errorf("%s has no .%s field or method", x.Type(), name)
	}
	v, err := ha.Attr(name)
	if err != nil {
		if nsa, ok := err.(starlark.NoSuchAttrError); ok {
			return nil, fmt.Errorf("%s", string(nsa))
		}
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%s has no .%s field or method", x.Type(), name)
	}
	return v, nil
}

// ---- x[lo:hi:step] ----

func sliceGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x, lo, hi, stepv := args[0], args[1], args[2], args[3]
	sl, ok := x.(starlark.Sliceable)
	if !ok {
		return nil, fmt.Errorf("invalid slice operand %s", x.Type())
	}
	n := sl.Len()
	step := 1
	if stepv != starlark.None {
		var err error
		if step, err = starlark.AsInt32(stepv); err != nil {
			return nil, fmt.Errorf("invalid slice step: %s", err)
		}
		if step == 0 {
			return nil, fmt.Errorf("zero is not a valid slice step")
		}
	}
	var start, end, count int
	if step > 0 {
		start, end = 0, n
		if err := asIndex(lo, n, &start); err != nil {
			return nil, fmt.Errorf("invalid start index: %s", err)
		}
		start = min(max(start, 0), n)
		if err := asIndex(hi, n, &end); err != nil {
			return nil, fmt.Errorf("invalid end index: %s", err)
		}
		end = min(max(end, 0), n)
		if end < start {
			end = start
		}
		count = (end - start + step - 1) / step
	} else {
		start, end = n-1, -1
		if err := asIndex(lo, n, &start); err != nil {
			return nil, fmt.Errorf("invalid start index: %s", err)
		}
		if start >= n {
			start = n - 1
		}
		if err := asIndex(hi, n, &end); err != nil {
			return nil, fmt.Errorf("invalid end index: %s", err)
		}
		if end < -1 {
			end = -1
		}
		if start < end {
			start = end
		}
		count = (start - end - step - 1) / -step
	}
	var size int64
	switch x.(type) {
	case starlark.String:
		if step != 1 {
			size = int64(count) // a substring shares memory, a strided one does not
		}
	case starlark.Bytes:
		size = int64(count)
	default:
		size = int64(count) * elemBytes
	}
	if size > 0 {
		if err := stateOf(thread).useAlloc(size, "slice"); err != nil {
			return nil, err
		}
	}
	return sl.Slice(start, end, step), nil
}

func asIndex(v starlark.Value, n int, result *int) error {
	if v != starlark.None {
		i, err := starlark.AsInt32(v)
		if err != nil {
			return err
		}
		if i < 0 {
			i += n
		}
		*result = i
	}
	return nil
}

// ---- f(*args, **kwargs) ----

func spreadGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x := args[0]
	if n, ok := lenOf(x); ok && n > 0 {
		st := stateOf(thread)
		if err := st.useSteps(n); err != nil {
			return nil, err
		}
		if err := st.useAlloc(int64(n)*entryBytes, "argument unpacking"); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// ---- methods of built-in types ----

func methodGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return callMethod(thread, args[0], string(args[1].(starlark.String)), args[2:], kwargs)
}

// attrGuard implements x.name for a guarded method name used as a value
// (not called at once): the method is bound to a guarded wrapper.
func attrGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	return guardedAttr(args[0], string(args[1].(starlark.String)))
}

func guardedAttr(recv starlark.Value, name string) (starlark.Value, error) {
	v, err := getAttr(recv, name)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(*starlark.Builtin); !ok {
		return v, nil // a field, or a method of a type that needs no guard
	}
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return callMethod(thread, recv, name, args, kwargs)
	}), nil
}

// callMethod calls recv.name(*args, **kwargs), charging what the method
// allocates to the allocation budget: before the call when its size can be
// computed up front or may be far larger than the operands, after the call
// otherwise.
func callMethod(thread *starlark.Thread, recv starlark.Value, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if r, ok := recv.(starlark.String); ok && len(args) == 0 && len(kwargs) == 0 && (name == "upper" || name == "lower") {
		// Common methods, without binding a method value.
		var v string
		if name == "upper" {
			v = strings.ToUpper(string(r))
		} else {
			v = strings.ToLower(string(r))
		}
		return starlark.String(v), stateOf(thread).useAlloc(int64(len(v)), name)
	}
	m, err := getAttr(recv, name)
	if err != nil {
		return nil, err
	}
	st := stateOf(thread)
	what := name
	post := true // charge the size of the result
	switch r := recv.(type) {
	case *starlark.List:
		if (name == "index" || name == "remove") && len(args) > 0 && isContainer(args[0]) {
			return listSearch(thread, r, name, args, kwargs)
		}
	}
	switch r := recv.(type) {
	case starlark.String:
		switch name {
		case "join":
			if len(args) == 1 {
				if err := checkJoin(st, r, args[0], what); err != nil {
					return nil, err
				}
			}
		case "replace":
			if len(args) >= 2 {
				if err := checkReplace(st, r, args, what); err != nil {
					return nil, err
				}
			}
		case "format":
			if err := checkFormat(st, r, args, kwargs, what); err != nil {
				return nil, err
			}
			args = realizeAll(args)
			kwargs = realizeKwargs(kwargs)
		}
	case *starlark.List, *starlark.Dict, *starlark.Set, *lazyObject:
		switch name {
		case "extend", "update", "union", "intersection", "difference", "symmetric_difference":
			post = false
			unit := int64(elemBytes)
			if name != "extend" {
				unit = entryBytes
			}
			n, _ := lenOf(r)
			if name == "extend" || name == "update" {
				n = 0 // the receiver is not copied
			}
			for _, a := range args {
				if an, ok := lenOf(a); ok {
					n += an
				}
			}
			n += len(kwargs)
			if err := st.useSteps(n); err != nil {
				return nil, err
			}
			if err := st.useAlloc(int64(n)*unit, what); err != nil {
				return nil, err
			}
		}
	}
	v, err := starlark.Call(thread, m, args, kwargs)
	if err != nil {
		return nil, err
	}
	if post {
		size := sizeOf(v)
		if name == "split" || name == "rsplit" || name == "splitlines" {
			if l, ok := v.(*starlark.List); ok {
				size = int64(l.Len()) * strBytes
			}
		} else if name == "items" {
			size *= 4 // a 2-tuple per entry
		}
		if err := st.useAlloc(size, what); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func checkJoin(st *runState, sep starlark.String, iterable starlark.Value, what string) error {
	var elems []starlark.Value
	switch x := iterable.(type) {
	case *starlark.List:
		n := x.Len()
		if err := st.useSteps(n); err != nil {
			return err
		}
		total := int64(len(sep)) * int64(max(n-1, 0))
		for i := 0; i < n; i++ {
			if s, ok := x.Index(i).(starlark.String); ok {
				total += int64(len(s))
			}
		}
		return checkRoom(st, total, what)
	case starlark.Tuple:
		elems = x
	default:
		if n, ok := lenOf(iterable); ok {
			return st.useSteps(n)
		}
		return nil
	}
	if err := st.useSteps(len(elems)); err != nil {
		return err
	}
	total := int64(len(sep)) * int64(max(len(elems)-1, 0))
	for _, e := range elems {
		if s, ok := e.(starlark.String); ok {
			total += int64(len(s))
		}
	}
	return checkRoom(st, total, what)
}

func checkReplace(st *runState, s starlark.String, args starlark.Tuple, what string) error {
	old, ok1 := starlark.AsString(args[0])
	repl, ok2 := starlark.AsString(args[1])
	if !ok1 || !ok2 {
		return nil // the method reports the error
	}
	var count int64
	if old == "" {
		count = int64(utf8.RuneCountInString(string(s))) + 1
	} else {
		count = int64(strings.Count(string(s), old))
	}
	if len(args) >= 3 {
		if limit, err := starlark.AsInt32(args[2]); err == nil && limit >= 0 && int64(limit) < count {
			count = int64(limit)
		}
	}
	grow := int64(len(repl)) - int64(len(old))
	if grow <= 0 || count == 0 {
		return nil
	}
	if count > (st.room()-int64(len(s)))/grow {
		return st.useAlloc(st.room()+1, what)
	}
	return nil
}

func checkFormat(st *runState, format starlark.String, args starlark.Tuple, kwargs []starlark.Tuple, what string) error {
	n := int64(strings.Count(string(format), "{"))
	if n == 0 {
		return nil
	}
	var argMax int64
	for _, a := range args {
		n, err := formatSize(st, a, st.room())
		if err != nil {
			return err
		}
		argMax = max(argMax, n)
	}
	for _, kv := range kwargs {
		n, err := formatSize(st, kv[1], st.room())
		if err != nil {
			return err
		}
		argMax = max(argMax, n)
	}
	if argMax > (st.room()-int64(len(format)))/n {
		return st.useAlloc(st.room()+1, what)
	}
	return nil
}

// realizeKwargs realizes the values of keyword arguments, returning kwargs
// itself if none changed.
func realizeKwargs(kwargs []starlark.Tuple) []starlark.Tuple {
	var out []starlark.Tuple
	for i, kv := range kwargs {
		v, changed := realized(kv[1])
		if !changed {
			continue
		}
		if out == nil {
			out = append([]starlark.Tuple(nil), kwargs...)
		}
		out[i] = starlark.Tuple{kv[0], v}
	}
	if out == nil {
		return kwargs
	}
	return out
}

// checkRoom fails if n bytes do not fit in the allocation budget (without
// charging them).
func checkRoom(st *runState, n int64, what string) error {
	if n > st.room() {
		return st.useAlloc(n, what)
	}
	return nil
}
