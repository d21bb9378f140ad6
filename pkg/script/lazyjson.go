package script

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Lazy decoding of event.data.
//
// Decoding a whole payload into Starlark values on the first use of
// event.data costs more than most filters and transforms themselves: a
// typical transform reads a handful of fields. So the payload is validated
// and measured in one pass that builds nothing (jsonScanner: the same errors
// at the same offsets, and the same allocation charged, as decoding it all),
// and its objects become lazyObjects: dicts whose entries are indexed on
// first use and whose values are decoded one by one when read. Arrays are
// decoded into real lists when their key is read, their objects lazily.
//
// A lazyObject behaves as a dict to scripts: its type is "dict"; it supports
// indexing, in, len, iteration, the dict methods, |, ==, dict(...), **kwargs,
// str and json.encode. Reading (d[k], d.get, in, len, keys, values, items)
// works on the index; any other operation first materializes the object
// into a real *starlark.Dict, which then holds its contents for good.
//
// Starlark's own containers assume that a value of type "dict" is a
// *starlark.Dict when they compare or print values, so the sandbox never
// lets them compare or render a lazyObject: comparisons of non-literal
// operands are rewritten into guards (compare.go) that compare lazy objects
// themselves, and the built-ins that render values (str, repr, print, %,
// format, fail) first realize their arguments (realize). An unmodified
// lazyObject re-encodes as its original bytes when they are already
// canonical.

// contSpan is the extent of an array or object in the payload: s[start]
// is '[' or '{' and s[end-1] its closing bracket.
type contSpan struct{ start, end int }

// jsonDoc is the payload of one run and the lazily decoded values that
// refer to it. It belongs to a runState and is reset for every run; no
// value may outlive the run (outputs are always encoded).
type jsonDoc struct {
	s         string
	keys      keyCache
	conts     []contSpan       // every array and object, in order of start
	entries   []lazyEntry      // storage of the objects' entries
	objs      []lazyObject     // storage of the nested objects
	vals      []starlark.Value // storage of the objects' decoded values
	keyStrs   []string         // keys that differ from their text
	canonKeys []keySpan        // scratch space of canonicalJSONKeys
	root      lazyObject
}

// Bounds on the storage a runState keeps from one run to the next.
const (
	maxKeptConts   = 4096
	maxKeptEntries = 4096
	objChunk       = 16
)

// reset empties doc for the next run. The storage it keeps is not cleared:
// what the last run left there is overwritten before it is read again, and
// it keeps at most the last payload in memory.
func (doc *jsonDoc) reset() {
	doc.s = ""
	doc.conts = resetSlice(doc.conts, maxKeptConts)
	doc.entries = resetSlice(doc.entries, maxKeptEntries)
	doc.objs = resetSlice(doc.objs, objChunk)
	doc.vals = resetSlice(doc.vals, maxKeptEntries)
	doc.keyStrs = resetSlice(doc.keyStrs, maxKeptEntries)
	doc.root = lazyObject{}
}

func resetSlice[T any](s []T, maxKept int) []T {
	if cap(s) > maxKept {
		return nil
	}
	return s[:0]
}

// load validates s, the payload of the run, as decodeJSON would decode it
// and returns its value: a lazy object for an object, otherwise the
// (shallowly) decoded value. size is what decoding it all would allocate;
// past limit, load stops with errDecodeTooLarge where decodeJSON would.
// s may be a view of bytes that change after the run: no value handed out
// refers to it (see own).
func (doc *jsonDoc) load(s string, limit int64) (v starlark.Value, size int64, err error) {
	doc.s = s
	sc := jsonScanner{jsonDecoder: jsonDecoder{s: s, limit: limit}, doc: doc}
	sc.skipWS()
	start := sc.i
	if err := sc.skipValue(); err != nil {
		return nil, sc.size, err
	}
	end := sc.i
	sc.skipWS()
	if sc.i < len(s) {
		return nil, sc.size, sc.errorf("unexpected %s after top-level value", sc.quoteChar())
	}
	if s[start] == '{' {
		doc.root.doc, doc.root.start, doc.root.end = doc, start, end
		return &doc.root, sc.size, nil
	}
	v, _ = doc.decodeAt(start)
	return v, sc.size, nil
}

// jsonScanner validates JSON without building values. Its checks, errors
// and size accounting mirror jsonDecoder's value, object and array, so that
// a payload fails (or exceeds the allocation budget) exactly when decoding
// it would. It records the span of every container and indexes the entries
// of a top-level object.
type jsonScanner struct {
	jsonDecoder
	doc *jsonDoc
}

func (d *jsonScanner) skipValue() error {
	d.skipWS()
	if d.i >= len(d.s) {
		return d.errorf("unexpected end of input")
	}
	switch c := d.s[d.i]; c {
	case '{':
		return d.skipObject()
	case '[':
		return d.skipArray()
	case '"':
		if _, err := d.str(); err != nil {
			return err
		}
		if d.size += 16; d.size > d.limit {
			return errDecodeTooLarge
		}
		return nil
	case 't':
		_, err := d.literal("true", starlark.True)
		return err
	case 'f':
		_, err := d.literal("false", starlark.False)
		return err
	case 'n':
		_, err := d.literal("null", starlark.None)
		return err
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return d.skipNumber()
		}
	}
	return d.errorf("unexpected %s looking for beginning of value", d.quoteChar())
}

func (d *jsonScanner) skipNumber() error {
	start := d.i
	text, isInt, err := d.scanNumber()
	if err != nil {
		return err
	}
	if isInt {
		digits := len(text)
		if text[0] == '-' {
			digits--
		}
		if digits <= 18 {
			return nil
		}
		if digits > maxIntDigits {
			d.i = start
			return d.errorf("integer with more than %d digits", maxIntDigits)
		}
		d.size += int64(digits)/2 + 32
		return nil
	}
	if mayOverflow(text) {
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			d.i = start
			return d.errorf("number %s out of range", text)
		}
	}
	d.size += 8
	return nil
}

// mayOverflow reports whether parsing the JSON number text as a float64
// might fail: only numbers of 1e308 or more overflow, and they have an
// exponent or at least 309 digits before the point.
func mayOverflow(text string) bool {
	digits, point := 0, false
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == 'e' || c == 'E':
			return true
		case c == '.':
			point = true
		case c >= '0' && c <= '9' && !point:
			digits++
		}
	}
	return digits >= 309
}

// openContainer records the container starting at d.i.
func (d *jsonScanner) openContainer() int {
	d.doc.conts = append(d.doc.conts, contSpan{start: d.i})
	return len(d.doc.conts) - 1
}

func (d *jsonScanner) skipObject() error {
	d.depth++
	if d.depth > maxJSONDepth {
		return d.errorf("nested deeper than %d levels", maxJSONDepth)
	}
	ci := d.openContainer()
	d.i++ // '{'
	if d.size += dictBytes; d.size > d.limit {
		return errDecodeTooLarge
	}
	var ib *indexBuilder
	if d.depth == 1 {
		ib = &indexBuilder{doc: d.doc, base: len(d.doc.entries)}
	}
	d.skipWS()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		d.doc.conts[ci].end = d.i
		if ib != nil {
			ib.finish(&d.doc.root)
		}
		return nil
	}
	// The decoder counts one entry's worth of bytes for every key set
	// once the dict holds more than 8 keys: count the distinct keys until
	// there are 9 (no need to compare them before the 9th key).
	var first [8]string
	entries, distinct := 0, 0
	for {
		d.skipWS()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return d.errorf("unexpected %s looking for beginning of object key string", d.quoteChar())
		}
		kstart := d.i + 1
		k, err := d.str()
		if err != nil {
			return err
		}
		d.skipWS()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return d.errorf("unexpected %s after object key", d.quoteChar())
		}
		d.i++
		d.skipWS()
		vstart := d.i
		if err := d.skipValue(); err != nil {
			return err
		}
		entries++
		switch {
		case ib != nil:
			ib.add(k, kstart, vstart, d.i)
			distinct = len(d.doc.entries) - ib.base
		case entries <= 8:
			first[entries-1] = k
		case distinct <= 8:
			if entries == 9 {
				distinct = countDistinct(&first)
			}
			if !slices.Contains(first[:distinct], k) {
				if distinct < 8 {
					first[distinct] = k
				}
				distinct++
			}
		}
		if distinct > 8 {
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
				d.doc.conts[ci].end = d.i
				if ib != nil {
					ib.finish(&d.doc.root)
				}
				return nil
			}
		}
		return d.errorf("unexpected %s after object key:value pair", d.quoteChar())
	}
}

// countDistinct moves the distinct keys of keys to its front and returns
// their number.
func countDistinct(keys *[8]string) int {
	n := 0
	for _, k := range keys {
		if !slices.Contains(keys[:n], k) {
			keys[n] = k
			n++
		}
	}
	return n
}

func (d *jsonScanner) skipArray() error {
	d.depth++
	if d.depth > maxJSONDepth {
		return d.errorf("nested deeper than %d levels", maxJSONDepth)
	}
	ci := d.openContainer()
	d.i++ // '['
	if d.size += listBytes; d.size > d.limit {
		return errDecodeTooLarge
	}
	d.skipWS()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		d.doc.conts[ci].end = d.i
		return nil
	}
	for {
		if err := d.skipValue(); err != nil {
			return err
		}
		if d.size += elemBytes; d.size > d.limit {
			return errDecodeTooLarge
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
				d.doc.conts[ci].end = d.i
				return nil
			}
		}
		return d.errorf("unexpected %s after array element", d.quoteChar())
	}
}

// ---- decoding a validated payload ----

// skipSpace returns the position of the first byte at or after i that is
// not JSON white space: one comparison per byte in the common case.
func skipSpace(s string, i int) int {
	for i < len(s) && s[i] <= ' ' && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// endOf returns the end of the array or object starting at i.
func (doc *jsonDoc) endOf(i int) int {
	c := doc.conts
	j := sort.Search(len(c), func(j int) bool { return c[j].start >= i })
	return c[j].end
}

// skipAt returns the end of the value starting at i.
func (doc *jsonDoc) skipAt(i int) int {
	s := doc.s
	switch s[i] {
	case '{', '[':
		return doc.endOf(i)
	case '"':
		return stringEnd(s, i)
	case 't', 'n':
		return i + 4
	case 'f':
		return i + 5
	}
	for i < len(s) {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the end of the valid string literal starting at i.
func stringEnd(s string, i int) int {
	i++
	for {
		j := plainPrefix(s, i)
		for j < len(s) && s[j] != '"' && s[j] != '\\' {
			j = plainPrefix(s, j+1)
		}
		if j >= len(s) {
			return len(s) // unreachable for valid JSON
		}
		if s[j] == '"' {
			return j + 1
		}
		i = j + 2 // an escape; \uXXXX continues with ordinary bytes
	}
}

// decodeAt decodes the value starting at i (objects lazily, arrays
// shallowly) and returns it with its end.
func (doc *jsonDoc) decodeAt(i int) (starlark.Value, int) {
	s := doc.s
	switch s[i] {
	case '{':
		end := doc.endOf(i)
		return doc.newObject(i, end), end
	case '[':
		return doc.decodeArray(i)
	case '"':
		d := jsonDecoder{s: s, i: i}
		str, _ := d.str()
		return starlark.String(doc.own(str)), d.i
	case 't':
		return starlark.True, i + 4
	case 'f':
		return starlark.False, i + 5
	case 'n':
		return starlark.None, i + 4
	}
	d := jsonDecoder{s: s, i: i}
	v, _ := d.number()
	return v, d.i
}

func (doc *jsonDoc) decodeArray(i int) (starlark.Value, int) {
	s := doc.s
	i = skipSpace(s, i+1)
	if s[i] == ']' {
		return starlark.NewList(nil), i + 1
	}
	var elems []starlark.Value
	for {
		v, end := doc.decodeAt(i)
		elems = append(elems, v)
		i = skipSpace(s, end)
		if s[i] == ']' {
			return starlark.NewList(elems[:len(elems):len(elems)]), i + 1
		}
		i = skipSpace(s, i+1) // ','
	}
}

func (doc *jsonDoc) newObject(start, end int) *lazyObject {
	if len(doc.objs) == cap(doc.objs) {
		// Earlier chunks stay referenced by the objects already handed out.
		doc.objs = make([]lazyObject, 0, objChunk)
	}
	doc.objs = append(doc.objs, lazyObject{doc: doc, start: start, end: end})
	return &doc.objs[len(doc.objs)-1]
}

// key returns k as a Starlark value, interned.
func (doc *jsonDoc) key(k string) starlark.Value {
	if v, ok := doc.keys[k]; ok {
		return v
	}
	d := jsonDecoder{keys: doc.keys}
	return d.key(doc.own(k))
}

// own returns s, copied if it is a part of the payload: the payload is a
// view of the event's bytes, valid during the run only, so every string
// handed to the script is copied out of it.
func (doc *jsonDoc) own(s string) string {
	if len(s) == 0 || len(doc.s) == 0 {
		return s
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	base := uintptr(unsafe.Pointer(unsafe.StringData(doc.s)))
	if p >= base && p < base+uintptr(len(doc.s)) {
		return strings.Clone(s)
	}
	return s
}

// ---- lazy objects ----

// lazyEntry is an entry of an object: offsets in the payload, so that
// building an index writes no pointers.
type lazyEntry struct {
	// The key is doc.s[kstart:kend], or doc.keyStrs[kend] when kstart is
	// -1 (a key with escapes or invalid UTF-8, which decodes to other text).
	kstart, kend int32
	start, end   int32 // the value: the last one given for the key
}

// lazyObject is a JSON object of the payload, decoded on demand. See the
// comment at the top of this file.
type lazyObject struct {
	doc        *jsonDoc
	start, end int // extent in doc.s
	indexed    bool
	entries    []lazyEntry      // in the order of the keys' first appearance
	vals       []starlark.Value // decoded values, nil until read
	byKey      map[string]int   // index of entries, for large objects
	shared     bool             // a list or object value was handed out
	canon      int8             // whether s[start:end] is canonical JSON: 0 unknown, 1 yes, -1 no
	canonDepth int
	dict       *starlark.Dict // once materialized, the object's contents
}

// indexSearch is the number of entries up to which keys are looked up by
// a linear search.
const indexSearch = 16

// indexBuilder appends the entries of one object to doc.entries, keeping
// one entry per key (at its first position, with the last value given,
// as a dict built from the object would).
type indexBuilder struct {
	doc   *jsonDoc
	base  int
	byKey map[string]int
	seen  uint64 // keySig of the keys so far
}

// keySig maps a key to a bit, so that most new keys are known to be new
// without comparing them with the others.
func keySig(k string) uint64 {
	h := uint(len(k))
	if len(k) > 0 {
		h = h*31 + uint(k[0]) + uint(k[len(k)-1])*7
	}
	return 1 << (h & 63)
}

// add adds the key k (the text of the payload from kstart, or decoded
// from it) with the value at [start, end).
func (b *indexBuilder) add(k string, kstart, start, end int) {
	doc := b.doc
	ents := doc.entries[b.base:]
	sig := keySig(k)
	switch {
	case b.byKey != nil:
		if i, ok := b.byKey[k]; ok {
			ents[i].start, ents[i].end = int32(start), int32(end)
			return
		}
	case b.seen&sig != 0:
		for i := range ents {
			if doc.entryKey(&ents[i]) == k {
				ents[i].start, ents[i].end = int32(start), int32(end)
				return
			}
		}
	}
	b.seen |= sig
	if b.byKey != nil {
		b.byKey[k] = len(ents)
	} else if len(ents) == indexSearch {
		b.byKey = make(map[string]int, 2*indexSearch)
		for i := range ents {
			b.byKey[doc.entryKey(&ents[i])] = i
		}
		b.byKey[k] = len(ents)
	}
	e := lazyEntry{kstart: int32(kstart), kend: int32(kstart + len(k)), start: int32(start), end: int32(end)}
	if kstart+len(k) > len(doc.s) || doc.s[kstart:kstart+len(k)] != k {
		e.kstart, e.kend = -1, int32(len(doc.keyStrs))
		doc.keyStrs = append(doc.keyStrs, k)
	}
	doc.entries = append(doc.entries, e)
}

// entryKey returns the key of an entry.
func (doc *jsonDoc) entryKey(e *lazyEntry) string {
	if e.kstart < 0 {
		return doc.keyStrs[e.kend]
	}
	return doc.s[e.kstart:e.kend]
}

// key returns the key of entry i.
func (o *lazyObject) key(i int) string { return o.doc.entryKey(&o.entries[i]) }

func (b *indexBuilder) finish(o *lazyObject) {
	n := len(b.doc.entries)
	o.entries = b.doc.entries[b.base:n:n]
	o.byKey = b.byKey
	o.indexed = true
}

// index builds the entries of o.
func (o *lazyObject) index() {
	if o.indexed {
		return
	}
	doc := o.doc
	s := doc.s
	b := indexBuilder{doc: doc, base: len(doc.entries)}
	i := skipSpace(s, o.start+1)
	if s[i] != '}' {
		for {
			d := jsonDecoder{s: s, i: i}
			k, _ := d.str()
			kstart := i + 1
			i = skipSpace(s, d.i)
			i = skipSpace(s, i+1) // ':'
			end := doc.skipAt(i)
			b.add(k, kstart, i, end)
			i = skipSpace(s, end)
			if s[i] == '}' {
				break
			}
			i = skipSpace(s, i+1) // ','
		}
	}
	b.finish(o)
}

func (o *lazyObject) find(k string) int {
	o.index()
	if o.byKey != nil {
		if i, ok := o.byKey[k]; ok {
			return i
		}
		return -1
	}
	for i := range o.entries {
		if o.key(i) == k {
			return i
		}
	}
	return -1
}

// value returns the value of entry i, decoding it on first use.
func (o *lazyObject) value(i int) starlark.Value {
	if o.vals == nil {
		o.vals = o.doc.newVals(len(o.entries))
	}
	v := o.vals[i]
	if v == nil {
		v, _ = o.doc.decodeAt(int(o.entries[i].start))
		switch v.(type) {
		case *starlark.List, *lazyObject:
			o.shared = true
		}
		o.vals[i] = v
	}
	return v
}

// cached returns the value of entry i if it was decoded, else nil.
func (o *lazyObject) cached(i int) starlark.Value {
	if o.vals == nil {
		return nil
	}
	return o.vals[i]
}

// newVals returns room for n values, all nil.
func (doc *jsonDoc) newVals(n int) []starlark.Value {
	if len(doc.vals)+n > cap(doc.vals) {
		// Earlier values stay referenced by their objects.
		doc.vals = make([]starlark.Value, 0, max(n, 64))
	}
	start := len(doc.vals)
	doc.vals = doc.vals[:start+n]
	v := doc.vals[start : start+n : start+n]
	clear(v)
	return v
}

// materialize turns o into a real dict, from which o then takes its
// contents.
func (o *lazyObject) materialize() *starlark.Dict {
	if o.dict == nil {
		o.index()
		d := starlark.NewDict(len(o.entries))
		for i := range o.entries {
			_ = d.SetKey(o.doc.key(o.key(i)), o.value(i))
		}
		o.dict = d
	}
	return o.dict
}

var (
	_ starlark.IterableMapping = (*lazyObject)(nil)
	_ starlark.Sequence        = (*lazyObject)(nil)
	_ starlark.HasSetKey       = (*lazyObject)(nil)
	_ starlark.HasAttrs        = (*lazyObject)(nil)
	_ starlark.HasBinary       = (*lazyObject)(nil)
	_ starlark.Comparable      = (*lazyObject)(nil)
	_ starlark.Container       = (*lazyObject)(nil)
)

func (o *lazyObject) String() string {
	return realize(o).String()
}

func (o *lazyObject) Type() string { return "dict" }

func (o *lazyObject) Freeze() { o.materialize().Freeze() }

func (o *lazyObject) Truth() starlark.Bool { return o.Len() > 0 }

func (o *lazyObject) Hash() (uint32, error) { return 0, errors.New("unhashable type: dict") }

func (o *lazyObject) Len() int {
	if o.dict != nil {
		return o.dict.Len()
	}
	o.index()
	return len(o.entries)
}

// Iterate materializes o: a dict being iterated refuses modifications, and
// the script may modify o while it iterates.
func (o *lazyObject) Iterate() starlark.Iterator { return o.materialize().Iterate() }

func (o *lazyObject) Items() []starlark.Tuple {
	if o.dict != nil {
		return o.dict.Items()
	}
	o.index()
	items := make([]starlark.Tuple, len(o.entries))
	pairs := make([]starlark.Value, 2*len(o.entries))
	for i := range o.entries {
		pair := pairs[2*i : 2*i+2 : 2*i+2]
		pair[0], pair[1] = o.doc.key(o.key(i)), o.value(i)
		items[i] = pair
	}
	return items
}

func (o *lazyObject) keys() []starlark.Value {
	if o.dict != nil {
		return o.dict.Keys()
	}
	o.index()
	keys := make([]starlark.Value, len(o.entries))
	for i := range o.entries {
		keys[i] = o.doc.key(o.key(i))
	}
	return keys
}

func (o *lazyObject) Get(k starlark.Value) (starlark.Value, bool, error) {
	if o.dict != nil {
		return o.dict.Get(k)
	}
	ks, ok := k.(starlark.String)
	if !ok {
		// Only strings can be keys of o, but an unhashable key is an error,
		// as for a dict.
		if _, err := k.Hash(); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	i := o.find(string(ks))
	if i < 0 {
		return nil, false, nil
	}
	return o.value(i), true, nil
}

// Has implements k in o (Starlark ignores the errors of a dict lookup
// there, so an unhashable key is simply not in o).
func (o *lazyObject) Has(k starlark.Value) (bool, error) {
	if o.dict != nil {
		_, found, _ := o.dict.Get(k)
		return found, nil
	}
	ks, ok := k.(starlark.String)
	return ok && o.find(string(ks)) >= 0, nil
}

func (o *lazyObject) SetKey(k, v starlark.Value) error { return o.materialize().SetKey(k, v) }

var (
	lazyDictMethods = map[string]*starlark.Builtin{
		"get":    starlark.NewBuiltin("get", lazyDictGet),
		"items":  starlark.NewBuiltin("items", lazyDictItems),
		"keys":   starlark.NewBuiltin("keys", lazyDictKeys),
		"values": starlark.NewBuiltin("values", lazyDictValues),
	}
	dictAttrNames = starlark.NewDict(0).AttrNames()
)

func (o *lazyObject) Attr(name string) (starlark.Value, error) {
	if o.dict == nil {
		if b := lazyDictMethods[name]; b != nil {
			return b.BindReceiver(o), nil
		}
		if _, found := sort.Find(len(dictAttrNames), func(i int) int { return cmpString(name, dictAttrNames[i]) }); !found {
			return nil, nil // no such method
		}
	}
	return o.materialize().Attr(name)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (o *lazyObject) AttrNames() []string { return dictAttrNames }

// Binary implements dict | dict when one operand is lazy.
func (o *lazyObject) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	if op != syntax.PIPE || !isDict(y) {
		return nil, nil
	}
	x := starlark.Value(o)
	if side == starlark.Right {
		x, y = y, x
	}
	z := starlark.NewDict(dictLen(x))
	for _, d := range [2]starlark.Value{x, y} {
		for _, item := range d.(starlark.IterableMapping).Items() {
			_ = z.SetKey(item[0], item[1])
		}
	}
	return z, nil
}

func (o *lazyObject) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	return compareDicts(op, o, y, depth)
}

// isDict reports whether v is a dict, lazy or not.
func isDict(v starlark.Value) bool {
	switch v.(type) {
	case *starlark.Dict, *lazyObject:
		return true
	}
	return false
}

func dictLen(v starlark.Value) int { return v.(starlark.Sequence).Len() }

func lazyDictGet(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var key, dflt starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &key, &dflt); err != nil {
		return nil, err
	}
	if v, ok, err := b.Receiver().(*lazyObject).Get(key); err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	} else if ok {
		return v, nil
	} else if dflt != nil {
		return dflt, nil
	}
	return starlark.None, nil
}

func lazyDictItems(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	items := b.Receiver().(*lazyObject).Items()
	res := make([]starlark.Value, len(items))
	for i, item := range items {
		res[i] = item
	}
	return starlark.NewList(res), nil
}

func lazyDictKeys(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	return starlark.NewList(b.Receiver().(*lazyObject).keys()), nil
}

func lazyDictValues(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	o := b.Receiver().(*lazyObject)
	if o.dict != nil {
		items := o.dict.Items()
		res := make([]starlark.Value, len(items))
		for i, item := range items {
			res[i] = item[1]
		}
		return starlark.NewList(res), nil
	}
	o.index()
	res := make([]starlark.Value, len(o.entries))
	for i := range o.entries {
		res[i] = o.value(i)
	}
	return starlark.NewList(res), nil
}

// canonical reports whether the text of o is what the encoder would write
// for it, and how deeply it nests.
func (o *lazyObject) canonical() (bool, int) {
	if o.canon == 0 {
		ok, depth := canonicalJSONKeys(o.doc.s[o.start:o.end], &o.doc.canonKeys)
		o.canon, o.canonDepth = -1, depth
		if ok {
			o.canon = 1
		}
	}
	return o.canon > 0, o.canonDepth
}

// ---- canonical JSON ----

// canonicalJSON reports whether the valid JSON text s is exactly what the
// encoder writes for the value it decodes to (no white space, no
// duplicate keys, strings and numbers written as the encoder writes them),
// and how deeply its arrays and objects nest.
func canonicalJSON(s string) (bool, int) {
	return canonicalJSONKeys(s, nil)
}

// canonicalJSONKeys is canonicalJSON using *keys as scratch space (keys
// may be nil).
func canonicalJSONKeys(s string, keys *[]keySpan) (bool, int) {
	c := canonChecker{s: s}
	if keys != nil {
		c.keys = (*keys)[:0]
	}
	ok := c.value(0) && c.i == len(s)
	if keys != nil && cap(c.keys) <= maxKeptEntries {
		*keys = c.keys[:0]
	}
	if !ok {
		return false, 0
	}
	return true, c.maxDepth
}

type canonChecker struct {
	s        string
	i        int
	maxDepth int
	keys     []keySpan // keys of the objects being checked
}

func (c *canonChecker) popKeys(n int) { c.keys = c.keys[:n] }

// keySpan is the text of a key, quotes included.
type keySpan struct{ start, end int32 }

func (c *canonChecker) value(depth int) bool {
	s := c.s
	if c.i >= len(s) {
		return false
	}
	switch s[c.i] {
	case '{':
		return c.object(depth + 1)
	case '[':
		depth++
		c.maxDepth = max(c.maxDepth, depth)
		c.i++
		if c.i < len(s) && s[c.i] == ']' {
			c.i++
			return true
		}
		for {
			if !c.value(depth) || c.i >= len(s) {
				return false
			}
			switch s[c.i] {
			case ',':
				c.i++
				continue
			case ']':
				c.i++
				return true
			}
			return false
		}
	case '"':
		return c.str()
	case 't', 'n':
		c.i += 4
		return true
	case 'f':
		c.i += 5
		return true
	}
	return c.number()
}

func (c *canonChecker) object(depth int) bool {
	s := c.s
	c.maxDepth = max(c.maxDepth, depth)
	c.i++
	if c.i < len(s) && s[c.i] == '}' {
		c.i++
		return true
	}
	// Canonical keys are equal exactly when their text is. Most keys
	// are known to be new from their signature alone.
	base := len(c.keys)
	defer c.popKeys(base)
	var sigs uint64
	var many map[string]bool
	for {
		if c.i >= len(s) || s[c.i] != '"' {
			return false
		}
		start := c.i
		if !c.str() {
			return false
		}
		k := s[start:c.i]
		switch {
		case many != nil:
			if many[k] {
				return false
			}
			many[k] = true
		default:
			sig := keySig(k[1 : len(k)-1])
			if sigs&sig != 0 {
				for _, x := range c.keys[base:] {
					if s[x.start:x.end] == k {
						return false
					}
				}
			}
			sigs |= sig
			c.keys = append(c.keys, keySpan{int32(start), int32(c.i)})
			if len(c.keys)-base > 64 {
				many = make(map[string]bool)
				for _, x := range c.keys[base:] {
					many[s[x.start:x.end]] = true
				}
			}
		}
		if c.i >= len(s) || s[c.i] != ':' {
			return false
		}
		c.i++
		if !c.value(depth) || c.i >= len(s) {
			return false
		}
		switch s[c.i] {
		case ',':
			c.i++
			continue
		case '}':
			c.i++
			return true
		}
		return false
	}
}

// str checks a string literal against appendQuoted.
func (c *canonChecker) str() bool {
	s := c.s
	i := c.i + 1
	for i < len(s) {
		i = plainPrefix(s, i)
		if i >= len(s) {
			break
		}
		ch := s[i]
		switch {
		case ch == '"':
			c.i = i + 1
			return true
		case ch == '\\':
			if i+1 >= len(s) {
				return false
			}
			switch s[i+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				// \u00xx in lower-case hex, for the control characters
				// without a short escape.
				if i+6 > len(s) || s[i+2] != '0' || s[i+3] != '0' || (s[i+4] != '0' && s[i+4] != '1') {
					return false
				}
				lo := s[i+5]
				var r byte
				switch {
				case lo >= '0' && lo <= '9':
					r = lo - '0'
				case lo >= 'a' && lo <= 'f':
					r = lo - 'a' + 10
				default:
					return false
				}
				r |= (s[i+4] - '0') << 4
				switch r {
				case '\b', '\t', '\n', '\f', '\r':
					return false
				}
				i += 6
			default:
				return false
			}
		case ch < 0x20:
			return false // not valid JSON
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		}
	}
	return false
}

func (c *canonChecker) number() bool {
	s := c.s
	start := c.i
	i := c.i
	isInt := true
	for i < len(s) {
		ch := s[i]
		if (ch >= '0' && ch <= '9') || ch == '-' {
			i++
			continue
		}
		if ch == '.' || ch == 'e' || ch == 'E' || ch == '+' {
			isInt = false
			i++
			continue
		}
		break
	}
	c.i = i
	text := s[start:i]
	if isInt {
		return text != "-0"
	}
	if len(text) > 32 {
		return false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return false
	}
	var buf [40]byte
	return string(appendFloat(buf[:0], f)) == text
}

// ---- realizing lazy objects ----

// realize returns v, or when lazy objects can be reached from v, a copy of
// the lists, tuples and dicts of v in which each lazy object is replaced by
// an equal dict, with the same sharing and cycles. Starlark renders such a
// copy exactly as it would render v had its lazy objects been dicts.
func realize(v starlark.Value) starlark.Value {
	v, _ = realized(v)
	return v
}

// realized is realize, reporting whether the result is a copy.
func realized(v starlark.Value) (starlark.Value, bool) {
	switch v.(type) {
	case *lazyObject, *starlark.Dict, *starlark.List, starlark.Tuple:
	default:
		return v, false
	}
	f := lazyFinder{seen: make(map[starlark.Value]bool)}
	if !f.reaches(v, 0) {
		return v, false
	}
	r := realizer{memo: make(map[starlark.Value]starlark.Value)}
	return r.copy(v, 0), true
}

// realizeAll realizes the elements of a tuple, returning t itself if none
// changed.
func realizeAll(t starlark.Tuple) starlark.Tuple {
	var out starlark.Tuple
	for i, x := range t {
		y, changed := realized(x)
		if !changed {
			continue
		}
		if out == nil {
			out = append(starlark.Tuple(nil), t...)
		}
		out[i] = y
	}
	if out == nil {
		return t
	}
	return out
}

// maxRealizeDepth bounds the recursion of realize. The render built-ins
// refuse values nested deeper than maxJSONDepth before realizing them.
const maxRealizeDepth = 4 * maxJSONDepth

type lazyFinder struct {
	seen map[starlark.Value]bool
}

func (f *lazyFinder) reaches(v starlark.Value, depth int) bool {
	if depth > maxRealizeDepth {
		return false
	}
	switch v := v.(type) {
	case *lazyObject:
		return true
	case *starlark.Dict:
		if f.seen[v] {
			return false
		}
		f.seen[v] = true
		for _, item := range v.Items() {
			if f.reaches(item[1], depth+1) {
				return true
			}
		}
	case *starlark.List:
		if f.seen[v] {
			return false
		}
		f.seen[v] = true
		for i, n := 0, v.Len(); i < n; i++ {
			if f.reaches(v.Index(i), depth+1) {
				return true
			}
		}
	case starlark.Tuple:
		for _, x := range v {
			if f.reaches(x, depth+1) {
				return true
			}
		}
	}
	return false
}

type realizer struct {
	memo map[starlark.Value]starlark.Value
}

func (r *realizer) copy(v starlark.Value, depth int) starlark.Value {
	if depth > maxRealizeDepth {
		return starlark.None
	}
	switch v := v.(type) {
	case *lazyObject:
		if c, ok := r.memo[v]; ok {
			return c
		}
		d := starlark.NewDict(v.Len())
		r.memo[v] = d
		if v.dict != nil {
			for _, item := range v.dict.Items() {
				_ = d.SetKey(item[0], r.copy(item[1], depth+1))
			}
		} else {
			for i := range v.entries {
				_ = d.SetKey(v.doc.key(v.key(i)), r.copy(v.value(i), depth+1))
			}
		}
		return d
	case *starlark.Dict:
		if c, ok := r.memo[v]; ok {
			return c
		}
		d := starlark.NewDict(v.Len())
		r.memo[v] = d
		for _, item := range v.Items() {
			_ = d.SetKey(item[0], r.copy(item[1], depth+1))
		}
		return d
	case *starlark.List:
		if c, ok := r.memo[v]; ok {
			return c
		}
		l := starlark.NewList(make([]starlark.Value, 0, v.Len()))
		r.memo[v] = l
		for i, n := 0, v.Len(); i < n; i++ {
			_ = l.Append(r.copy(v.Index(i), depth+1))
		}
		return l
	case starlark.Tuple:
		t := make(starlark.Tuple, len(v))
		for i, x := range v {
			t[i] = r.copy(x, depth+1)
		}
		return t
	}
	return v
}
