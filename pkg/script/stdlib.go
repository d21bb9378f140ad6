package script

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"regexp"
	"sync"
	"time"

	slmath "go.starlark.net/lib/math"
	sltime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// predeclared is the environment of filters and transforms: the standard
// library modules, emit, the guarded universal built-ins and the guards.
var predeclared = func() starlark.StringDict {
	d := starlark.StringDict{
		"emit":   starlark.NewBuiltin("emit", emitBuiltin),
		"json":   jsonModule,
		"time":   timeModule,
		"hash":   hashModule,
		"re":     reModule,
		"base64": base64Module,
		"math":   slmath.Module,
	}
	maps.Copy(d, universeGuards)
	maps.Copy(d, guards)
	d.Freeze()
	return d
}()

func module(name string, members starlark.StringDict) *starlarkstruct.Module {
	return &starlarkstruct.Module{Name: name, Members: members}
}

// bytesPerStep is the amount of data a built-in may process per step it is
// charged.
const bytesPerStep = 256

// useData charges the processing of n bytes of input.
func (st *runState) useData(n int) error { return st.useSteps(n / bytesPerStep) }

// ---- json ----

var jsonModule = module("json", starlark.StringDict{
	"encode": starlark.NewBuiltin("json.encode", jsonEncode),
	"decode": starlark.NewBuiltin("json.decode", jsonDecode),
})

func jsonEncode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x); err != nil {
		return nil, err
	}
	st := stateOf(thread)
	e := st.encoder(int(min(st.room(), int64(1<<31-1))))
	err := e.encode(x)
	if err == nil {
		err = e.checkpoint()
	}
	if err == errJSONTooLarge {
		return nil, st.useAlloc(st.room()+1, b.Name())
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	if err := st.useAlloc(int64(len(e.buf)), b.Name()); err != nil {
		return nil, err
	}
	return starlark.String(e.buf), nil
}

func jsonDecode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, dflt starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "x", &x, "default?", &dflt); err != nil {
		return nil, err
	}
	s, ok := starlark.AsString(x)
	if !ok {
		if by, isBytes := x.(starlark.Bytes); isBytes {
			s = string(by)
		} else {
			return nil, fmt.Errorf("%s: for parameter x: got %s, want str or bytes", b.Name(), x.Type())
		}
	}
	st := stateOf(thread)
	if err := st.useData(len(s)); err != nil {
		return nil, err
	}
	v, size, err := decodeJSON(s, st.room(), st.keys)
	if err != nil {
		if errors.Is(err, ErrAllocLimit) {
			return nil, st.useAlloc(size, b.Name())
		}
		if dflt != nil {
			return dflt, nil
		}
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return v, st.useAlloc(size, b.Name())
}

// ---- time ----

const (
	rfc3339     = time.RFC3339
	rfc3339Nano = time.RFC3339Nano
)

var timeModule = func() *starlarkstruct.Module {
	lib := sltime.Module.Members
	return module("time", starlark.StringDict{
		"parse":          starlark.NewBuiltin("time.parse", timeParse),
		"format":         starlark.NewBuiltin("time.format", timeFormat),
		"now":            starlark.NewBuiltin("time.now", timeNow),
		"from_timestamp": lib["from_timestamp"],
		"parse_duration": lib["parse_duration"],
		"time":           lib["time"],
		"nanosecond":     lib["nanosecond"],
		"microsecond":    lib["microsecond"],
		"millisecond":    lib["millisecond"],
		"second":         lib["second"],
		"minute":         lib["minute"],
		"hour":           lib["hour"],
		"RFC3339":        starlark.String(rfc3339),
		"RFC3339_NANO":   starlark.String(rfc3339Nano),
	})
}()

// time.parse(s, layout=RFC3339, location="UTC")
func timeParse(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var s, layout, location string = "", rfc3339, "UTC"
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "s", &s, "layout?", &layout, "location?", &location); err != nil {
		return nil, err
	}
	if len(s) > 1024 || len(layout) > 1024 {
		return nil, fmt.Errorf("%s: string too long", b.Name())
	}
	loc := time.UTC
	if location != "UTC" {
		l, err := time.LoadLocation(location)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		loc = l
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return sltime.Time(t), nil
}

// time.format(t, layout=RFC3339): t is a time or an RFC 3339 string.
func timeFormat(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var tv starlark.Value
	layout := rfc3339
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "t", &tv, "layout?", &layout); err != nil {
		return nil, err
	}
	if len(layout) > 1024 {
		return nil, fmt.Errorf("%s: layout too long", b.Name())
	}
	var t time.Time
	switch v := tv.(type) {
	case sltime.Time:
		t = time.Time(v)
	case starlark.String:
		if len(v) > 1024 {
			return nil, fmt.Errorf("%s: string too long", b.Name())
		}
		p, err := time.Parse(rfc3339Nano, string(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		t = p
	default:
		return nil, fmt.Errorf("%s: for parameter t: got %s, want time.time or str", b.Name(), tv.Type())
	}
	return starlark.String(t.Format(layout)), nil
}

// time.now() returns the processing time of the event, the same for every
// call in one run.
func timeNow(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	return sltime.Time(stateOf(thread).nowTime()), nil
}

// ---- hash ----

var hashModule = module("hash", starlark.StringDict{
	"md5":         digestBuiltin("hash.md5", md5.New),
	"sha1":        digestBuiltin("hash.sha1", sha1.New),
	"sha256":      digestBuiltin("hash.sha256", sha256.New),
	"sha512":      digestBuiltin("hash.sha512", sha512.New),
	"hmac":        starlark.NewBuiltin("hash.hmac", hmacBuiltin),
	"hmac_sha256": starlark.NewBuiltin("hash.hmac_sha256", hmacBuiltin),
})

var hashAlgorithms = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New,
}

// stringOrBytes unpacks a str or bytes argument.
type stringOrBytes string

func (s *stringOrBytes) Unpack(v starlark.Value) error {
	switch v := v.(type) {
	case starlark.String:
		*s = stringOrBytes(v)
	case starlark.Bytes:
		*s = stringOrBytes(v)
	default:
		return fmt.Errorf("got %s, want str or bytes", v.Type())
	}
	return nil
}

func encodeDigest(fn string, sum []byte, encoding string) (starlark.Value, error) {
	switch encoding {
	case "hex":
		return starlark.String(hex.EncodeToString(sum)), nil
	case "base64":
		return starlark.String(base64.StdEncoding.EncodeToString(sum)), nil
	case "base64url":
		return starlark.String(base64.RawURLEncoding.EncodeToString(sum)), nil
	case "bytes":
		return starlark.Bytes(sum), nil
	}
	return nil, fmt.Errorf("%s: unknown encoding %q, want \"hex\", \"base64\", \"base64url\" or \"bytes\"", fn, encoding)
}

// hash.NAME(data, encoding="hex")
func digestBuiltin(name string, newHash func() hash.Hash) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var data stringOrBytes
		encoding := "hex"
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "data", &data, "encoding?", &encoding); err != nil {
			return nil, err
		}
		if err := stateOf(thread).useData(len(data)); err != nil {
			return nil, err
		}
		h := newHash()
		h.Write([]byte(data))
		return encodeDigest(b.Name(), h.Sum(nil), encoding)
	})
}

// hash.hmac(key, data, algorithm="sha256", encoding="hex") and
// hash.hmac_sha256(key, data, encoding="hex")
func hmacBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key, data stringOrBytes
	algorithm, encoding := "sha256", "hex"
	var err error
	if b.Name() == "hash.hmac" {
		err = starlark.UnpackArgs(b.Name(), args, kwargs, "key", &key, "data", &data, "algorithm?", &algorithm, "encoding?", &encoding)
	} else {
		err = starlark.UnpackArgs(b.Name(), args, kwargs, "key", &key, "data", &data, "encoding?", &encoding)
	}
	if err != nil {
		return nil, err
	}
	newHash, ok := hashAlgorithms[algorithm]
	if !ok {
		return nil, fmt.Errorf("%s: unknown algorithm %q, want \"md5\", \"sha1\", \"sha256\" or \"sha512\"", b.Name(), algorithm)
	}
	if err := stateOf(thread).useData(len(key) + len(data)); err != nil {
		return nil, err
	}
	m := hmac.New(newHash, []byte(key))
	m.Write([]byte(data))
	return encodeDigest(b.Name(), m.Sum(nil), encoding)
}

// ---- base64 ----

var base64Module = module("base64", starlark.StringDict{
	"encode": starlark.NewBuiltin("base64.encode", base64Encode),
	"decode": starlark.NewBuiltin("base64.decode", base64Decode),
})

func base64Encoding(url, padding bool) *base64.Encoding {
	switch {
	case url && padding:
		return base64.URLEncoding
	case url:
		return base64.RawURLEncoding
	case padding:
		return base64.StdEncoding
	}
	return base64.RawStdEncoding
}

// base64.encode(data, url=False, padding=True)
func base64Encode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var data stringOrBytes
	url, padding := false, true
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "data", &data, "url?", &url, "padding?", &padding); err != nil {
		return nil, err
	}
	enc := base64Encoding(url, padding)
	st := stateOf(thread)
	if err := st.useData(len(data)); err != nil {
		return nil, err
	}
	if err := st.useAlloc(int64(enc.EncodedLen(len(data))), b.Name()); err != nil {
		return nil, err
	}
	return starlark.String(enc.EncodeToString([]byte(data))), nil
}

// base64.decode(data, url=False): padding is optional.
func base64Decode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var data stringOrBytes
	url := false
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "data", &data, "url?", &url); err != nil {
		return nil, err
	}
	st := stateOf(thread)
	if err := st.useData(len(data)); err != nil {
		return nil, err
	}
	s := string(data)
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	enc := base64Encoding(url, false)
	if err := st.useAlloc(int64(enc.DecodedLen(len(s))), b.Name()); err != nil {
		return nil, err
	}
	out, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return starlark.String(out), nil
}

// ---- re ----

var reModule = module("re", starlark.StringDict{
	"match":     starlark.NewBuiltin("re.match", reMatch),
	"fullmatch": starlark.NewBuiltin("re.fullmatch", reMatch),
	"search":    starlark.NewBuiltin("re.search", reMatch),
	"findall":   starlark.NewBuiltin("re.findall", reFindall),
	"sub":       starlark.NewBuiltin("re.sub", reSub),
	"split":     starlark.NewBuiltin("re.split", reSplit),
	"escape":    starlark.NewBuiltin("re.escape", reEscape),
})

const reCacheSize = 256

// reCache holds compiled patterns, shared by all programs. When full it is
// emptied.
var reCache struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

func compileRE(fn, pattern string) (*regexp.Regexp, error) {
	reCache.Lock()
	re, ok := reCache.m[pattern]
	reCache.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	reCache.Lock()
	if reCache.m == nil || len(reCache.m) >= reCacheSize {
		reCache.m = make(map[string]*regexp.Regexp)
	}
	reCache.m[pattern] = re
	reCache.Unlock()
	return re, nil
}

// re.match(pattern, s) / re.fullmatch / re.search: a match object or None.
func reMatch(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern, s string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pattern", &pattern, "string", &s); err != nil {
		return nil, err
	}
	if err := stateOf(thread).useData(len(s)); err != nil {
		return nil, err
	}
	switch b.Name() {
	case "re.match":
		pattern = `\A(?:` + pattern + `)`
	case "re.fullmatch":
		pattern = `\A(?:` + pattern + `)\z`
	}
	re, err := compileRE(b.Name(), pattern)
	if err != nil {
		return nil, err
	}
	idx := re.FindStringSubmatchIndex(s)
	if idx == nil {
		return starlark.None, nil
	}
	return &matchValue{re: re, s: s, idx: idx}, nil
}

// countMatches counts the matches of re in s (at most n if n >= 0) without
// materializing them, and charges the memory their indexes will take.
func countMatches(st *runState, fn string, re *regexp.Regexp, s string, n int) (int, error) {
	if err := st.useAlloc(int64(len(s)), fn); err != nil {
		return 0, err
	}
	count := 0
	re.ReplaceAllStringFunc(s, func(string) string {
		count++
		return ""
	})
	if n >= 0 && count > n {
		count = n
	}
	perMatch := int64(24 + 16*(re.NumSubexp()+1))
	if err := st.useSteps(count); err != nil {
		return 0, err
	}
	return count, st.useAlloc(int64(count)*perMatch, fn)
}

// re.findall(pattern, s): the matches (no group), the group's matches (one
// group) or tuples of the groups' matches.
func reFindall(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern, s string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pattern", &pattern, "string", &s); err != nil {
		return nil, err
	}
	st := stateOf(thread)
	if err := st.useData(len(s)); err != nil {
		return nil, err
	}
	re, err := compileRE(b.Name(), pattern)
	if err != nil {
		return nil, err
	}
	count, err := countMatches(st, b.Name(), re, s, -1)
	if err != nil || count == 0 {
		return starlark.NewList(nil), err
	}
	ng := re.NumSubexp()
	if err := st.useAlloc(int64(count)*int64(max(ng, 1))*strBytes, b.Name()); err != nil {
		return nil, err
	}
	matches := re.FindAllStringSubmatchIndex(s, count)
	elems := make([]starlark.Value, len(matches))
	for i, m := range matches {
		switch ng {
		case 0:
			elems[i] = starlark.String(s[m[0]:m[1]])
		case 1:
			elems[i] = groupOrEmpty(s, m, 1)
		default:
			t := make(starlark.Tuple, ng)
			for g := 1; g <= ng; g++ {
				t[g-1] = groupOrEmpty(s, m, g)
			}
			elems[i] = t
		}
	}
	return starlark.NewList(elems), nil
}

func groupOrEmpty(s string, m []int, g int) starlark.String {
	if m[2*g] < 0 {
		return ""
	}
	return starlark.String(s[m[2*g]:m[2*g+1]])
}

// re.sub(pattern, repl, s, count=0): repl is a string, where $1, ${1} and
// ${name} refer to groups ($$ is a $), or a function of the match object
// returning a string.
func reSub(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern, s string
	var repl starlark.Value
	count := 0
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pattern", &pattern, "repl", &repl, "string", &s, "count?", &count); err != nil {
		return nil, err
	}
	replStr, isStr := repl.(starlark.String)
	if !isStr {
		if _, ok := repl.(starlark.Callable); !ok {
			return nil, fmt.Errorf("%s: for parameter repl: got %s, want str or function", b.Name(), repl.Type())
		}
	}
	st := stateOf(thread)
	if err := st.useData(len(s)); err != nil {
		return nil, err
	}
	re, err := compileRE(b.Name(), pattern)
	if err != nil {
		return nil, err
	}
	n := -1
	if count > 0 {
		n = count
	}
	nm, err := countMatches(st, b.Name(), re, s, n)
	if err != nil || nm == 0 {
		return starlark.String(s), err
	}
	room := st.room()
	var out []byte
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, nm) {
		out = append(out, s[last:m[0]]...)
		if isStr {
			out = re.ExpandString(out, string(replStr), s, m)
		} else {
			v, err := starlark.Call(thread, repl, starlark.Tuple{&matchValue{re: re, s: s, idx: m}}, nil)
			if err != nil {
				return nil, err
			}
			r, ok := v.(starlark.String)
			if !ok {
				return nil, fmt.Errorf("%s: repl returned %s, want str", b.Name(), v.Type())
			}
			out = append(out, r...)
		}
		last = m[1]
		if int64(len(out)) > room {
			return nil, st.useAlloc(int64(len(out)), b.Name())
		}
	}
	out = append(out, s[last:]...)
	return starlark.String(out), st.useAlloc(int64(len(out)), b.Name())
}

// re.split(pattern, s, maxsplit=0): like Python, groups of the pattern are
// included in the result (None for a group that did not participate).
func reSplit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern, s string
	maxsplit := 0
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pattern", &pattern, "string", &s, "maxsplit?", &maxsplit); err != nil {
		return nil, err
	}
	st := stateOf(thread)
	if err := st.useData(len(s)); err != nil {
		return nil, err
	}
	re, err := compileRE(b.Name(), pattern)
	if err != nil {
		return nil, err
	}
	n := -1
	if maxsplit > 0 {
		n = maxsplit
	}
	nm, err := countMatches(st, b.Name(), re, s, n)
	if err != nil {
		return nil, err
	}
	ng := re.NumSubexp()
	if err := st.useAlloc(int64(nm+1)*int64(ng+1)*strBytes, b.Name()); err != nil {
		return nil, err
	}
	elems := make([]starlark.Value, 0, (nm+1)*(ng+1))
	last := 0
	if nm > 0 {
		for _, m := range re.FindAllStringSubmatchIndex(s, nm) {
			elems = append(elems, starlark.String(s[last:m[0]]))
			for g := 1; g <= ng; g++ {
				if m[2*g] < 0 {
					elems = append(elems, starlark.None)
				} else {
					elems = append(elems, starlark.String(s[m[2*g]:m[2*g+1]]))
				}
			}
			last = m[1]
		}
	}
	elems = append(elems, starlark.String(s[last:]))
	return starlark.NewList(elems), nil
}

// re.escape(s)
func reEscape(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var s string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &s); err != nil {
		return nil, err
	}
	st := stateOf(thread)
	if err := st.useAlloc(int64(2*len(s)), b.Name()); err != nil {
		return nil, err
	}
	return starlark.String(regexp.QuoteMeta(s)), nil
}

// matchValue is the result of re.match, re.fullmatch and re.search, and the
// argument of a repl function of re.sub.
type matchValue struct {
	re  *regexp.Regexp
	s   string
	idx []int
}

var matchMethods = []string{"end", "group", "groupdict", "groups", "span", "start"}

func (m *matchValue) String() string {
	return fmt.Sprintf("<re.match span=(%d, %d) match=%s>", m.idx[0], m.idx[1], starlark.String(truncate(m.s[m.idx[0]:m.idx[1]], 64)).String())
}
func (m *matchValue) Type() string          { return "re.match" }
func (m *matchValue) Freeze()               {}
func (m *matchValue) Truth() starlark.Bool  { return starlark.True }
func (m *matchValue) Hash() (uint32, error) { return 0, errors.New("unhashable type: re.match") }
func (m *matchValue) AttrNames() []string   { return matchMethods }

func (m *matchValue) Attr(name string) (starlark.Value, error) {
	var fn func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)
	switch name {
	case "group":
		fn = m.group
	case "groups":
		fn = m.groups
	case "groupdict":
		fn = m.groupdict
	case "start", "end", "span":
		fn = func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var gv starlark.Value = starlark.MakeInt(0)
			if err := starlark.UnpackPositionalArgs(name, args, kwargs, 0, &gv); err != nil {
				return nil, err
			}
			g, err := m.groupIndex(gv)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			start, end := starlark.MakeInt(m.idx[2*g]), starlark.MakeInt(m.idx[2*g+1])
			switch name {
			case "start":
				return start, nil
			case "end":
				return end, nil
			}
			return starlark.Tuple{start, end}, nil
		}
	default:
		return nil, nil
	}
	return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return fn(args, kwargs)
	}), nil
}

func (m *matchValue) groupIndex(v starlark.Value) (int, error) {
	if name, ok := v.(starlark.String); ok {
		if i := m.re.SubexpIndex(string(name)); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("no such group %s", name.String())
	}
	i, err := starlark.AsInt32(v)
	if err != nil || i < 0 || i > m.re.NumSubexp() {
		return 0, fmt.Errorf("no such group %s", v.String())
	}
	return i, nil
}

func (m *matchValue) groupValue(g int, dflt starlark.Value) starlark.Value {
	if m.idx[2*g] < 0 {
		return dflt
	}
	return starlark.String(m.s[m.idx[2*g]:m.idx[2*g+1]])
}

// group(g=0): the text matched by group g (an index or a name), None if it
// did not participate.
func (m *matchValue) group(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var gv starlark.Value = starlark.MakeInt(0)
	if err := starlark.UnpackPositionalArgs("group", args, kwargs, 0, &gv); err != nil {
		return nil, err
	}
	g, err := m.groupIndex(gv)
	if err != nil {
		return nil, fmt.Errorf("group: %w", err)
	}
	return m.groupValue(g, starlark.None), nil
}

// groups(default=None): a tuple of all the groups.
func (m *matchValue) groups(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dflt starlark.Value = starlark.None
	if err := starlark.UnpackArgs("groups", args, kwargs, "default?", &dflt); err != nil {
		return nil, err
	}
	t := make(starlark.Tuple, m.re.NumSubexp())
	for g := range t {
		t[g] = m.groupValue(g+1, dflt)
	}
	return t, nil
}

// groupdict(default=None): a dict of the named groups.
func (m *matchValue) groupdict(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var dflt starlark.Value = starlark.None
	if err := starlark.UnpackArgs("groupdict", args, kwargs, "default?", &dflt); err != nil {
		return nil, err
	}
	names := m.re.SubexpNames()
	d := starlark.NewDict(len(names))
	for g, name := range names {
		if g > 0 && name != "" {
			_ = d.SetKey(starlark.String(name), m.groupValue(g, dflt))
		}
	}
	return d, nil
}
