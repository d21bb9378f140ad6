package script

import (
	"errors"
	"fmt"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Comparisons that may involve lazy objects (lazyjson.go).
//
// Starlark compares two values of the same type name with the method of
// the left one, and a *starlark.Dict (or a list or tuple holding one)
// assumes that the other dict is a *starlark.Dict too. These functions
// mirror starlark.CompareDepth for dicts, lists and tuples, accepting lazy
// objects anywhere, and leave every other comparison to Starlark. The
// rewriter (rewrite.go) turns comparisons whose operands may be containers
// into calls of the guards below; sorted, min, max, list.index and
// list.remove use them too.

var errCompareDepth = errors.New("comparison exceeded maximum recursion depth")

// isContainer reports whether v may hold a lazy object or be one.
func isContainer(v starlark.Value) bool {
	switch v.(type) {
	case *lazyObject, *starlark.Dict, *starlark.List, starlark.Tuple:
		return true
	}
	return false
}

// compareValues is starlark.Compare for values that may hold lazy objects.
func compareValues(op syntax.Token, x, y starlark.Value) (bool, error) {
	return compareDepth(op, x, y, starlark.CompareLimit)
}

// equalValues is starlark.Equal for values that may hold lazy objects.
func equalValues(x, y starlark.Value) (bool, error) {
	if x, ok := x.(starlark.String); ok {
		return x == y, nil // Starlark's fast path
	}
	return compareDepth(syntax.EQL, x, y, starlark.CompareLimit)
}

func compareDepth(op syntax.Token, x, y starlark.Value, depth int) (bool, error) {
	if depth < 1 {
		return false, errCompareDepth
	}
	switch xv := x.(type) {
	case *starlark.Dict, *lazyObject:
		if isDict(y) {
			return compareDicts(op, x, y, depth)
		}
	case *starlark.List:
		if yv, ok := y.(*starlark.List); ok {
			return compareSlices(op, xv, yv, xv.Len(), yv.Len(), depth)
		}
	case starlark.Tuple:
		if yv, ok := y.(starlark.Tuple); ok {
			return compareSlices(op, xv, yv, len(xv), len(yv), depth)
		}
	}
	// The operands are not two containers of the same type: Starlark
	// compares them without looking inside a container.
	return starlark.CompareDepth(op, x, y, depth)
}

// compareSlices mirrors Starlark's comparison of lists and tuples.
func compareSlices(op syntax.Token, x, y starlark.Indexable, nx, ny, depth int) (bool, error) {
	if nx != ny && (op == syntax.EQL || op == syntax.NEQ) {
		return op == syntax.NEQ, nil
	}
	for i := 0; i < nx && i < ny; i++ {
		xi, yi := x.Index(i), y.Index(i)
		if eq, err := equalDepth(xi, yi, depth-1); err != nil {
			return false, err
		} else if !eq {
			switch op {
			case syntax.EQL:
				return false, nil
			case syntax.NEQ:
				return true, nil
			}
			return compareDepth(op, xi, yi, depth-1)
		}
	}
	return threeway(op, nx-ny), nil
}

func equalDepth(x, y starlark.Value, depth int) (bool, error) {
	return compareDepth(syntax.EQL, x, y, depth)
}

// compareDicts mirrors Starlark's comparison of dicts; x and y are dicts,
// lazy or not.
func compareDicts(op syntax.Token, x, y starlark.Value, depth int) (bool, error) {
	switch op {
	case syntax.EQL:
		return dictsEqual(x, y, depth)
	case syntax.NEQ:
		eq, err := dictsEqual(x, y, depth)
		return !eq, err
	}
	return false, fmt.Errorf("%s %s %s not implemented", x.Type(), op, y.Type())
}

func dictsEqual(x, y starlark.Value, depth int) (bool, error) {
	if dictLen(x) != dictLen(y) {
		return false, nil
	}
	ym := y.(starlark.Mapping)
	for _, item := range x.(starlark.IterableMapping).Items() {
		if yval, found, _ := ym.Get(item[0]); !found {
			return false, nil
		} else if eq, err := equalDepth(item[1], yval, depth-1); err != nil {
			return false, err
		} else if !eq {
			return false, nil
		}
	}
	return true, nil
}

func threeway(op syntax.Token, cmp int) bool {
	switch op {
	case syntax.EQL:
		return cmp == 0
	case syntax.NEQ:
		return cmp != 0
	case syntax.LE:
		return cmp <= 0
	case syntax.LT:
		return cmp < 0
	case syntax.GE:
		return cmp >= 0
	case syntax.GT:
		return cmp > 0
	}
	panic(op)
}

// ---- guards ----

// compareGuards are the guards of the comparison operators; see
// rewrite.go.
var compareGuards = map[syntax.Token]string{
	syntax.EQL:    "$eq",
	syntax.NEQ:    "$ne",
	syntax.LT:     "$lt",
	syntax.LE:     "$le",
	syntax.GT:     "$gt",
	syntax.GE:     "$ge",
	syntax.IN:     "$in",
	syntax.NOT_IN: "$notin",
}

func compareGuard(op syntax.Token) builtinFunc {
	return func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		var ok bool
		var err error
		if isContainer(x) || isContainer(y) {
			ok, err = compareValues(op, x, y)
		} else {
			ok, err = starlark.Compare(op, x, y)
		}
		if err != nil {
			return nil, err
		}
		return starlark.Bool(ok), nil
	}
}

// inGuard implements x in y (or x not in y) as Starlark does.
func inGuard(not bool) builtinFunc {
	return func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		var found bool
		if !isContainer(x) {
			// Starlark compares x with the elements of y without
			// looking inside them.
			y = nil
		}
		switch yv := y.(type) {
		case *starlark.List:
			f, err := sliceHas(yv, yv.Len(), x)
			if err != nil {
				return nil, err
			}
			found = f
		case starlark.Tuple:
			f, err := sliceHas(yv, len(yv), x)
			if err != nil {
				return nil, err
			}
			found = f
		default:
			v, err := starlark.Binary(syntax.IN, x, args[1])
			if err != nil {
				return nil, err
			}
			found = bool(v.(starlark.Bool))
		}
		return starlark.Bool(found != not), nil
	}
}

func sliceHas(s starlark.Indexable, n int, x starlark.Value) (bool, error) {
	for i := 0; i < n; i++ {
		if eq, err := equalValues(s.Index(i), x); err != nil {
			return false, err
		} else if eq {
			return true, nil
		}
	}
	return false, nil
}

// ---- built-ins that compare ----

// sortedBuiltin is Starlark's sorted, comparing with compareValues.
func sortedBuiltin(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var iterable starlark.Iterable
	var key starlark.Callable
	var reverse bool
	if err := starlark.UnpackArgs("sorted", args, kwargs,
		"iterable", &iterable,
		"key?", &key,
		"reverse?", &reverse,
	); err != nil {
		return nil, err
	}
	iter := iterable.Iterate()
	defer iter.Done()
	var values []starlark.Value
	if n := starlark.Len(iterable); n > 0 {
		values = make(starlark.Tuple, 0, n)
	}
	var x starlark.Value
	for iter.Next(&x) {
		values = append(values, x)
	}
	var keys []starlark.Value
	if key != nil {
		keys = make([]starlark.Value, len(values))
		for i, v := range values {
			k, err := starlark.Call(thread, key, starlark.Tuple{v}, nil)
			if err != nil {
				return nil, err
			}
			keys[i] = k
		}
	}
	slice := &sortSlice{keys: keys, values: values}
	if reverse {
		sort.Stable(sort.Reverse(slice))
	} else {
		sort.Stable(slice)
	}
	return starlark.NewList(slice.values), slice.err
}

type sortSlice struct {
	keys   []starlark.Value // nil: values[i] is its own key
	values []starlark.Value
	err    error
}

func (s *sortSlice) Len() int { return len(s.values) }
func (s *sortSlice) Less(i, j int) bool {
	keys := s.keys
	if s.keys == nil {
		keys = s.values
	}
	ok, err := compareValues(syntax.LT, keys[i], keys[j])
	if err != nil {
		s.err = err
	}
	return ok
}
func (s *sortSlice) Swap(i, j int) {
	if s.keys != nil {
		s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	}
	s.values[i], s.values[j] = s.values[j], s.values[i]
}

// minmaxBuiltin is Starlark's min and max, comparing with compareValues.
func minmaxBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s requires at least one positional argument", b.Name())
	}
	var keyFunc starlark.Callable
	if err := starlark.UnpackArgs(b.Name(), nil, kwargs, "key?", &keyFunc); err != nil {
		return nil, err
	}
	op := syntax.LT
	if b.Name() == "max" {
		op = syntax.GT
	}
	var iterable starlark.Value
	if len(args) == 1 {
		iterable = args[0]
	} else {
		iterable = args
	}
	iter := starlark.Iterate(iterable)
	if iter == nil {
		return nil, fmt.Errorf("%s: %s value is not iterable", b.Name(), iterable.Type())
	}
	defer iter.Done()
	var extremum starlark.Value
	if !iter.Next(&extremum) {
		return nil, fmt.Errorf("%s: argument is an empty sequence", b.Name())
	}
	var extremeKey starlark.Value
	var keyargs starlark.Tuple
	if keyFunc == nil {
		extremeKey = extremum
	} else {
		keyargs = starlark.Tuple{extremum}
		res, err := starlark.Call(thread, keyFunc, keyargs, nil)
		if err != nil {
			return nil, err
		}
		extremeKey = res
	}
	var x starlark.Value
	for iter.Next(&x) {
		var key starlark.Value
		if keyFunc == nil {
			key = x
		} else {
			keyargs[0] = x
			res, err := starlark.Call(thread, keyFunc, keyargs, nil)
			if err != nil {
				return nil, err
			}
			key = res
		}
		if ok, err := compareValues(op, key, extremeKey); err != nil {
			return nil, fmt.Errorf("%s: %v", b.Name(), err)
		} else if ok {
			extremum = x
			extremeKey = key
		}
	}
	return extremum, nil
}

// unequal is a value equal to no other, of a type of its own: Starlark
// compares it with any value without looking inside containers.
type unequal struct{ _ byte }

func (*unequal) String() string        { return "<unequal>" }
func (*unequal) Type() string          { return "$unequal" }
func (*unequal) Freeze()               {}
func (*unequal) Truth() starlark.Bool  { return starlark.True }
func (*unequal) Hash() (uint32, error) { return 0, nil }

// listSearch implements list.index and list.remove when the value sought
// may hold lazy objects. The method is first called with a value equal to
// nothing, so that Starlark checks the arguments and, for remove, that the
// list may be modified, with its own errors; then the value is sought with
// equalValues.
func listSearch(thread *starlark.Thread, recv *starlark.List, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	m, _ := recv.Attr(name)
	method := m.(*starlark.Builtin)
	if len(args) == 0 {
		return method.CallInternal(thread, args, kwargs)
	}
	notFound := name + ": value not in list"
	if name == "remove" {
		notFound = "remove: element not found"
	}
	probe := append(starlark.Tuple{&unequal{}}, args[1:]...)
	if _, err := method.CallInternal(thread, probe, kwargs); err == nil || err.Error() != notFound {
		return nil, err
	}
	n := recv.Len()
	start, end := 0, n
	if name == "index" {
		if len(args) > 1 {
			start = clampIndex(args[1], n, 0)
		}
		if len(args) > 2 {
			end = clampIndex(args[2], n, n)
		}
	}
	for i := start; i < end; i++ {
		if eq, err := equalValues(recv.Index(i), args[0]); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		} else if eq {
			if name == "index" {
				return starlark.MakeInt(i), nil
			}
			pop, _ := recv.Attr("pop")
			if _, err := pop.(*starlark.Builtin).CallInternal(thread, starlark.Tuple{starlark.MakeInt(i)}, nil); err != nil {
				return nil, err
			}
			return starlark.None, nil
		}
	}
	return nil, errors.New(notFound)
}

// clampIndex mirrors the bounds of list.index, valid by now.
func clampIndex(v starlark.Value, n, dflt int) int {
	if v == starlark.None {
		return dflt
	}
	i, _ := starlark.AsInt32(v)
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}
