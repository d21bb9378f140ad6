package script

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"go.starlark.net/starlark"

	"github.com/samsa-dev/samsa/pkg/event"
)

// eventValue is the read-only event given to the filter and the transform.
// Its data is decoded on first access (and then only as far as it is read,
// see lazyjson.go), and is the run's own copy: the transform may modify it
// and return it.
type eventValue struct {
	st      *runState
	ev      *event.Event
	data    starlark.Value
	dataErr error
	raw     starlark.Value
	attrs   *starlark.Dict
}

var (
	_ starlark.HasAttrs = (*eventValue)(nil)

	eventAttrNames = []string{"attributes", "content_type", "data", "id", "key", "raw", "source", "subject", "time", "type"}

	emptyDict = func() *starlark.Dict {
		d := starlark.NewDict(0)
		d.Freeze()
		return d
	}()
)

func (e *eventValue) reset(ev *event.Event) {
	e.ev = ev
	e.data = nil
	e.dataErr = nil
	e.raw = nil
	e.attrs = nil
}

func (e *eventValue) String() string {
	if e.ev == nil {
		return "<event>"
	}
	return fmt.Sprintf("<event %s>", strconv.Quote(truncate(e.ev.ID, 64)))
}
func (e *eventValue) Type() string          { return "event" }
func (e *eventValue) Freeze()               {}
func (e *eventValue) Truth() starlark.Bool  { return starlark.True }
func (e *eventValue) Hash() (uint32, error) { return 0, errors.New("unhashable type: event") }
func (e *eventValue) AttrNames() []string   { return eventAttrNames }

func (e *eventValue) Attr(name string) (starlark.Value, error) {
	ev := e.ev
	if ev == nil {
		return nil, errors.New("event is not available at the top level of a program")
	}
	switch name {
	case "id":
		return starlark.String(ev.ID), nil
	case "source":
		return e.st.fields[fieldSource].value(ev.Source), nil
	case "type":
		return e.st.fields[fieldType].value(ev.Type), nil
	case "subject":
		return e.st.fields[fieldSubject].value(ev.Subject), nil
	case "key":
		return starlark.String(ev.Key), nil
	case "content_type":
		return e.st.fields[fieldContentType].value(ev.ContentType), nil
	case "time":
		if ev.Time.IsZero() {
			return starlark.String(""), nil
		}
		return starlark.String(ev.Time.Format(time.RFC3339Nano)), nil
	case "attributes":
		return e.attributes(), nil
	case "data":
		return e.decodedData()
	case "raw":
		return e.rawBytes()
	}
	return nil, nil
}

// Fields of the event whose values most events of a flow share.
const (
	fieldSource = iota
	fieldType
	fieldSubject
	fieldContentType
	numFields
)

// fieldCache keeps the Starlark value of a field from one run to the next:
// events of a flow mostly share their source, type and content type.
type fieldCache struct {
	s string
	v starlark.Value
}

func (c *fieldCache) value(s string) starlark.Value {
	if c.v == nil || c.s != s {
		c.s, c.v = s, starlark.String(s)
	}
	return c.v
}

func (e *eventValue) attributes() *starlark.Dict {
	if e.attrs != nil {
		return e.attrs
	}
	if len(e.ev.Attributes) == 0 {
		e.attrs = emptyDict
		return e.attrs
	}
	d := starlark.NewDict(len(e.ev.Attributes))
	for _, k := range slices.Sorted(maps.Keys(e.ev.Attributes)) {
		_ = d.SetKey(starlark.String(k), starlark.String(e.ev.Attributes[k]))
	}
	d.Freeze()
	e.attrs = d
	return d
}

func (e *eventValue) decodedData() (starlark.Value, error) {
	if e.data != nil || e.dataErr != nil {
		return e.data, e.dataErr
	}
	ev := e.ev
	if !isJSON(ev.ContentType) {
		v, err := e.rawBytes()
		if err != nil {
			return nil, err
		}
		e.data = v
		return v, nil
	}
	if len(ev.Data) == 0 {
		e.data = starlark.None
		return e.data, nil
	}
	st := e.st
	if err := st.useData(len(ev.Data)); err != nil {
		return nil, err
	}
	if err := st.useAlloc(int64(len(ev.Data)), "event.data"); err != nil {
		return nil, err
	}
	var v starlark.Value
	var size int64
	var err error
	if st.cfg.eagerData || len(ev.Data) > math.MaxInt32 { // the lazy index holds 32-bit offsets
		v, size, err = decodeJSON(string(ev.Data), st.room(), st.keys)
	} else {
		// The payload is scanned in place: the decoder copies what it
		// hands to the script (ev.Data is only read during the run).
		v, size, err = st.doc.load(unsafe.String(unsafe.SliceData(ev.Data), len(ev.Data)), st.room())
	}
	if err != nil {
		if errors.Is(err, ErrAllocLimit) {
			return nil, st.useAlloc(size, "event.data")
		}
		e.dataErr = fmt.Errorf("event.data: the payload is not valid JSON: %w", err)
		return nil, e.dataErr
	}
	if err := st.useAlloc(size, "event.data"); err != nil {
		return nil, err
	}
	e.data = v
	return v, nil
}

// rawBytes returns the payload as bytes, copied once per run.
func (e *eventValue) rawBytes() (starlark.Value, error) {
	if e.raw == nil {
		if err := e.st.useAlloc(int64(len(e.ev.Data)), "event.raw"); err != nil {
			return nil, err
		}
		e.raw = starlark.Bytes(e.ev.Data)
	}
	return e.raw, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// emitted is the value returned by emit(): a payload already encoded,
// with the metadata to override.
type emitted struct {
	out                                   Output
	setType, setSubject, setKey, setAttrs bool
	passthrough                           bool // the payload is the input's
}

func (m *emitted) String() string        { return "<emitted event>" }
func (m *emitted) Type() string          { return "emitted" }
func (m *emitted) Freeze()               {}
func (m *emitted) Truth() starlark.Bool  { return starlark.True }
func (m *emitted) Hash() (uint32, error) { return 0, errors.New("unhashable type: emitted") }

// emit(data, type=None, subject=None, key=None, attributes=None)
func emitBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	st := stateOf(thread)
	var data, typ, subject, key, attrs starlark.Value = nil, starlark.None, starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"data", &data, "type?", &typ, "subject?", &subject, "key?", &key, "attributes?", &attrs); err != nil {
		return nil, err
	}
	m := &emitted{}
	var err error
	if m.setType, err = optString(b.Name(), "type", typ, &m.out.Type); err != nil {
		return nil, err
	}
	if m.setSubject, err = optString(b.Name(), "subject", subject, &m.out.Subject); err != nil {
		return nil, err
	}
	if m.setKey, err = optString(b.Name(), "key", key, &m.out.Key); err != nil {
		return nil, err
	}
	if attrs != starlark.None {
		am, err := attributesMap(b.Name(), attrs)
		if err != nil {
			return nil, err
		}
		m.out.Attributes, m.setAttrs = am, true
	}
	if ev, ok := data.(*eventValue); ok && ev.ev != nil {
		m.passthrough = true
		m.out.Data, m.out.ContentType = ev.ev.Data, ev.ev.ContentType
		return m, nil
	}
	m.out.Data, m.out.ContentType, err = st.encodePayload(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), setRoot(err, "data"))
	}
	return m, nil
}

func optString(fn, param string, v starlark.Value, dst *string) (bool, error) {
	if v == starlark.None {
		return false, nil
	}
	s, ok := starlark.AsString(v)
	if !ok {
		return false, fmt.Errorf("%s: for parameter %s: got %s, want str or None", fn, param, v.Type())
	}
	*dst = s
	return true, nil
}

func attributesMap(fn string, v starlark.Value) (map[string]string, error) {
	d, ok := v.(starlark.IterableMapping)
	if !ok {
		return nil, fmt.Errorf("%s: for parameter attributes: got %s, want dict or None", fn, v.Type())
	}
	m := make(map[string]string)
	for k, x := range starlark.Entries(d) {
		ks, ok := starlark.AsString(k)
		if !ok {
			return nil, fmt.Errorf("%s: attributes: got a %s key, want str", fn, k.Type())
		}
		switch x := x.(type) {
		case starlark.String:
			m[ks] = string(x)
		case starlark.Int:
			m[ks] = x.String()
		case starlark.Bool:
			m[ks] = strconv.FormatBool(bool(x))
		default:
			return nil, fmt.Errorf("%s: attributes[%q]: got %s, want str, int or bool", fn, ks, x.Type())
		}
	}
	return m, nil
}

// encodePayload encodes a value returned by the transform (or given to
// emit) as an output payload, charging it to the output budget.
func (st *runState) encodePayload(v starlark.Value) ([]byte, string, error) {
	if b, ok := v.(starlark.Bytes); ok {
		ct := "application/octet-stream"
		if st.ev.ev != nil && !isJSON(st.ev.ev.ContentType) {
			ct = st.ev.ev.ContentType
		}
		if err := st.useOutput(len(b)); err != nil {
			return nil, "", err
		}
		return []byte(b), ct, nil
	}
	e := st.encoder(st.cfg.maxOutputBytes - st.outBytes)
	err := e.encode(v)
	if err == nil {
		err = e.checkpoint()
	}
	if err == errJSONTooLarge {
		return nil, "", st.outputLimitError()
	} else if err != nil {
		return nil, "", err
	}
	data := append([]byte(nil), e.buf...)
	st.outBytes += len(data)
	return data, jsonContentType, nil
}

func (st *runState) useOutput(n int) error {
	if n > st.cfg.maxOutputBytes-st.outBytes {
		return st.outputLimitError()
	}
	st.outBytes += n
	return nil
}

func (st *runState) outputLimitError() error {
	return &limitError{
		msg:      fmt.Sprintf("the output exceeds the limit of %s per event", formatBytes(int64(st.cfg.maxOutputBytes))),
		sentinel: ErrOutputLimit,
	}
}

// outputs converts the value returned by transform into outputs.
func (st *runState) outputs(v starlark.Value) ([]Output, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case *starlark.List:
		return st.fanOut(v.Len(), v.Index)
	case starlark.Tuple:
		return st.fanOut(len(v), func(i int) starlark.Value { return v[i] })
	}
	out, err := st.output(v)
	if err != nil {
		return nil, st.resultError(err)
	}
	return []Output{out}, nil
}

func (st *runState) fanOut(n int, index func(int) starlark.Value) ([]Output, error) {
	outs := make([]Output, 0, min(n, st.cfg.maxOutputs))
	for i := 0; i < n; i++ {
		x := index(i)
		if x == starlark.None {
			continue
		}
		if len(outs) == st.cfg.maxOutputs {
			return nil, &Error{Stage: StageTransform, Msg: fmt.Sprintf("the transform returned more than %d outputs", st.cfg.maxOutputs), cause: ErrOutputLimit}
		}
		out, err := st.output(x)
		if err != nil {
			return nil, st.resultError(withPath(err, "["+strconv.Itoa(i)+"]"))
		}
		outs = append(outs, out)
	}
	return outs, nil
}

func (st *runState) resultError(err error) error {
	if ee, ok := err.(*encodeError); ok {
		ee.root = "result"
		return &Error{Stage: StageTransform, Msg: "the transform returned a value that cannot be encoded as JSON: " + ee.Error(), cause: err}
	}
	return &Error{Stage: StageTransform, Msg: err.Error(), cause: err}
}

// output converts one result value into an Output.
func (st *runState) output(v starlark.Value) (Output, error) {
	ev := st.ev.ev
	out := passthrough(ev)
	switch v := v.(type) {
	case *eventValue:
		return out, nil
	case *emitted:
		out.Data, out.ContentType = v.out.Data, v.out.ContentType
		if v.setType {
			out.Type = v.out.Type
		}
		if v.setSubject {
			out.Subject = v.out.Subject
		}
		if v.setKey {
			out.Key = v.out.Key
		}
		if v.setAttrs {
			out.Attributes = v.out.Attributes
		}
		return out, nil
	}
	data, ct, err := st.encodePayload(v)
	if err != nil {
		return Output{}, err
	}
	out.Data, out.ContentType = data, ct
	return out, nil
}
