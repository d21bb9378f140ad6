package script

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
)

// Replacements of Starlark's universal built-ins that may iterate over a
// virtual sequence (range(10**9)), copy their operand or render it as text.
// They charge their work to the step and allocation budgets, then call the
// original. They are predeclared, so they shadow the universal ones.
var universeGuards = starlark.StringDict{
	// materialize an iterable
	"list":      wrapIterating("list", elemBytes),
	"tuple":     wrapIterating("tuple", elemBytes),
	"sorted":    wrapIterating("sorted", elemBytes),
	"reversed":  wrapIterating("reversed", elemBytes),
	"set":       wrapIterating("set", entryBytes),
	"dict":      wrapIterating("dict", entryBytes),
	"enumerate": wrapIterating("enumerate", elemBytes*4),
	"bytes":     wrapIterating("bytes", 1),
	"zip":       starlark.NewBuiltin("zip", zipGuard),
	// iterate without allocating
	"any": wrapIterating("any", 0),
	"all": wrapIterating("all", 0),
	"min": wrapIterating("min", 0),
	"max": wrapIterating("max", 0),
	// render values as text
	"str":   wrapRender("str"),
	"repr":  wrapRender("repr"),
	"fail":  wrapRender("fail"),
	"print": starlark.NewBuiltin("print", printGuard),
	// other
	"int":     starlark.NewBuiltin("int", intGuard),
	"getattr": starlark.NewBuiltin("getattr", getattrGuard),
}

// comparing replaces the universal built-ins that compare values with
// versions that can compare lazy objects (compare.go).
var comparing = map[string]*starlark.Builtin{
	"sorted": starlark.NewBuiltin("sorted", sortedBuiltin),
	"min":    starlark.NewBuiltin("min", minmaxBuiltin),
	"max":    starlark.NewBuiltin("max", minmaxBuiltin),
}

func universal(name string) *starlark.Builtin {
	return starlark.Universe[name].(*starlark.Builtin)
}

// wrapIterating wraps a built-in whose cost is proportional to the length of
// its positional arguments: one step and unit bytes per element, charged
// before the call when the length is known, after it otherwise.
func wrapIterating(name string, unit int64) *starlark.Builtin {
	orig := universal(name)
	if b, ok := comparing[name]; ok {
		orig = b
	}
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		st := stateOf(thread)
		n := len(kwargs)
		known := true
		for _, a := range args {
			switch a := a.(type) {
			case starlark.String:
				if name == "bytes" {
					n += len(a)
				}
			case starlark.Int, starlark.Float, starlark.Bool, starlark.NoneType:
			default:
				if l, ok := lenOf(a); ok {
					n += l
				} else if _, ok := a.(starlark.Iterable); ok {
					known = false
				}
			}
		}
		if err := st.useSteps(n); err != nil {
			return nil, err
		}
		if err := st.useAlloc(int64(n)*unit, name); err != nil {
			return nil, err
		}
		v, err := orig.CallInternal(thread, args, kwargs)
		if err != nil {
			return nil, err
		}
		if !known && unit > 0 {
			if err := st.useAlloc(sizeOf(v), name); err != nil {
				return nil, err
			}
		}
		return v, nil
	})
}

func zipGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	st := stateOf(thread)
	n := -1
	for _, a := range args {
		if l, ok := lenOf(a); ok && (n < 0 || l < n) {
			n = l
		}
	}
	if n > 0 {
		if err := st.useSteps(n * len(args)); err != nil {
			return nil, err
		}
		if err := st.useAlloc(int64(n)*int64(len(args)+3)*elemBytes, "zip"); err != nil {
			return nil, err
		}
	}
	v, err := universal("zip").CallInternal(thread, args, kwargs)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		err = st.useAlloc(sizeOf(v)*int64(len(args)+3), "zip")
	}
	return v, err
}

// wrapRender wraps a built-in that renders its arguments as text.
func wrapRender(name string) *starlark.Builtin {
	orig := universal(name)
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if name == "str" && len(args) == 1 && len(kwargs) == 0 {
			if s, ok := args[0].(starlark.String); ok {
				return s, nil
			}
		}
		st := stateOf(thread)
		var total int64
		for _, a := range args {
			n, err := reprSize(st, a, st.room())
			if err != nil {
				return nil, err
			}
			if total += n; total > st.room() {
				return nil, st.useAlloc(total, name)
			}
		}
		v, err := orig.CallInternal(thread, realizeAll(args), kwargs)
		if err != nil {
			return nil, err
		}
		return v, st.useAlloc(sizeOf(v), name)
	})
}

// printGuard implements print(*args, sep=" "), sending at most maxPrintLen
// bytes to the configured print function.
func printGuard(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	sep := " "
	if err := starlark.UnpackArgs("print", nil, kwargs, "sep?", &sep); err != nil {
		return nil, err
	}
	st := stateOf(thread)
	if st.cfg.print == nil {
		return starlark.None, nil
	}
	var buf strings.Builder
	for i, x := range args {
		if i > 0 {
			buf.WriteString(truncate(sep, maxPrintLen))
		}
		switch x := x.(type) {
		case starlark.String:
			buf.WriteString(truncate(string(x), maxPrintLen))
		default:
			if n, err := reprSize(st, x, maxPrintLen); err != nil {
				return nil, err
			} else if n > maxPrintLen {
				fmt.Fprintf(&buf, "<%s too large to print>", x.Type())
			} else {
				buf.WriteString(realize(x).String())
			}
		}
		if buf.Len() > maxPrintLen {
			break
		}
	}
	st.print(thread, buf.String())
	return starlark.None, nil
}

// intGuard refuses to convert very long strings, whose conversion is
// quadratic.
func intGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		if s, ok := args[0].(starlark.String); ok && len(s) > maxIntDigits+8 {
			return nil, fmt.Errorf("int: string of %d characters exceeds the limit of %d digits", len(s), maxIntDigits)
		}
	}
	return universal("int").CallInternal(thread, args, kwargs)
}

// getattrGuard implements getattr(x, name[, default]); guarded methods are
// bound to guarded wrappers as x.name would be.
func getattrGuard(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) >= 2 && len(kwargs) == 0 {
		if name, ok := args[1].(starlark.String); ok && guardedMethods[string(name)] {
			v, err := guardedAttr(args[0], string(name))
			if err != nil && len(args) == 3 {
				return args[2], nil
			}
			return v, err
		}
	}
	return universal("getattr").CallInternal(thread, args, kwargs)
}
