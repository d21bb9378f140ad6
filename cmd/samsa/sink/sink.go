// Package sink is `samsa sink`: a small webhook receiver that prints every
// delivery it gets, verifies Standard Webhooks signatures when given the
// secret, and can pretend to be down to show retries, the circuit breaker and
// dead letters at work.
package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-dev/samsa/pkg/config"
)

// Config is the configuration of `samsa sink`.
type Config struct {
	Addr string
	// Secret verifies webhook-signature (Standard Webhooks); empty skips it.
	Secret string
	// Status answers every request with this status (e.g. 500 to play a
	// broken destination). Default 200.
	Status int
	// Quiet prints one line per delivery instead of the body.
	Quiet bool
}

// RegisterFlags binds the configuration to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8090", "address to listen on")
	fs.StringVar(&c.Secret, "secret", "", "signing secret (whsec_...) to verify webhook-signature with")
	fs.IntVar(&c.Status, "status", 200, "HTTP status to answer with (e.g. 500 or 503 to play a destination that is down)")
	fs.BoolVar(&c.Quiet, "quiet", false, "print one line per delivery instead of the payload")
}

// Main parses args and serves until ctx is done.
func Main(ctx context.Context, args []string, out io.Writer) error {
	var c Config
	fs := flag.NewFlagSet("samsa sink", flag.ContinueOnError)
	fs.SetOutput(out)
	c.RegisterFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if c.Status < 100 || c.Status > 599 {
		return fmt.Errorf("--status %d: not an HTTP status", c.Status)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	s := New(c, out)
	fmt.Fprintf(out, "samsa sink: listening on http://%s (answering %d)\n", ln.Addr(), c.Status)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Sink is the handler; it is safe for concurrent use.
type Sink struct {
	cfg    Config
	mu     sync.Mutex
	out    io.Writer
	count  atomic.Int64
	status atomic.Int64
}

// New returns a sink printing to out.
func New(c Config, out io.Writer) *Sink {
	s := &Sink{cfg: c, out: out}
	s.status.Store(int64(c.Status))
	return s
}

// SetStatus changes the status the sink answers with.
func (s *Sink) SetStatus(code int) { s.status.Store(int64(code)) }

// Count is the number of requests received.
func (s *Sink) Count() int64 { return s.count.Load() }

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	n := s.count.Add(1)
	status := int(s.status.Load())
	sig := "unsigned"
	if s.cfg.Secret != "" {
		if err := Verify(s.cfg.Secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			sig = "BAD SIGNATURE: " + err.Error()
			status = http.StatusUnauthorized
		} else {
			sig = "signature ok"
		}
	} else if r.Header.Get("webhook-signature") != "" {
		sig = "signed (pass --secret to verify)"
	}
	s.mu.Lock()
	fmt.Fprintf(s.out, "#%d %s %s  webhook-id=%s  type=%s  %s  -> %d\n", n, r.Method, r.URL.Path,
		r.Header.Get("webhook-id"), r.Header.Get("ce-type"), sig, status)
	if !s.cfg.Quiet {
		var pretty bytes.Buffer
		if json.Indent(&pretty, body, "    ", "  ") == nil {
			fmt.Fprintf(s.out, "    %s\n", pretty.String())
		} else {
			fmt.Fprintf(s.out, "    %q\n", body)
		}
	}
	s.mu.Unlock()
	w.WriteHeader(status)
}

// Verify checks a Standard Webhooks signature: webhook-signature holds
// space-separated "v1,<base64 HMAC-SHA256(id.timestamp.body)>" entries; the
// secret is "whsec_" + base64 of the key, or the raw key.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	var sec int64
	if _, err := fmt.Sscan(ts, &sec); err != nil {
		return fmt.Errorf("webhook-timestamp %q: not a number", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %s is %s away from now", ts, d.Round(time.Second))
	}
	key := []byte(secret)
	if k, ok := strings.CutPrefix(secret, "whsec_"); ok {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return fmt.Errorf("secret: bad base64 after whsec_: %w", err)
		}
		key = b
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}
