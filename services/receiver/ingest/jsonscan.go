package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// scanner validates JSON in one pass without building values: RFC 8259
// syntax, UTF-8 everywhere (encoding/json would silently replace invalid
// bytes), no raw control characters in strings (\u0000 escapes are fine),
// and a bounded nesting depth. Payloads are kept as the bytes received, so
// validating is all the receiver does with them.
type scanner struct {
	b        []byte
	i        int
	maxDepth int
}

// syntaxError is a JSON error at a byte offset of the scanned input.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

func (s *scanner) fail(msg string) *syntaxError { return &syntaxError{off: s.i, msg: msg} }

func (s *scanner) failf(format string, args ...any) *syntaxError {
	return &syntaxError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

// describe names the byte at the current offset for an error message.
func (s *scanner) describe() string {
	if s.i >= len(s.b) {
		return "end of input"
	}
	c := s.b[s.i]
	if c < utf8.RuneSelf {
		return fmt.Sprintf("character %q", c)
	}
	r, n := utf8.DecodeRune(s.b[s.i:])
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("invalid UTF-8 byte %#02x", c)
	}
	return fmt.Sprintf("character %q", r)
}

func (s *scanner) unexpected(context string) *syntaxError {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input " + context)
	}
	return s.fail("unexpected " + s.describe() + " " + context)
}

// ws skips JSON whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// validate checks that b is exactly one JSON value, surrounded by
// whitespace at most.
func validate(b []byte, maxDepth int) error {
	s := scanner{b: b, maxDepth: maxDepth}
	s.ws()
	if err := s.value(0); err != nil {
		return err
	}
	s.ws()
	if s.i < len(s.b) {
		return s.unexpected("after the JSON value")
	}
	return nil
}

// value scans one value at s.i; depth is the nesting of its container.
func (s *scanner) value(depth int) error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input, expecting a value")
	}
	switch c := s.b[s.i]; c {
	case '{':
		return s.object(depth + 1)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return s.number()
		}
		return s.unexpected("looking for the beginning of a value")
	}
}

func (s *scanner) enter(depth int) error {
	if depth > s.maxDepth {
		return s.failf("nesting deeper than %d levels", s.maxDepth)
	}
	return nil
}

func (s *scanner) object(depth int) error {
	if err := s.enter(depth); err != nil {
		return err
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.unexpected("looking for an object key")
		}
		if _, err := s.str(); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.unexpected("after an object key, expecting ':'")
		}
		s.i++
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input in an object, expecting ',' or '}'")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return s.unexpected("after an object value, expecting ',' or '}'")
		}
	}
}

func (s *scanner) array(depth int) error {
	if err := s.enter(depth); err != nil {
		return err
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input in an array, expecting ',' or ']'")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return nil
		default:
			return s.unexpected("after an array element, expecting ',' or ']'")
		}
	}
}

// strSafe marks the bytes a string scan passes over without a second look:
// everything but '"', '\\', control characters and non-ASCII.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special reports whether any of the eight bytes in w is a quote, a
// backslash, a control character or non-ASCII: a byte str must look at.
// Each test is the classic "has a zero byte" bit trick, exact as a whole.
func special(w uint64) bool {
	q := w ^ (lsb * '"')
	bs := w ^ (lsb * '\\')
	return ((q-lsb)&^q|(bs-lsb)&^bs|(w-lsb*0x20)&^w|w)&msb != 0
}

// str scans a string at s.i (which holds '"') and reports whether it has
// escapes.
func (s *scanner) str() (escaped bool, err error) {
	s.i++
	b := s.b
	for {
		// The fast path: a run of plain ASCII, eight bytes at a time, then
		// byte by byte up to the first byte that needs a look.
		i := s.i
		for i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		s.i = i
		if i >= len(b) {
			return false, s.fail("unexpected end of input in a string")
		}
		switch c := b[i]; {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, s.failf("raw control character U+%04X in a string (escape it, e.g. as \\u%04x)", c, c)
		default: // non-ASCII
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return false, s.failf("invalid UTF-8 byte %#02x in a string", c)
			}
			s.i += n
		}
	}
}

func (s *scanner) escape() error {
	s.i++ // backslash
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input in a string escape")
	}
	switch s.b[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return nil
	case 'u':
		s.i++
		for k := 0; k < 4; k++ {
			if s.i >= len(s.b) {
				return s.fail("unexpected end of input in a \\u escape")
			}
			if !isHex(s.b[s.i]) {
				return s.unexpected("in a \\u escape, expecting a hex digit")
			}
			s.i++
		}
		return nil
	default:
		return s.unexpected("in a string escape")
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return s.fail("unexpected end of input in a number")
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if s.digits() == 0 {
		return s.unexpected("in a number, expecting a digit")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.unexpected("after a decimal point, expecting a digit")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.unexpected("in an exponent, expecting a digit")
		}
	}
	return nil
}

func (s *scanner) literal(lit string) error {
	for k := 0; k < len(lit); k++ {
		if s.i >= len(s.b) {
			return s.failf("unexpected end of input in the literal %s", lit)
		}
		if s.b[s.i] != lit[k] {
			return s.unexpected("in the literal " + lit)
		}
		s.i++
	}
	return nil
}

// unquote returns the value of a scanned string literal (with its quotes).
func unquote(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw[1 : len(raw)-1])
	}
	var v string
	// The literal was validated; encoding/json only decodes the escapes.
	// Lone surrogate escapes become U+FFFD, as everywhere in Go.
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw[1 : len(raw)-1])
	}
	return v
}

// position turns a byte offset of b into a 1-based line and column (in
// bytes), for error messages.
func position(b []byte, off int) (line, col int) {
	off = min(off, len(b))
	line = 1 + bytes.Count(b[:off], []byte{'\n'})
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	return line, off - start + 1
}
