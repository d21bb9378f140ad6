// Package send is `samsa send`: posts events to a source through the
// receiver's REST front door and prints their ids.
package send

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-dev/samsa/pkg/config"
)

// Config is the configuration of `samsa send`.
type Config struct {
	Receiver string
	APIKey   string
	Type     string
	Subject  string
	Key      string
	ID       string
	File     string
	Count    int
}

// RegisterFlags binds the configuration to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Receiver, "receiver", "http://127.0.0.1:8081", "the receiver's base URL")
	fs.StringVar(&c.APIKey, "api-key", "", "the source's API key (sent as a bearer token)")
	fs.StringVar(&c.Type, "type", "", "event type (ce-type)")
	fs.StringVar(&c.Subject, "subject", "", "event subject (ce-subject)")
	fs.StringVar(&c.Key, "key", "", "partition key (Samsa-Key): events with one key stay in order")
	fs.StringVar(&c.ID, "id", "", "event id (Idempotency-Key); a retry with the same id is the same event")
	fs.StringVar(&c.File, "f", "", "send the NDJSON file (one payload per line; - for stdin) as one batch")
	fs.IntVar(&c.Count, "n", 1, "send the payload this many times (as one NDJSON batch)")
}

// UsageError is a mistake on the command line: `samsa` exits with 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Main parses `samsa send SOURCE [flags] [PAYLOAD]` and sends.
func Main(ctx context.Context, args []string, out io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("samsa send", flag.ContinueOnError)
	fs.SetOutput(out)
	c.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(out, "Usage: samsa send SOURCE [flags] ['{\"json\":\"payload\"}']")
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return usagef("the source name comes first")
	}
	source := args[0]
	if err := config.Parse(fs, args[1:]); err != nil {
		return &UsageError{Msg: err.Error()}
	}
	if err := c.check(); err != nil {
		return &UsageError{Msg: err.Error()}
	}
	var body []byte
	ctype := "application/json"
	switch {
	case c.File != "":
		var r io.Reader = os.Stdin
		if c.File != "-" {
			f, err := os.Open(c.File)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(bufio.NewReader(r))
		if err != nil {
			return err
		}
		body, ctype = b, "application/x-ndjson"
	case fs.NArg() == 1:
		body = []byte(fs.Arg(0))
		if !json.Valid(body) {
			return usagef("the payload is not valid JSON: %s", jsonProblem(body))
		}
		if c.Count > 1 {
			var compact bytes.Buffer
			_ = json.Compact(&compact, body)
			body = bytes.Repeat(append(compact.Bytes(), '\n'), c.Count)
			ctype = "application/x-ndjson"
		}
	case fs.NArg() > 1:
		return usagef("give one JSON payload, or -f FILE: got %d arguments after the source (flags go before the payload)", fs.NArg())
	default:
		return usagef("give one JSON payload, or -f FILE")
	}
	ids, err := Post(ctx, http.DefaultClient, c, source, ctype, body)
	if err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Fprintln(out, id)
	}
	return nil
}

// check refuses flags that cannot work before anything is sent, naming
// the flag.
func (c *Config) check() error {
	if c.Count < 1 {
		return fmt.Errorf("-n %d: send at least one event", c.Count)
	}
	u, err := url.Parse(c.Receiver)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--receiver %q: want the receiver's base URL, http:// or https:// and a host, e.g. http://127.0.0.1:8081", c.Receiver)
	}
	for _, f := range []struct{ flag, v string }{{"--type", c.Type}, {"--subject", c.Subject}, {"--key", c.Key}, {"--id", c.ID}, {"--api-key", c.APIKey}} {
		for _, r := range f.v {
			if r < ' ' || r == 0x7f {
				return fmt.Errorf("%s: holds a control character (%q), which an HTTP header cannot carry", f.flag, r)
			}
		}
	}
	return nil
}

// describeBody says what an answer that is not the receiver's JSON error
// is, without dumping it: an HTML page, or its first line.
func describeBody(b []byte) string {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "":
		return "an empty answer"
	case strings.HasPrefix(t, "<"):
		return "an HTML page (is --receiver the receiver, or is a proxy in the way?)"
	}
	line, _, cut := strings.Cut(t, "\n")
	if len(line) > 120 {
		line, cut = line[:120], true
	}
	if cut {
		line += "..."
	}
	return strconv.Quote(line)
}

// jsonProblem says what is wrong with b and where.
func jsonProblem(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) && !strings.HasPrefix(se.Error(), "unexpected end") {
		return fmt.Sprintf("%v at byte %d", se, se.Offset)
	}
	return "unexpected end of input"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Post sends one request and returns the event ids the receiver assigned.
func Post(ctx context.Context, cl *http.Client, c Config, source, ctype string, body []byte) ([]string, error) {
	u := strings.TrimRight(c.Receiver, "/") + "/v1/sources/" + url.PathEscape(source) + "/events"
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	for h, v := range map[string]string{"ce-type": c.Type, "ce-subject": c.Subject, "Samsa-Key": c.Key, "Idempotency-Key": c.ID} {
		if v != "" {
			req.Header.Set(h, v)
		}
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the receiver at %s: %w (is it running? samsa dev starts one)", c.Receiver, unwrapURLError(err))
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r struct {
		IDs   []string `json:"ids"`
		Error string   `json:"error"`
	}
	_ = json.Unmarshal(rb, &r)
	if resp.StatusCode != http.StatusAccepted {
		msg := r.Error
		if msg == "" {
			msg = describeBody(rb)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return r.IDs, nil
}
