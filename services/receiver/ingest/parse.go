package ingest

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/ingestauth"
)

// media is a request body format the receiver accepts.
type media int

const (
	mediaJSON    media = iota // one payload
	mediaNDJSON               // one payload per line
	mediaCE                   // one CloudEvent, structured mode
	mediaCEBatch              // a JSON array of CloudEvents
)

// Content types of the formats.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeNDJSON  = "application/x-ndjson"
	ContentTypeCE      = "application/cloudevents+json"
	ContentTypeCEBatch = "application/cloudevents-batch+json"
)

// Header names of the binary mode (application/json and NDJSON).
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderKey            = "Samsa-Key"
	HeaderRequestID      = "X-Request-Id"
	headerTraceParent    = "Traceparent"
	headerTraceState     = "Tracestate"
	cePrefix             = "Ce-"
)

// Limits on the contents of an event.
const (
	maxIDLen        = 256
	maxKeyLen       = 1024
	maxTextLen      = 4096 // type, subject, attribute values, content type
	maxAttrNameLen  = 64
	maxTraceHdrLen  = 512
	maxSuffixLen    = 8 // "-<n>" of the ids of an NDJSON batch
	defaultDataType = ContentTypeJSON
)

// limits are the per-request bounds the parsers enforce.
type limits struct {
	maxEvents int
	maxDepth  int
}

// parseMedia maps a Content-Type header to a format and the media type
// recorded as the events' content type. Parameters other than a UTF-8
// charset are ignored.
func parseMedia(ct string) (media, string, error) {
	mt, params, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
				return 0, "", errorf(ErrUnsupportedMedia, "unsupported charset %q: send UTF-8", v)
			}
		}
	}
	switch mt {
	case ContentTypeJSON:
		return mediaJSON, ContentTypeJSON, nil
	case ContentTypeNDJSON, "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return mediaNDJSON, ContentTypeJSON, nil
	case ContentTypeCE:
		return mediaCE, "", nil
	case ContentTypeCEBatch:
		return mediaCEBatch, "", nil
	case "":
		return 0, "", errorf(ErrUnsupportedMedia, "missing Content-Type: send %s, %s, %s or %s",
			ContentTypeJSON, ContentTypeNDJSON, ContentTypeCE, ContentTypeCEBatch)
	}
	if strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json") {
		// A vendor JSON type (application/vnd.github+json): one payload.
		return mediaJSON, mt, nil
	}
	return 0, "", errorf(ErrUnsupportedMedia, "unsupported content type %q: send %s, %s, %s or %s",
		mt, ContentTypeJSON, ContentTypeNDJSON, ContentTypeCE, ContentTypeCEBatch)
}

// isJSONType reports whether a content type denotes JSON data.
func isJSONType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// binaryMeta is what the headers of a binary-mode request (application/json,
// NDJSON) say about its events.
type binaryMeta struct {
	id       string // ce-id, Idempotency-Key or the sender's delivery id
	typ      string
	subject  string
	key      string
	time     time.Time
	attrs    map[string]string
	traceCtx traceContext
}

type traceContext struct{ parent, state string }

// traceFrom reads W3C trace context. Malformed values are dropped, not
// refused: tracing must never cost an event.
func traceFrom(h http.Header) traceContext {
	tp := h.Get(headerTraceParent)
	if tp == "" || len(tp) > maxTraceHdrLen || !isASCIIPrint(tp) {
		return traceContext{}
	}
	ts := h.Get(headerTraceState)
	if len(ts) > maxTraceHdrLen || !isASCIIPrint(ts) {
		ts = ""
	}
	return traceContext{parent: tp, state: ts}
}

// parseBinaryMeta reads the ce-* headers, Idempotency-Key, Samsa-Key and
// trace context. preset is the source's signature preset: senders with a
// delivery id of their own (GitHub, Standard Webhooks) get it as event id
// when the request names none, so their redeliveries keep their id.
func parseBinaryMeta(h http.Header, now time.Time, preset string) (*binaryMeta, error) {
	m := &binaryMeta{time: now, traceCtx: traceFrom(h), key: h.Get(HeaderKey)}
	idem := h.Get(HeaderIdempotencyKey)
	var ceKey string
	for name, vs := range h {
		attr, ok := strings.CutPrefix(name, cePrefix)
		if !ok || len(vs) == 0 {
			continue
		}
		attr = strings.ToLower(attr)
		v := vs[0]
		if strings.IndexByte(v, '%') >= 0 {
			// The CloudEvents HTTP binding percent-encodes header values.
			dec, err := url.PathUnescape(v)
			if err != nil {
				return nil, errorf(ErrMalformed, "header ce-%s: invalid percent-encoding", attr)
			}
			v = dec
		}
		switch attr {
		case "id":
			m.id = v
		case "type":
			m.typ = v
		case "subject":
			m.subject = v
		case "time":
			t, err := parseTime(v)
			if err != nil {
				return nil, errorf(ErrMalformed, "header ce-time: %q is not an RFC 3339 time", v)
			}
			m.time = t
		case "partitionkey":
			ceKey = v
		case "specversion", "datacontenttype":
			// The specversion is implied; the data's type is Content-Type.
		default:
			if m.attrs == nil {
				m.attrs = make(map[string]string)
			}
			m.attrs[attr] = v
		}
	}
	if m.id != "" && idem != "" && m.id != idem {
		return nil, errorf(ErrMalformed, "headers ce-id (%q) and Idempotency-Key (%q) disagree: send one of them", m.id, idem)
	}
	if m.id == "" {
		m.id = idem
	}
	if m.key == "" {
		m.key = ceKey
	}
	switch preset {
	case ingestauth.PresetGitHub:
		if m.id == "" {
			m.id = h.Get(ingestauth.HeaderGitHubDelivery)
		}
		if m.typ == "" {
			m.typ = h.Get(ingestauth.HeaderGitHubEvent)
		}
	case ingestauth.PresetStandardWebhooks:
		if m.id == "" {
			m.id = h.Get(ingestauth.HeaderWebhookID)
		}
	}
	if m.id != "" {
		if err := checkID(m.id); err != nil {
			return nil, errorf(ErrMalformed, "event id (ce-id or Idempotency-Key header): %v", err)
		}
	}
	return m, nil
}

func (m *binaryMeta) event(id, contentType string, data []byte) event.Event {
	return event.Event{
		ID: id, Type: m.typ, Subject: m.subject, Time: m.time, Key: m.key,
		ContentType: contentType, Data: data, Attributes: m.attrs,
		TraceParent: m.traceCtx.parent, TraceState: m.traceCtx.state,
	}
}

// parseBody turns a request body into events (without ids where none was
// given) according to its format.
func parseBody(md media, contentType string, h http.Header, body []byte, now time.Time, preset string, lim limits, dst []event.Event) ([]event.Event, error) {
	switch md {
	case mediaJSON, mediaNDJSON:
		meta, err := parseBinaryMeta(h, now, preset)
		if err != nil {
			return nil, err
		}
		if md == mediaJSON {
			return parseSingle(meta, contentType, body, lim, dst)
		}
		return parseNDJSON(meta, body, lim, dst)
	default:
		def := ceDefaults{key: h.Get(HeaderKey), traceCtx: traceFrom(h), now: now}
		if md == mediaCE {
			return parseCE(body, def, lim, dst)
		}
		return parseCEBatch(body, def, lim, dst)
	}
}

func jsonError(body []byte, err error, base int) error {
	se := err.(*syntaxError)
	line, col := position(body, base+se.off)
	return errorf(ErrMalformed, "line %d, column %d: invalid JSON: %s", line, col, se.msg)
}

func parseSingle(meta *binaryMeta, contentType string, body []byte, lim limits, dst []event.Event) ([]event.Event, error) {
	start := 0
	for start < len(body) && isSpace(body[start]) {
		start++
	}
	data := bytes.TrimRight(body[start:], " \t\r\n")
	if len(data) == 0 {
		return nil, errorf(ErrMalformed, "empty body: send one JSON value")
	}
	if err := validate(data, lim.maxDepth); err != nil {
		return nil, jsonError(body, err, start)
	}
	return append(dst, meta.event(meta.id, contentType, data)), nil
}

// parseNDJSON reads one payload per line. Blank lines are skipped. With an
// id from the headers (Idempotency-Key, ce-id), the n-th event (from 0) gets
// the id "<id>-<n>", so that a retried batch keeps its ids.
func parseNDJSON(meta *binaryMeta, body []byte, lim limits, dst []event.Event) ([]event.Event, error) {
	if len(meta.id) > maxIDLen-maxSuffixLen {
		return nil, errorf(ErrMalformed, "Idempotency-Key (or ce-id) of an NDJSON batch: at most %d bytes, as event ids are <key>-<n>", maxIDLen-maxSuffixLen)
	}
	line := 0
	n := 0
	var idb []byte
	for off := 0; off < len(body); {
		line++
		end := bytes.IndexByte(body[off:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += off
		}
		start := off
		off = end + 1
		for start < end && isSpace(body[start]) {
			start++
		}
		data := bytes.TrimRight(body[start:end], " \t\r")
		if len(data) == 0 {
			continue
		}
		if n >= lim.maxEvents {
			return nil, errorf(ErrTooManyEvents, "line %d: more than %d events in one request: split the batch", line, lim.maxEvents)
		}
		if err := validate(data, lim.maxDepth); err != nil {
			se := err.(*syntaxError)
			return nil, errorf(ErrMalformed, "line %d, column %d: invalid JSON: %s", line, start-lineStart(body, start)+se.off+1, se.msg)
		}
		id := ""
		if meta.id != "" {
			idb = strconv.AppendInt(append(append(idb[:0], meta.id...), '-'), int64(n), 10)
			id = string(idb)
		}
		dst = append(dst, meta.event(id, ContentTypeJSON, data))
		n++
	}
	if n == 0 {
		return nil, errorf(ErrMalformed, "empty body: send one JSON value per line")
	}
	return dst, nil
}

func lineStart(b []byte, off int) int { return bytes.LastIndexByte(b[:off], '\n') + 1 }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ceDefaults are what the headers of a structured-mode request give events
// that do not say otherwise.
type ceDefaults struct {
	key      string
	traceCtx traceContext
	now      time.Time
}

func parseCE(body []byte, def ceDefaults, lim limits, dst []event.Event) ([]event.Event, error) {
	s := scanner{b: body, maxDepth: lim.maxDepth}
	s.ws()
	if s.i >= len(body) {
		return nil, errorf(ErrMalformed, "empty body: send one CloudEvent as a JSON object")
	}
	if body[s.i] != '{' {
		if err := s.value(0); err != nil {
			return nil, jsonError(body, err, 0)
		}
		return nil, errorf(ErrMalformed, "a CloudEvent must be a JSON object (for a batch, send %s)", ContentTypeCEBatch)
	}
	e, err := ceObject(&s, def, "")
	if err != nil {
		return nil, err
	}
	s.ws()
	if s.i < len(body) {
		return nil, jsonError(body, s.unexpected("after the JSON value"), 0)
	}
	return append(dst, e), nil
}

func parseCEBatch(body []byte, def ceDefaults, lim limits, dst []event.Event) ([]event.Event, error) {
	s := scanner{b: body, maxDepth: lim.maxDepth}
	s.ws()
	if s.i >= len(body) {
		return nil, errorf(ErrMalformed, "empty body: send a JSON array of CloudEvents")
	}
	if body[s.i] != '[' {
		if err := s.value(0); err != nil {
			return nil, jsonError(body, err, 0)
		}
		return nil, errorf(ErrMalformed, "a CloudEvents batch must be a JSON array (for one event, send %s)", ContentTypeCE)
	}
	s.i++
	s.ws()
	n := 0
	if s.i < len(body) && body[s.i] == ']' {
		s.i++
	} else {
		for {
			if n >= lim.maxEvents {
				return nil, errorf(ErrTooManyEvents, "event %d: more than %d events in one request: split the batch", n+1, lim.maxEvents)
			}
			if s.i >= len(body) {
				return nil, jsonError(body, s.fail("unexpected end of input in an array"), 0)
			}
			if body[s.i] != '{' {
				start := s.i
				if err := s.value(1); err != nil {
					return nil, jsonError(body, err, 0)
				}
				line, _ := position(body, start)
				return nil, errorf(ErrMalformed, "event %d (line %d): a CloudEvent must be a JSON object", n+1, line)
			}
			e, err := ceObject(&s, def, "event "+strconv.Itoa(n+1))
			if err != nil {
				return nil, err
			}
			dst = append(dst, e)
			n++
			s.ws()
			if s.i >= len(body) {
				return nil, jsonError(body, s.fail("unexpected end of input in an array, expecting ',' or ']'"), 0)
			}
			if body[s.i] == ']' {
				s.i++
				break
			}
			if body[s.i] != ',' {
				return nil, jsonError(body, s.unexpected("after an array element, expecting ',' or ']'"), 0)
			}
			s.i++
			s.ws()
		}
	}
	s.ws()
	if s.i < len(body) {
		return nil, jsonError(body, s.unexpected("after the JSON value"), 0)
	}
	if n == 0 {
		return nil, errorf(ErrMalformed, "empty batch: send at least one CloudEvent")
	}
	return dst, nil
}

// ceErr builds the errors of one CloudEvent, naming it and its line.
type ceErr struct {
	b     []byte
	start int    // offset of the event's '{'
	where string // "event 3", empty for a single event
}

func (c ceErr) fail(format string, args ...any) error {
	line, _ := position(c.b, c.start)
	p := "line " + strconv.Itoa(line)
	if c.where != "" {
		p = c.where + " (" + p + ")"
	}
	return errorf(ErrMalformed, p+": "+format, args...)
}

// ceObject reads one structured-mode CloudEvent at s.i ('{'). where names
// the event in errors ("event 3"), empty for a single event.
func ceObject(s *scanner, def ceDefaults, where string) (event.Event, error) {
	b := s.b
	ce := ceErr{b: b, start: s.i, where: where}
	e := event.Event{Time: def.now, Key: def.key, TraceParent: def.traceCtx.parent, TraceState: def.traceCtx.state}
	var (
		specversion, hasID     bool
		data, dataB64          []byte
		dataEsc, hasData       bool
		hasB64, hasContentType bool
		ownTrace               bool
	)
	s.i++ // {
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		return e, ce.fail("missing required attributes specversion and id")
	}
	for {
		if s.i >= len(b) || b[s.i] != '"' {
			return e, jsonError(b, s.unexpected("looking for an object key"), 0)
		}
		kStart := s.i
		kEsc, err := s.str()
		if err != nil {
			return e, jsonError(b, err, 0)
		}
		rawKey := b[kStart+1 : s.i-1]
		s.ws()
		if s.i >= len(b) || b[s.i] != ':' {
			return e, jsonError(b, s.unexpected("after an object key, expecting ':'"), 0)
		}
		s.i++
		s.ws()
		vStart := s.i
		var vEsc bool
		if s.i < len(b) && b[s.i] == '"' {
			vEsc, err = s.str()
		} else {
			// The payload's depth is counted from the data value, so that
			// a payload accepted as application/json is accepted here too.
			err = s.value(0)
		}
		if err != nil {
			return e, jsonError(b, err, 0)
		}
		raw := b[vStart:s.i]
		isStr, isNull := raw[0] == '"', raw[0] == 'n'
		var name string
		if kEsc {
			name = unquote(b[kStart:kStart+len(rawKey)+2], true)
		} else {
			name = ceName(rawKey) // no allocation for the known names
		}
		switch name {
		case "data":
			data, dataEsc, hasData = raw, vEsc, !isNull
			goto next
		case "data_base64":
			if !isNull {
				if !isStr {
					return e, ce.fail("data_base64 must be a string")
				}
				dataB64, hasB64 = raw[1:len(raw)-1], true
			}
			goto next
		}
		if isNull {
			goto next // null is absent
		}
		if raw[0] == '{' || raw[0] == '[' {
			return e, ce.fail("attribute %s must be a string, number or boolean", name)
		}
		switch name {
		case "specversion":
			if !isStr || string(raw) != `"1.0"` {
				return e, ce.fail("specversion must be \"1.0\"")
			}
			specversion = true
		case "id", "type", "subject", "time", "datacontenttype":
			if !isStr {
				return e, ce.fail("attribute %s must be a string", name)
			}
			v := unquote(raw, vEsc)
			switch name {
			case "id":
				e.ID, hasID = v, true
			case "type":
				e.Type = v
			case "subject":
				e.Subject = v
			case "time":
				if e.Time, err = parseTime(v); err != nil {
					return e, ce.fail("time %q is not an RFC 3339 time", v)
				}
			case "datacontenttype":
				e.ContentType, hasContentType = v, true
			}
		default:
			v := string(raw) // a number or boolean, as written
			if isStr {
				v = unquote(raw, vEsc)
			}
			switch name {
			case "partitionkey":
				e.Key = v
			case "traceparent", "tracestate":
				if !ownTrace {
					e.TraceParent, e.TraceState, ownTrace = "", "", true
				}
				if name == "traceparent" {
					e.TraceParent = v
				} else {
					e.TraceState = v
				}
			default:
				if e.Attributes == nil {
					e.Attributes = make(map[string]string, 4)
				}
				e.Attributes[strings.Clone(name)] = v
			}
		}
	next:
		s.ws()
		if s.i >= len(b) {
			return e, jsonError(b, s.fail("unexpected end of input in an object, expecting ',' or '}'"), 0)
		}
		if b[s.i] == '}' {
			s.i++
			break
		}
		if b[s.i] != ',' {
			return e, jsonError(b, s.unexpected("after an object value, expecting ',' or '}'"), 0)
		}
		s.i++
		s.ws()
	}
	switch {
	case !specversion && !hasID:
		return e, ce.fail("missing required attributes specversion and id")
	case !specversion:
		return e, ce.fail("missing required attribute specversion")
	case !hasID:
		return e, ce.fail("missing required attribute id")
	case hasData && hasB64:
		return e, ce.fail("data and data_base64 are mutually exclusive")
	}
	if !hasContentType {
		e.ContentType = defaultDataType
		if hasB64 {
			e.ContentType = "application/octet-stream"
		}
	}
	switch {
	case hasB64:
		d, err := base64.StdEncoding.DecodeString(string(dataB64))
		if err != nil {
			return e, ce.fail("data_base64 is not valid base64")
		}
		e.Data = d
	case hasData && isJSONType(e.ContentType):
		e.Data = data
	case hasData:
		if data[0] != '"' {
			return e, ce.fail("data of content type %s must be a JSON string (or use data_base64)", e.ContentType)
		}
		e.Data = []byte(unquote(data, dataEsc))
	}
	return e, nil
}

// ceNames are the attribute names the parser knows, so that looking one up
// does not allocate.
var ceNames = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype",
	"dataschema", "data", "data_base64", "partitionkey", "traceparent", "tracestate"}

// ceName returns a key as a string: a shared constant for the known names,
// else a view of b that the caller must clone before keeping it.
func ceName(b []byte) string {
	for _, n := range ceNames {
		if string(b) == n {
			return n
		}
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// reservedAttrs are attribute names that would shadow an envelope field.
var reservedAttrs = map[string]bool{
	"id": true, "type": true, "subject": true, "time": true, "specversion": true,
	"datacontenttype": true, "data": true, "data_base64": true, "partitionkey": true,
	"traceparent": true, "tracestate": true,
}

// checkEvent validates an event's metadata, from whichever transport, so
// that the envelope can hold it and the services downstream (which turn
// attributes into ce-* headers) can use it. The data was validated by the
// parser of its format.
func checkEvent(e *event.Event) error {
	if e.ID != "" {
		if err := checkID(e.ID); err != nil {
			return errorf(ErrMalformed, "id: %v", err)
		}
	}
	if err := checkText(e.Type, maxTextLen); err != nil {
		return errorf(ErrMalformed, "type: %v", err)
	}
	if err := checkText(e.Subject, maxTextLen); err != nil {
		return errorf(ErrMalformed, "subject: %v", err)
	}
	if err := checkText(e.ContentType, maxTextLen); err != nil {
		return errorf(ErrMalformed, "content type: %v", err)
	}
	if len(e.Key) > maxKeyLen {
		return errorf(ErrMalformed, "partition key: %d bytes, more than %d", len(e.Key), maxKeyLen)
	}
	if !utf8.ValidString(e.Key) {
		return errorf(ErrMalformed, "partition key: invalid UTF-8")
	}
	for k, v := range e.Attributes {
		if !validAttrName(k) {
			return errorf(ErrMalformed, "attribute %q: a name is 1 to %d lowercase letters or digits (CloudEvents attribute naming)", k, maxAttrNameLen)
		}
		if reservedAttrs[k] {
			return errorf(ErrMalformed, "attribute %q is reserved: use the field of that name", k)
		}
		if err := checkText(v, maxTextLen); err != nil {
			return errorf(ErrMalformed, "attribute %q: %v", k, err)
		}
	}
	if !isASCIIPrint(e.TraceParent) || len(e.TraceParent) > maxTraceHdrLen {
		return errorf(ErrMalformed, "traceparent: want printable ASCII of at most %d bytes", maxTraceHdrLen)
	}
	if !isASCIIPrint(e.TraceState) || len(e.TraceState) > maxTraceHdrLen {
		return errorf(ErrMalformed, "tracestate: want printable ASCII of at most %d bytes", maxTraceHdrLen)
	}
	return nil
}

type textError string

func (e textError) Error() string { return string(e) }

// checkID accepts 1 to 256 bytes of printable UTF-8: ids end up in headers
// (webhook-id), logs and primary keys.
func checkID(id string) error {
	if id == "" {
		return textError("empty")
	}
	if len(id) > maxIDLen {
		return textError("longer than " + strconv.Itoa(maxIDLen) + " bytes")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e {
			return checkPrintable(id)
		}
	}
	return nil
}

func checkPrintable(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return textError("invalid UTF-8")
			}
		}
		if !unicode.IsPrint(r) {
			return textError("non-printable character " + strconv.QuoteRune(r) + " at byte " + strconv.Itoa(i))
		}
	}
	return nil
}

// checkText accepts UTF-8 without control characters (tab aside), of at
// most max bytes.
func checkText(s string, max int) error {
	if len(s) > max {
		return textError("longer than " + strconv.Itoa(max) + " bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f || c == '\t' {
			continue
		}
		if c < 0x80 {
			return textError("control character " + strconv.QuoteRune(rune(c)) + " at byte " + strconv.Itoa(i))
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return textError("invalid UTF-8 at byte " + strconv.Itoa(i))
		}
		if unicode.IsControl(r) {
			return textError("control character " + strconv.QuoteRune(r) + " at byte " + strconv.Itoa(i))
		}
		i += n - 1
	}
	return nil
}

func validAttrName(k string) bool {
	if k == "" || len(k) > maxAttrNameLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isASCIIPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
