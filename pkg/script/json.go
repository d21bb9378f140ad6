package script

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	sltime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

// JSON <-> Starlark conversion.
//
// Objects become dicts (key order preserved), arrays lists, strings str,
// numbers without a fraction or exponent int (exact, however large, up to
// maxIntDigits digits), other numbers float, true/false bool and null None.
// Encoding is the inverse; floats always carry a '.' or an exponent so they
// decode as floats again.

const (
	maxJSONDepth = 1000
	maxIntDigits = 4300
)

// jsonError is a syntax error in a JSON text.
type jsonError struct {
	msg string
	off int
}

func (e *jsonError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg)
}

type jsonDecoder struct {
	s     string
	i     int
	depth int
	size  int64            // approximate bytes allocated, for accounting
	limit int64            // maximum size
	stack []starlark.Value // scratch space for array elements
	keys  map[string]starlark.Value
}

// keyCache interns the object keys of decoded JSON: events of one flow
// mostly share their keys, and a boxed string costs an allocation. A
// keyCache is not safe for concurrent use.
type keyCache map[string]starlark.Value

const (
	maxCachedKeys   = 1024
	maxCachedKeyLen = 64
)

func (d *jsonDecoder) key(k string) starlark.Value {
	if d.keys == nil || len(k) > maxCachedKeyLen {
		return starlark.String(k)
	}
	if v, ok := d.keys[k]; ok {
		return v
	}
	v := starlark.Value(starlark.String(k))
	if len(d.keys) < maxCachedKeys {
		// Clone k: it may be a substring of the whole payload.
		k = strings.Clone(k)
		v = starlark.String(k)
		d.keys[k] = v
	}
	return v
}

// Approximate heap cost of decoded values.
const (
	dictBytes = 512 // a dict with room for 8 entries
	listBytes = 48
)

var errDecodeTooLarge = &limitError{msg: "the decoded value is too large", sentinel: ErrAllocLimit}

// decodeJSON parses one JSON value occupying all of s (surrounding white
// space allowed). It returns the value and the approximate number of bytes
// it allocated (s itself excluded). When that size exceeds limit decoding
// stops with an error wrapping ErrAllocLimit.
func decodeJSON(s string, limit int64, keys keyCache) (starlark.Value, int64, error) {
	d := jsonDecoder{s: s, limit: limit, keys: keys}
	v, err := d.value()
	if err != nil {
		return nil, d.size, err
	}
	d.skipWS()
	if d.i < len(d.s) {
		return nil, d.size, d.errorf("unexpected %s after top-level value", d.quoteChar())
	}
	return v, d.size, nil
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return &jsonError{msg: fmt.Sprintf(format, args...), off: d.i}
}

func (d *jsonDecoder) quoteChar() string {
	if d.i >= len(d.s) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(d.s[d.i:])
	return strconv.QuoteRune(r)
}

func (d *jsonDecoder) skipWS() { d.i = skipSpace(d.s, d.i) }

func (d *jsonDecoder) value() (starlark.Value, error) {
	d.skipWS()
	if d.i >= len(d.s) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.s[d.i]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		if d.size += 16; d.size > d.limit {
			return nil, errDecodeTooLarge
		}
		return starlark.String(s), nil
	case 't':
		return d.literal("true", starlark.True)
	case 'f':
		return d.literal("false", starlark.False)
	case 'n':
		return d.literal("null", starlark.None)
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return d.number()
		}
	}
	return nil, d.errorf("unexpected %s looking for beginning of value", d.quoteChar())
}

func (d *jsonDecoder) literal(lit string, v starlark.Value) (starlark.Value, error) {
	if len(d.s)-d.i >= len(lit) && d.s[d.i:d.i+len(lit)] == lit {
		d.i += len(lit)
		return v, nil
	}
	return nil, d.errorf("unexpected %s in literal %s", d.quoteChar(), lit)
}

func (d *jsonDecoder) object() (starlark.Value, error) {
	d.depth++
	if d.depth > maxJSONDepth {
		return nil, d.errorf("nested deeper than %d levels", maxJSONDepth)
	}
	d.i++ // '{'
	dict := starlark.NewDict(0)
	if d.size += dictBytes; d.size > d.limit {
		return nil, errDecodeTooLarge
	}
	d.skipWS()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return dict, nil
	}
	for {
		d.skipWS()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.errorf("unexpected %s looking for beginning of object key string", d.quoteChar())
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipWS()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.errorf("unexpected %s after object key", d.quoteChar())
		}
		d.i++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		if err := dict.SetKey(d.key(k), v); err != nil {
			return nil, err
		}
		if dict.Len() > 8 {
			d.size += entryBytes
		}
		d.skipWS()
		if d.i < len(d.s) {
			switch d.s[d.i] {
			case ',':
				d.i++
				continue
			case '}':
				d.i++
				d.depth--
				return dict, nil
			}
		}
		return nil, d.errorf("unexpected %s after object key:value pair", d.quoteChar())
	}
}

func (d *jsonDecoder) array() (starlark.Value, error) {
	d.depth++
	if d.depth > maxJSONDepth {
		return nil, d.errorf("nested deeper than %d levels", maxJSONDepth)
	}
	d.i++ // '['
	if d.size += listBytes; d.size > d.limit {
		return nil, errDecodeTooLarge
	}
	d.skipWS()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return starlark.NewList(nil), nil
	}
	base := len(d.stack)
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.stack = append(d.stack, v)
		if d.size += elemBytes; d.size > d.limit {
			return nil, errDecodeTooLarge
		}
		d.skipWS()
		if d.i < len(d.s) {
			switch d.s[d.i] {
			case ',':
				d.i++
				continue
			case ']':
				d.i++
				d.depth--
				elems := make([]starlark.Value, len(d.stack)-base)
				copy(elems, d.stack[base:])
				clear(d.stack[base:])
				d.stack = d.stack[:base]
				return starlark.NewList(elems), nil
			}
		}
		return nil, d.errorf("unexpected %s after array element", d.quoteChar())
	}
}

// scanNumber reads the number at d.i (a '-' or a digit) and advances d.i
// past it. isInt is false when it has a fraction or an exponent.
func (d *jsonDecoder) scanNumber() (text string, isInt bool, err error) {
	s := d.s
	start := d.i
	i := d.i
	if s[i] == '-' {
		i++
	}
	if i >= len(s) {
		d.i = i
		return "", false, d.errorf("unexpected end of input in number")
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		d.i = i
		return "", false, d.errorf("unexpected %s in numeric literal", d.quoteChar())
	}
	isInt = true
	if i < len(s) && s[i] == '.' {
		isInt = false
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			return "", false, d.errorf("unexpected %s after decimal point in numeric literal", d.quoteChar())
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		isInt = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			d.i = i
			return "", false, d.errorf("unexpected %s in exponent of numeric literal", d.quoteChar())
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	return s[start:i], isInt, nil
}

func (d *jsonDecoder) number() (starlark.Value, error) {
	start := d.i
	text, isInt, err := d.scanNumber()
	if err != nil {
		return nil, err
	}
	if isInt {
		digits := len(text)
		neg := text[0] == '-'
		if neg {
			digits--
		}
		if digits <= 18 {
			var n int64
			for _, c := range []byte(text[len(text)-digits:]) {
				n = n*10 + int64(c-'0')
			}
			if neg {
				n = -n
			}
			return starlark.MakeInt64(n), nil
		}
		if digits > maxIntDigits {
			d.i = start
			return nil, d.errorf("integer with more than %d digits", maxIntDigits)
		}
		b, ok := new(big.Int).SetString(text, 10)
		if !ok {
			d.i = start
			return nil, d.errorf("invalid integer %s", text)
		}
		d.size += int64(digits)/2 + 32
		return starlark.MakeBigInt(b), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		d.i = start
		return nil, d.errorf("number %s out of range", text)
	}
	d.size += 8
	return starlark.Float(f), nil
}

// str parses a string literal starting at the opening quote.
func (d *jsonDecoder) str() (string, error) {
	s := d.s
	d.i++ // opening quote
	start := d.i
	ascii := true
	for i := plainPrefix(s, start); i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			r := s[start:i]
			d.i = i + 1
			if !ascii && !utf8.ValidString(r) {
				r = string(appendValidUTF8(nil, r))
				d.size += int64(len(r))
			}
			return r, nil
		case c == '\\':
			d.i = i
			return d.strSlow(start)
		case c < 0x20:
			d.i = i
			return "", d.errorf("invalid character %s in string literal", strconv.QuoteRune(rune(c)))
		case c >= utf8.RuneSelf:
			ascii = false
			i = plainPrefix(s, i+1) - 1
		}
	}
	d.i = len(s)
	return "", d.errorf("unexpected end of input in string literal")
}

// Bytes repeated in each byte of a word, for plainPrefix.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// plainPrefix returns the index of the first byte of s from i on that is
// not printable ASCII or is '"' or '\\', len(s) if none. It looks at 8
// bytes at a time.
func plainPrefix(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q := w ^ (lsbs * '"')
		b := w ^ (lsbs * '\\')
		// A byte below 0x20, a zero byte of q or b, or a byte of 0x80 or
		// more sets the high bit of its byte in special. So do some bytes
		// above such a byte (a borrow), never one below: the lowest bit
		// set is that of the first special byte.
		special := ((w - lsbs*0x20) | (q - lsbs) | (b - lsbs) | w) & msbs
		if special != 0 {
			return i + bits.TrailingZeros64(special)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// strSlow continues parsing a string literal that contains escapes; d.i is
// at the first backslash.
func (d *jsonDecoder) strSlow(start int) (string, error) {
	s := d.s
	buf := make([]byte, 0, d.i-start+16)
	buf = appendValidUTF8(buf, s[start:d.i])
	i := d.i
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			d.size += int64(len(buf))
			return string(buf), nil
		case c == '\\':
			if i+1 >= len(s) {
				d.i = len(s)
				return "", d.errorf("unexpected end of input in string escape")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					d.i = i
					return "", d.errorf("invalid \\u escape in string literal")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2, ok2 = hex4(s, i+2)
					}
					if ok2 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							i += 6
							buf = utf8.AppendRune(buf, dec)
							continue
						}
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				d.i = i
				return "", d.errorf("invalid escape %s in string literal", strconv.QuoteRune(rune(e)))
			}
			i += 2
		case c < 0x20:
			d.i = i
			return "", d.errorf("invalid character %s in string literal", strconv.QuoteRune(rune(c)))
		default:
			// Copy a run of ordinary bytes.
			j := i + 1
			for j < len(s) && s[j] != '"' && s[j] != '\\' && s[j] >= 0x20 {
				j++
			}
			buf = appendValidUTF8(buf, s[i:j])
			i = j
		}
	}
	d.i = len(s)
	return "", d.errorf("unexpected end of input in string literal")
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendValidUTF8 appends s to buf, replacing each byte of an invalid UTF-8
// sequence by U+FFFD (as encoding/json does).
func appendValidUTF8(buf []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, "\uFFFD"...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return buf
}

// ---- encoding ----

// encodeError is an error encoding a value as JSON, with the path of the
// offending element.
type encodeError struct {
	root  string   // name of the encoded value, e.g. "result"
	path  []string // innermost first
	msg   string
	cause error
}

func (e *encodeError) Error() string {
	if len(e.path) == 0 {
		return e.msg
	}
	b := []byte(e.root)
	for i := len(e.path) - 1; i >= 0; i-- {
		b = append(b, e.path[i]...)
	}
	return fmt.Sprintf("%s (at %s)", e.msg, b)
}

func (e *encodeError) Unwrap() error { return e.cause }

var errJSONTooLarge = errors.New("JSON too large")

type jsonEncoder struct {
	buf     []byte
	limit   int // maximum len(buf)
	depth   int
	st      *runState // if not nil, charged one step per bytesPerStep bytes of output
	charged int       // len(buf) already charged

	// Iteration over dict entries (encodeDict).
	entryFn  func(k, v starlark.Value) bool
	first    bool
	entryErr error
}

// encodeCheckpoint is the number of bytes of output between two checks of
// the step and time limits.
const encodeCheckpoint = 64 << 10

// checkpoint charges the output produced since the last one to the step
// budget, which also enforces the time limit.
func (e *jsonEncoder) checkpoint() error {
	if e.st == nil {
		return nil
	}
	n := len(e.buf) - e.charged
	e.charged = len(e.buf)
	return e.st.useSteps(n / bytesPerStep)
}

func (e *jsonEncoder) fail(format string, args ...any) error {
	return &encodeError{root: "value", msg: fmt.Sprintf(format, args...)}
}

// setRoot names the encoded value in the path of an encoding error.
func setRoot(err error, root string) error {
	if ee, ok := err.(*encodeError); ok {
		ee.root = root
	}
	return err
}

func withPath(err error, elem string) error {
	if ee, ok := err.(*encodeError); ok {
		ee.path = append(ee.path, elem)
	}
	return err
}

func (e *jsonEncoder) encode(v starlark.Value) error {
	switch v := v.(type) {
	case starlark.NoneType:
		e.buf = append(e.buf, "null"...)
	case starlark.Bool:
		if v {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
	case starlark.Int:
		if n, ok := v.Int64(); ok {
			e.buf = strconv.AppendInt(e.buf, n, 10)
		} else {
			b := v.BigInt()
			if b.BitLen() > maxIntBits {
				return e.fail("cannot encode an integer of %d bits", b.BitLen())
			}
			e.buf = b.Append(e.buf, 10)
		}
	case starlark.Float:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return e.fail("cannot encode %s as JSON", v.String())
		}
		e.buf = appendFloat(e.buf, f)
	case starlark.String:
		if len(v) > e.limit-len(e.buf) {
			return errJSONTooLarge
		}
		e.buf = appendQuoted(e.buf, string(v))
	case *starlark.List:
		if err := e.enter(); err != nil {
			return err
		}
		e.buf = append(e.buf, '[')
		for i, n := 0, v.Len(); i < n; i++ {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encode(v.Index(i)); err != nil {
				return withPath(err, "["+strconv.Itoa(i)+"]")
			}
			if err := e.check(); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		e.depth--
	case starlark.Tuple:
		if err := e.enter(); err != nil {
			return err
		}
		e.buf = append(e.buf, '[')
		for i, x := range v {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encode(x); err != nil {
				return withPath(err, "["+strconv.Itoa(i)+"]")
			}
			if err := e.check(); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		e.depth--
	case *starlark.Dict:
		if err := e.encodeDict(v); err != nil {
			return err
		}
	case *lazyObject:
		if err := e.encodeLazy(v); err != nil {
			return err
		}
	case sltime.Time:
		e.buf = append(e.buf, '"')
		e.buf = time.Time(v).AppendFormat(e.buf, time.RFC3339Nano)
		e.buf = append(e.buf, '"')
	case *eventValue:
		return e.fail("cannot encode the event itself inside a value; use event.data")
	case starlark.Bytes:
		return e.fail("cannot encode bytes as JSON; convert with str() or base64.encode()")
	default:
		return e.fail("cannot encode a value of type %s as JSON", v.Type())
	}
	if len(e.buf) > e.limit {
		return errJSONTooLarge
	}
	return nil
}

func (e *jsonEncoder) encodeDict(v *starlark.Dict) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.buf = append(e.buf, '{')
	if e.entryFn == nil {
		e.entryFn = e.dictEntry
	}
	first := e.first
	e.first = true
	v.Entries()(e.entryFn)
	e.first = first
	if err := e.entryErr; err != nil {
		e.entryErr = nil
		return err
	}
	e.buf = append(e.buf, '}')
	e.depth--
	return nil
}

// dictEntry encodes one entry of a dict, recording a failure in entryErr.
func (e *jsonEncoder) dictEntry(k, x starlark.Value) bool {
	ks, ok := k.(starlark.String)
	if !ok {
		e.entryErr = e.fail("cannot encode a dict with a %s key as JSON; keys must be strings", k.Type())
		return false
	}
	if !e.first {
		e.buf = append(e.buf, ',')
	}
	e.first = false
	e.buf = appendQuoted(e.buf, string(ks))
	e.buf = append(e.buf, ':')
	if err := e.encode(x); err != nil {
		e.entryErr = withPath(err, "["+strconv.Quote(string(ks))+"]")
		return false
	}
	if err := e.check(); err != nil {
		e.entryErr = err
		return false
	}
	return true
}

// encodeLazy encodes a lazy object as encodeDict would encode it as a
// dict, copying the text of the payload where it is already canonical.
func (e *jsonEncoder) encodeLazy(v *lazyObject) error {
	if v.dict != nil {
		return e.encodeDict(v.dict)
	}
	if !v.shared {
		// No list or object was taken out of v: it is unmodified.
		if ok, depth := v.canonical(); ok && e.depth+depth <= maxJSONDepth {
			return e.appendRaw(v.doc.s[v.start:v.end])
		}
	}
	v.index()
	if err := e.enter(); err != nil {
		return err
	}
	e.buf = append(e.buf, '{')
	for i := range v.entries {
		key := v.key(i)
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendQuoted(e.buf, key)
		e.buf = append(e.buf, ':')
		var err error
		raw := v.doc.s[v.entries[i].start:v.entries[i].end]
		if x := v.cached(i); x != nil {
			err = e.encode(x)
		} else if ok, depth := canonicalJSON(raw); ok && e.depth+depth <= maxJSONDepth {
			err = e.appendRaw(raw)
		} else {
			err = e.encode(v.value(i))
		}
		if err != nil {
			return withPath(err, "["+strconv.Quote(key)+"]")
		}
		if err := e.check(); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	e.depth--
	return nil
}

// appendRaw appends canonical JSON text.
func (e *jsonEncoder) appendRaw(s string) error {
	if len(s) > e.limit-len(e.buf) {
		return errJSONTooLarge
	}
	e.buf = append(e.buf, s...)
	return nil
}

// check enforces the size limit and, every encodeCheckpoint bytes, the
// step and time limits.
func (e *jsonEncoder) check() error {
	if len(e.buf) > e.limit {
		return errJSONTooLarge
	}
	if len(e.buf)-e.charged >= encodeCheckpoint {
		return e.checkpoint()
	}
	return nil
}

func (e *jsonEncoder) enter() error {
	e.depth++
	if e.depth > maxJSONDepth {
		return e.fail("value nested deeper than %d levels (does it contain itself?)", maxJSONDepth)
	}
	return nil
}

// appendFloat formats f like encoding/json does, but always with a
// fraction or an exponent so that it decodes as a float.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	for _, c := range b[start:] {
		if c == '.' {
			return b
		}
	}
	return append(b, ".0"...)
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. Invalid UTF-8 is replaced by
// U+FFFD.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
