package ingest

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/ingestauth"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	"github.com/samsa-dev/samsa/pkg/ulid"
)

// EventsPath is the ingest endpoint's pattern.
const EventsPath = "/v1/sources/{source}/events"

func (r *Receiver) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(EventsPath, r.serveEvents)
	g, ok := r.reg.(prometheus.Gatherer)
	if !ok {
		g = prometheus.Gatherers{}
	}
	telemetry.Mount(mux, g, r.health)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such endpoint: POST "+"/v1/sources/{source}/events ingests events")
	})
	return mux
}

// requestID honours a sane X-Request-Id from the caller (or a proxy in
// front), otherwise makes one.
func requestID(v string) string {
	if v != "" && len(v) <= 128 && isASCIIPrint(v) {
		return v
	}
	return ulid.Make()
}

func (r *Receiver) serveEvents(w http.ResponseWriter, req *http.Request) {
	reqID := requestID(req.Header.Get(HeaderRequestID))
	w.Header()[HeaderRequestID] = []string{reqID}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, errorf(ErrMethod, "method %s not allowed: POST events to this endpoint", req.Method))
		return
	}

	bp := r.getBody()
	defer r.putBody(bp)
	var (
		body    []byte
		bodyErr error
		read    bool
	)
	in := &request{source: req.PathValue("source"), transport: "http", requestID: reqID}
	readBody := func() ([]byte, error) {
		if !read {
			read = true
			body, bodyErr = r.readBody(req, (*bp)[:0])
			if body != nil {
				*bp = body[:0]
			}
			in.bytes = len(body)
		}
		return body, bodyErr
	}
	in.authenticate = func(v *ingestauth.Verifier) error {
		if !v.HasSignature() {
			// API keys need no body: refuse before reading it.
			return v.Authenticate(req.Header, nil)
		}
		b, err := readBody()
		if err != nil {
			return err
		}
		return v.Authenticate(req.Header, b)
	}
	in.decode = func(st *sourceState, now time.Time, dst []event.Event) ([]event.Event, error) {
		if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(strings.TrimSpace(ce), "identity") {
			// Read as it is, a compressed body would be "invalid JSON".
			return nil, errorf(ErrUnsupportedMedia, "unsupported Content-Encoding %q: send the body uncompressed", ce)
		}
		md, ct, err := parseMedia(req.Header.Get("Content-Type"))
		if err != nil {
			return nil, err
		}
		b, err := readBody()
		if err != nil {
			return nil, err
		}
		return parseBody(md, ct, req.Header, b, now, st.verifier.Preset(), limits{maxEvents: r.cfg.MaxEvents, maxDepth: r.cfg.MaxDepth}, dst)
	}

	ids, err := r.ingest(in)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]byte, 0, 16+len(ids)*(ulid.Len+3))
	out = append(out, `{"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, id)
	}
	out = append(out, "]}\n"...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(out)
}

// readBody reads the whole body into buf, refusing bodies larger than
// MaxBodyBytes before reading them when their length is announced.
func (r *Receiver) readBody(req *http.Request, buf []byte) ([]byte, error) {
	limit := r.cfg.MaxBodyBytes
	tooLarge := func() error {
		return errorf(ErrTooLarge, "request body larger than the limit of %d bytes: split the batch", limit)
	}
	if req.ContentLength > limit {
		return nil, tooLarge()
	}
	if req.ContentLength > 0 {
		if int64(cap(buf)) < req.ContentLength {
			buf = make([]byte, 0, req.ContentLength)
		}
		buf = buf[:req.ContentLength]
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			return nil, errorf(ErrMalformed, "reading the request body: %v", err)
		}
		return buf, nil
	}
	// Unknown length (chunked): read up to one byte past the limit.
	lr := &io.LimitedReader{R: req.Body, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, tooLarge()
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, errorf(ErrMalformed, "reading the request body: %v", err)
		}
	}
}

func (r *Receiver) getBody() *[]byte {
	if p, ok := r.bodyPool.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 32<<10)
	return &b
}

func (r *Receiver) putBody(p *[]byte) {
	if cap(*p) > 1<<20 {
		return
	}
	*p = (*p)[:0]
	r.bodyPool.Put(p)
}

// writeError answers err as JSON {"error": "..."} with its status, and
// Retry-After for 429s.
func writeError(w http.ResponseWriter, err error) {
	s := statusOf(err)
	var e *Error
	msg := "internal error"
	if errors.As(err, &e) {
		msg = e.Msg
		if s.http == http.StatusTooManyRequests {
			secs := max(1, int(math.Ceil(e.RetryAfter.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
	}
	writeJSONError(w, s.http, msg)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// appendJSONString appends s as a JSON string. Ids are printable, so the
// loop rarely escapes anything.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		default:
			const hexd = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
		}
		start = i + 1
	}
	return append(append(dst, s[start:]...), '"')
}

var statusTexts = map[int]string{}

func init() {
	for _, c := range []int{200, 202, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503} {
		statusTexts[c] = strconv.Itoa(c)
	}
}

func statusText(code int) string {
	if s, ok := statusTexts[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}
