package script

import (
	"reflect"
	"strconv"

	"go.starlark.net/syntax"
)

// The rewriter turns the operations whose cost is not bounded by the step
// counter into calls of guard built-ins (guard.go) that charge them to the
// allocation budget before performing them:
//
//	x + y, x * y, x % y, x << y, x | y, x & y, x ^ y, x - y
//	                               -> $add(x, y), $mul(x, y), ...
//	x += y (x a name)              -> x = $iadd(x, y)     (likewise *=, %=, ...)
//	a[i] += y                      -> $augindex("+", a, i, y)
//	a.f += y                       -> $augattr("+", a, "f", y)
//	x[lo:hi:step]                  -> $slice(x, lo, hi, step)
//	x.join(...) and other copying methods
//	                               -> $method(x, "join", ...)
//	x.join (not called)            -> $attr(x, "join")
//	f(*args, **kwargs)             -> f(*$spread(args), **$spread(kwargs))
//	x == y, x < y, x in y, ...     -> $eq(x, y), $lt(x, y), $in(x, y), ...
//
// Comparisons are guarded for another reason: the payload's objects are
// lazy dicts that Starlark's own containers cannot compare (compare.go). A
// comparison with a literal number, string, None, True or False (or a
// list or tuple of those) on either side cannot reach a dict and is left
// alone.
//
// The guard names start with '$' so no program can refer to them.
// Operations that cannot allocate in proportion to their operands (a number
// literal on one side of +, for instance) are left alone.
type rewriter struct {
	err error
	// bound holds the names None, True and False if the program binds
	// them (then they are not necessarily literals).
	bound map[string]bool
}

// newRewriter returns a rewriter for the syntax tree n.
func newRewriter(n syntax.Node) *rewriter {
	r := &rewriter{bound: make(map[string]bool)}
	bind := func(e syntax.Expr) { r.bindTarget(e) }
	syntax.Walk(n, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.AssignStmt:
			bind(n.LHS)
		case *syntax.DefStmt:
			bind(n.Name)
			r.bindParams(n.Params)
		case *syntax.LambdaExpr:
			r.bindParams(n.Params)
		case *syntax.ForStmt:
			bind(n.Vars)
		case *syntax.ForClause:
			bind(n.Vars)
		case *syntax.LoadStmt:
			for _, id := range n.To {
				bind(id)
			}
		}
		return true
	})
	return r
}

func (r *rewriter) bindTarget(e syntax.Expr) {
	switch e := e.(type) {
	case *syntax.Ident:
		switch e.Name {
		case "None", "True", "False":
			r.bound[e.Name] = true
		}
	case *syntax.ParenExpr:
		r.bindTarget(e.X)
	case *syntax.TupleExpr:
		for _, x := range e.List {
			r.bindTarget(x)
		}
	case *syntax.ListExpr:
		for _, x := range e.List {
			r.bindTarget(x)
		}
	}
}

func (r *rewriter) bindParams(params []syntax.Expr) {
	for _, p := range params {
		switch p := p.(type) {
		case *syntax.BinaryExpr:
			r.bindTarget(p.X)
		case *syntax.UnaryExpr:
			r.bindTarget(p.X)
		default:
			r.bindTarget(p)
		}
	}
}

// scalar reports whether e evaluates to a value that is neither a dict nor
// holds one, whatever the values of the program: a number, string or bytes
// literal, None, True or False, a unary operation (whose result is a
// number or a bool), or a list or tuple display of such values.
func (r *rewriter) scalar(e syntax.Expr) bool {
	switch e := unparen(e).(type) {
	case *syntax.Literal, *syntax.UnaryExpr:
		return true
	case *syntax.Ident:
		switch e.Name {
		case "None", "True", "False":
			return !r.bound[e.Name]
		}
	case *syntax.ListExpr:
		return r.allScalar(e.List)
	case *syntax.TupleExpr:
		return r.allScalar(e.List)
	}
	return false
}

func (r *rewriter) allScalar(list []syntax.Expr) bool {
	for _, x := range list {
		if !r.scalar(x) {
			return false
		}
	}
	return true
}

// binGuards maps binary operators to their guard.
var binGuards = map[syntax.Token]string{
	syntax.PLUS:       "$add",
	syntax.MINUS:      "$sub",
	syntax.STAR:       "$mul",
	syntax.PERCENT:    "$mod",
	syntax.LTLT:       "$lsh",
	syntax.PIPE:       "$or",
	syntax.AMP:        "$and",
	syntax.CIRCUMFLEX: "$xor",
}

// augOps maps augmented assignment operators to the binary operator.
var augOps = map[syntax.Token]syntax.Token{
	syntax.PLUS_EQ:       syntax.PLUS,
	syntax.MINUS_EQ:      syntax.MINUS,
	syntax.STAR_EQ:       syntax.STAR,
	syntax.PERCENT_EQ:    syntax.PERCENT,
	syntax.LTLT_EQ:       syntax.LTLT,
	syntax.AMP_EQ:        syntax.AMP,
	syntax.CIRCUMFLEX_EQ: syntax.CIRCUMFLEX,
	syntax.PIPE_EQ:       syntax.PIPE,
}

// guardedMethods are the methods of built-in types whose result is a copy
// (or an expansion) of their receiver or arguments.
var guardedMethods = map[string]bool{
	// str
	"capitalize": true, "format": true, "join": true, "lower": true, "upper": true,
	"title": true, "replace": true, "split": true, "rsplit": true, "splitlines": true,
	// list (index and remove compare values, see compare.go)
	"extend": true, "index": true, "remove": true,
	// dict
	"items": true, "keys": true, "values": true, "update": true,
	// set
	"union": true, "intersection": true, "difference": true, "symmetric_difference": true,
}

func (r *rewriter) file(f *syntax.File) {
	f.Stmts = r.stmts(f.Stmts)
}

func (r *rewriter) stmts(stmts []syntax.Stmt) []syntax.Stmt {
	for i, s := range stmts {
		stmts[i] = r.stmt(s)
	}
	return stmts
}

func (r *rewriter) stmt(s syntax.Stmt) syntax.Stmt {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		if s.Op == syntax.EQ {
			s.LHS = r.target(s.LHS)
			s.RHS = r.expr(s.RHS)
			return s
		}
		op, ok := augOps[s.Op]
		if !ok || skipGuard(op, s.LHS, s.RHS) {
			s.LHS = r.target(s.LHS)
			s.RHS = r.expr(s.RHS)
			return s
		}
		rhs := r.expr(s.RHS)
		switch lhs := unparen(s.LHS).(type) {
		case *syntax.Ident:
			guard := binGuards[op]
			switch op {
			case syntax.PLUS:
				guard = "$iadd" // list += iterable extends in place
			case syntax.PIPE:
				guard = "$ior" // dict |= dict updates in place
			}
			ref := &syntax.Ident{NamePos: lhs.NamePos, Name: lhs.Name}
			return &syntax.AssignStmt{OpPos: s.OpPos, Op: syntax.EQ, LHS: lhs, RHS: call(guard, s.OpPos, ref, rhs)}
		case *syntax.IndexExpr:
			return &syntax.ExprStmt{X: call("$augindex", s.OpPos, strLit(op.String(), s.OpPos), r.expr(lhs.X), r.expr(lhs.Y), rhs)}
		case *syntax.DotExpr:
			return &syntax.ExprStmt{X: call("$augattr", s.OpPos, strLit(op.String(), s.OpPos), r.expr(lhs.X), strLit(lhs.Name.Name, lhs.NamePos), rhs)}
		}
		s.LHS = r.target(s.LHS)
		s.RHS = rhs
		return s
	case *syntax.DefStmt:
		r.params(s.Params)
		s.Body = r.stmts(s.Body)
	case *syntax.ExprStmt:
		s.X = r.expr(s.X)
	case *syntax.ForStmt:
		s.Vars = r.target(s.Vars)
		s.X = r.expr(s.X)
		s.Body = r.stmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = r.expr(s.Cond)
		s.Body = r.stmts(s.Body)
	case *syntax.IfStmt:
		s.Cond = r.expr(s.Cond)
		s.True = r.stmts(s.True)
		s.False = r.stmts(s.False)
	case *syntax.ReturnStmt:
		if s.Result != nil {
			s.Result = r.expr(s.Result)
		}
	case *syntax.LoadStmt:
		if r.err == nil {
			r.err = syntax.Error{Pos: s.Load, Msg: "load is not supported; everything a transform can use is predeclared"}
		}
	case *syntax.BranchStmt:
	}
	return s
}

func (r *rewriter) params(params []syntax.Expr) {
	for _, p := range params {
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			b.Y = r.expr(b.Y)
		}
	}
}

// target rewrites the subexpressions of an assignment target.
func (r *rewriter) target(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.IndexExpr:
		e.X = r.expr(e.X)
		e.Y = r.expr(e.Y)
	case *syntax.DotExpr:
		e.X = r.expr(e.X)
	case *syntax.TupleExpr:
		for i, x := range e.List {
			e.List[i] = r.target(x)
		}
	case *syntax.ListExpr:
		for i, x := range e.List {
			e.List[i] = r.target(x)
		}
	case *syntax.ParenExpr:
		e.X = r.target(e.X)
	}
	return e
}

func (r *rewriter) exprs(list []syntax.Expr) {
	for i, x := range list {
		list[i] = r.expr(x)
	}
}

func (r *rewriter) expr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case nil:
		return nil
	case *syntax.BinaryExpr:
		e.X = r.expr(e.X)
		e.Y = r.expr(e.Y)
		if guard, ok := binGuards[e.Op]; ok && !skipGuard(e.Op, e.X, e.Y) {
			return call(guard, e.OpPos, e.X, e.Y)
		}
		if guard, ok := compareGuards[e.Op]; ok && !r.scalar(e.X) && !r.scalar(e.Y) {
			return call(guard, e.OpPos, e.X, e.Y)
		}
	case *syntax.UnaryExpr:
		e.X = r.expr(e.X)
	case *syntax.CallExpr:
		r.args(e.Args)
		if dot, ok := e.Fn.(*syntax.DotExpr); ok && guardedMethods[dot.Name.Name] {
			args := make([]syntax.Expr, 0, len(e.Args)+2)
			args = append(args, r.expr(dot.X), strLit(dot.Name.Name, dot.NamePos))
			args = append(args, e.Args...)
			c := call("$method", e.Lparen, args...)
			c.Rparen = e.Rparen
			return c
		}
		e.Fn = r.expr(e.Fn)
	case *syntax.DotExpr:
		e.X = r.expr(e.X)
		if guardedMethods[e.Name.Name] {
			return call("$attr", e.Dot, e.X, strLit(e.Name.Name, e.NamePos))
		}
	case *syntax.IndexExpr:
		e.X = r.expr(e.X)
		e.Y = r.expr(e.Y)
	case *syntax.SliceExpr:
		return call("$slice", e.Lbrack, r.expr(e.X), r.orNone(e.Lo, e.Lbrack), r.orNone(e.Hi, e.Lbrack), r.orNone(e.Step, e.Lbrack))
	case *syntax.ListExpr:
		r.exprs(e.List)
	case *syntax.TupleExpr:
		r.exprs(e.List)
	case *syntax.DictExpr:
		for _, x := range e.List {
			entry := x.(*syntax.DictEntry)
			entry.Key = r.expr(entry.Key)
			entry.Value = r.expr(entry.Value)
		}
	case *syntax.DictEntry:
		e.Key = r.expr(e.Key)
		e.Value = r.expr(e.Value)
	case *syntax.CondExpr:
		e.Cond = r.expr(e.Cond)
		e.True = r.expr(e.True)
		e.False = r.expr(e.False)
	case *syntax.ParenExpr:
		e.X = r.expr(e.X)
	case *syntax.Comprehension:
		for _, c := range e.Clauses {
			switch c := c.(type) {
			case *syntax.ForClause:
				c.Vars = r.target(c.Vars)
				c.X = r.expr(c.X)
			case *syntax.IfClause:
				c.Cond = r.expr(c.Cond)
			}
		}
		e.Body = r.expr(e.Body)
	case *syntax.LambdaExpr:
		r.params(e.Params)
		e.Body = r.expr(e.Body)
	case *syntax.Ident, *syntax.Literal:
	}
	return e
}

// args rewrites call arguments in place.
func (r *rewriter) args(args []syntax.Expr) {
	for i, a := range args {
		switch a := a.(type) {
		case *syntax.BinaryExpr:
			if a.Op == syntax.EQ { // name=value
				a.Y = r.expr(a.Y)
				continue
			}
		case *syntax.UnaryExpr:
			if a.Op == syntax.STAR || a.Op == syntax.STARSTAR {
				a.X = call("$spread", a.OpPos, r.expr(a.X))
				continue
			}
		}
		args[i] = r.expr(a)
	}
}

func (r *rewriter) orNone(e syntax.Expr, pos syntax.Position) syntax.Expr {
	if e == nil {
		return &syntax.Ident{NamePos: pos, Name: "None"}
	}
	return r.expr(e)
}

// skipGuard reports whether x op y cannot allocate in proportion to its
// operands whatever their values: arithmetic with a number literal.
func skipGuard(op syntax.Token, x, y syntax.Expr) bool {
	switch op {
	case syntax.PLUS, syntax.MINUS, syntax.PIPE, syntax.AMP, syntax.CIRCUMFLEX:
		// A number literal only combines with numbers.
		return isNumLit(x) || isNumLit(y)
	case syntax.STAR:
		// A float does not repeat sequences; int * int literal is constant.
		return isLit(x, syntax.FLOAT) || isLit(y, syntax.FLOAT) || (isNumLit(x) && isNumLit(y))
	case syntax.PERCENT:
		// number % y is arithmetic (or an error).
		return isNumLit(x)
	case syntax.LTLT:
		return isNumLit(x) && isNumLit(y)
	}
	return false
}

func isNumLit(e syntax.Expr) bool {
	return isLit(e, syntax.INT) || isLit(e, syntax.FLOAT)
}

func isLit(e syntax.Expr, tok syntax.Token) bool {
	l, ok := unparen(e).(*syntax.Literal)
	return ok && l.Token == tok
}

func unparen(e syntax.Expr) syntax.Expr {
	for {
		p, ok := e.(*syntax.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}

// call builds a call of the predeclared function name at pos. Errors in the
// call are reported at pos.
func call(name string, pos syntax.Position, args ...syntax.Expr) *syntax.CallExpr {
	return &syntax.CallExpr{
		Fn:     &syntax.Ident{NamePos: pos, Name: name},
		Lparen: pos,
		Args:   args,
		Rparen: pos,
	}
}

func strLit(s string, pos syntax.Position) *syntax.Literal {
	return &syntax.Literal{Token: syntax.STRING, TokenPos: pos, Raw: strconv.Quote(s), Value: s}
}

var positionType = reflect.TypeOf(syntax.Position{})

// shiftLines adds delta to the line of every position in the syntax tree n.
func shiftLines(n syntax.Node, delta int32) {
	shiftValue(reflect.ValueOf(n), delta)
}

func shiftValue(v reflect.Value, delta int32) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			shiftValue(v.Elem(), delta)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			shiftValue(v.Index(i), delta)
		}
	case reflect.Struct:
		if v.Type() == positionType {
			if line := v.FieldByName("Line"); line.CanSet() && line.Int() > 0 {
				line.SetInt(line.Int() + int64(delta))
			}
			return
		}
		if v.Type().PkgPath() != positionType.PkgPath() {
			return // e.g. a *big.Int literal value
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				shiftValue(v.Field(i), delta)
			}
		}
	}
}
