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
		return errors.New("samsa send: the source name comes first")
	}
	source := args[0]
	if err := config.Parse(fs, args[1:]); err != nil {
		return err
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
			return fmt.Errorf("samsa send: the payload is not valid JSON: %s", body)
		}
		if c.Count > 1 {
			var compact bytes.Buffer
			_ = json.Compact(&compact, body)
			body = bytes.Repeat(append(compact.Bytes(), '\n'), c.Count)
			ctype = "application/x-ndjson"
		}
	default:
		return errors.New("samsa send: give one JSON payload, or -f FILE")
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
		return nil, fmt.Errorf("samsa send: %w (is the receiver running? samsa dev starts one)", err)
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
			msg = strings.TrimSpace(string(rb))
		}
		return nil, fmt.Errorf("samsa send: %s: %s", resp.Status, msg)
	}
	return r.IDs, nil
}
