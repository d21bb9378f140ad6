package harness

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mode is how the Sink answers.
type Mode int32

// Sink behaviours.
const (
	// OK answers 204 to every delivery.
	OK Mode = iota
	// Fail500 answers 500.
	Fail500
	// Fail429 answers 429 with Retry-After: 1.
	Fail429
	// Slow waits SlowFor before answering 204.
	Slow
	// Flapping alternates between OK and 503 every FlapEvery.
	Flapping
)

// Delivery is one request the Sink received.
type Delivery struct {
	WebhookID string
	Body      []byte
	Status    int // what the sink answered
	At        time.Time
}

// Sink is an HTTP destination on loopback that records every delivery. Down
// closes its listener (connection refused) and Up listens on the same
// address again.
type Sink struct {
	t    testing.TB
	Addr string

	mode      atomic.Int32
	SlowFor   time.Duration
	FlapEvery time.Duration

	mu       sync.Mutex
	srv      *http.Server
	all      []Delivery
	okCount  int
	attempts int
}

// NewSink starts a sink in mode OK; it is closed at cleanup.
func NewSink(t testing.TB) *Sink {
	s := &Sink{t: t, Addr: FreeAddr(t), SlowFor: 5 * time.Second, FlapEvery: 700 * time.Millisecond}
	s.Up()
	t.Cleanup(s.Down)
	return s
}

// URL is the destination URL.
func (s *Sink) URL() string { return "http://" + s.Addr + "/hook" }

// SetMode switches the behaviour.
func (s *Sink) SetMode(m Mode) { s.mode.Store(int32(m)) }

// Up listens (again) on the sink's address.
func (s *Sink) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err = net.Listen("tcp", s.Addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the port may be in use for a moment after Down
	}
	if err != nil {
		s.t.Fatalf("harness: sink listen %s: %v", s.Addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// Down closes the listener and every connection: deliveries are refused.
func (s *Sink) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	status := http.StatusNoContent
	switch Mode(s.mode.Load()) {
	case Fail500:
		status = http.StatusInternalServerError
	case Fail429:
		w.Header().Set("Retry-After", "1")
		status = http.StatusTooManyRequests
	case Slow:
		select {
		case <-time.After(s.SlowFor):
		case <-r.Context().Done():
			return
		}
	case Flapping:
		if (time.Now().UnixNano()/int64(s.FlapEvery))%2 == 1 {
			status = http.StatusServiceUnavailable
		}
	}
	d := Delivery{WebhookID: r.Header.Get("webhook-id"), Body: body, Status: status, At: time.Now()}
	s.mu.Lock()
	s.all = append(s.all, d)
	s.attempts++
	if status/100 == 2 {
		s.okCount++
	}
	s.mu.Unlock()
	w.WriteHeader(status)
}

// Deliveries returns the successful deliveries in arrival order.
func (s *Sink) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Delivery
	for _, d := range s.all {
		if d.Status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

// Counts returns the number of successful deliveries and of all requests.
func (s *Sink) Counts() (ok, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.okCount, s.attempts
}

// WaitOK polls until the sink has had at least n successful deliveries.
func (s *Sink) WaitOK(ctx context.Context, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if ok, _ := s.Counts(); ok >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			ok, _ := s.Counts()
			return errors.New("sink: " + strconv.Itoa(ok) + " of " + strconv.Itoa(n) + " deliveries: " + ctx.Err().Error())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
