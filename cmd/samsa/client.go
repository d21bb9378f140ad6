package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// client calls the control API's REST mapping: one address for people to
// remember, and the same JSON as the API's documentation.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(base, token string) *client {
	return &client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}
}

// apiError is an error answer of the control API.
type apiError struct {
	status int    // HTTP status
	code   string // gRPC code name, e.g. ABORTED
	msg    string
	fields []*samsav1.FieldViolation
}

func (e *apiError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	}
	return e.msg
}

var (
	jsonOut = protojson.MarshalOptions{}
	// Responses may carry fields this CLI does not know yet (a newer server).
	jsonIn = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func path(format string, names ...string) string {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = url.PathEscape(n)
	}
	return fmt.Sprintf(format, args...)
}

// do sends in (if not nil) as JSON and decodes the answer into out (if not nil).
func (c *client) do(ctx context.Context, method, p string, in, out proto.Message) error {
	resp, err := c.send(ctx, method, p, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp.StatusCode, b)
	}
	if out != nil {
		if !json.Valid(b) {
			return fmt.Errorf("the answer of %s is not JSON (%s): is --server the control API?", c.base, describeBody(resp.Header.Get("Content-Type"), b))
		}
		if err := jsonIn.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the answer of %s: %w", c.base, err)
		}
	}
	return nil
}

// describeBody says what a body that is not the expected JSON is, without
// dumping it: an HTML page, or its first line.
func describeBody(contentType string, b []byte) string {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "":
		return "an empty body"
	case strings.Contains(contentType, "html") || strings.HasPrefix(t, "<"):
		return "an HTML page"
	}
	line, _, cut := strings.Cut(t, "\n")
	if len(line) > 120 {
		line, cut = line[:120], true
	}
	line = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, line)
	if cut {
		line += "..."
	}
	return fmt.Sprintf("%q", line)
}

func (c *client) send(ctx context.Context, method, p string, in proto.Message) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := jsonOut.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, body)
	if err != nil {
		return nil, usagef("--server %q: %v", c.base, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the control API at %s: %w", c.base, unwrapURLError(err))
	}
	return resp, nil
}

// check refuses a --server or --token that cannot work, before any
// request, with a message that names the flag (not a URL parser's or an
// HTTP library's complaint about what was built from it).
func (c *client) check() error {
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return usagef("--server %q: want the control API's base URL, http:// or https:// and a host, e.g. %s", c.base, defaultServer)
	}
	for _, r := range c.token {
		if r <= ' ' || r == 0x7f {
			return usagef("--token: holds a space or a control character (a line break pasted with it?)")
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError reads an error body: the control API's {"error": "...",
// "code": "..."} or, from the streaming endpoint, {"error": {"code": N,
// "message": "..."}}.
func decodeError(status int, b []byte) error {
	e := &apiError{status: status}
	var body samsav1.Error
	if err := jsonIn.Unmarshal(b, &body); err == nil && body.GetError() != "" {
		e.code, e.msg, e.fields = body.GetCode(), body.GetError(), body.GetFields()
		if e.code == "" {
			// The control API always names the code: this came from
			// something else, the receiver perhaps.
			e.msg = fmt.Sprintf("%d %s: %s (not an answer of the control API: is --server right?)", status, http.StatusText(status), e.msg)
		}
		return e
	}
	var stream struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &stream); err == nil && stream.Error.Message != "" {
		e.msg = stream.Error.Message
		// A failure in the middle of a stream comes with HTTP 200; its gRPC
		// code decides the exit code.
		if s, ok := grpcHTTPStatus[stream.Error.Code]; ok {
			e.status = s
		}
		return e
	}
	if len(bytes.TrimSpace(b)) > 0 {
		e.msg = fmt.Sprintf("%d %s: %s", status, http.StatusText(status), describeBody("", b))
		if strings.HasPrefix(strings.TrimSpace(string(b)), "<") {
			e.msg += " (is --server the control API, or is a proxy in the way?)"
		}
	}
	return e
}

// grpcHTTPStatus maps the gRPC codes that have an exit code of their own.
var grpcHTTPStatus = map[int]int{5: 404, 10: 409, 16: 401, 7: 403}

// stream posts in and calls fn with each message of a streaming answer
// (newline-delimited {"result": ...} objects).
func (c *client) stream(ctx context.Context, p string, in proto.Message, newMsg func() proto.Message, fn func(proto.Message)) error {
	resp, err := c.send(ctx, http.MethodPost, p, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return decodeError(resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var chunk struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &chunk); err != nil {
			return fmt.Errorf("decoding the answer of %s: %w", c.base, err)
		}
		if len(chunk.Error) > 0 && string(chunk.Error) != "null" {
			return decodeError(resp.StatusCode, line)
		}
		m := newMsg()
		if err := jsonIn.Unmarshal(chunk.Result, m); err != nil {
			return fmt.Errorf("decoding the answer of %s: %w", c.base, err)
		}
		fn(m)
	}
	return sc.Err()
}
