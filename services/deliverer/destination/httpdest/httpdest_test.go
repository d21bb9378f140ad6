package httpdest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// verify checks a Standard Webhooks signature the way the specification
// describes it, independently of Signer: secret "whsec_<base64>", signed
// content "<msg_id>.<timestamp>.<body>", header "v1,<base64 sig>" (possibly
// several, space separated), constant-time comparison.
func verify(secret, id, ts string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Split(header, " ") {
		ver, b64, ok := strings.Cut(sig, ",")
		if !ok || ver != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestSignerMatchesSpecExample(t *testing.T) {
	// The example of the Standard Webhooks specification.
	s, err := NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestSignerRawSecret(t *testing.T) {
	s, err := NewSigner("plain-secret")
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte("plain-secret"))
	mac.Write([]byte("id.5.body"))
	if got, want := s.Sign("id", 5, []byte("body")), "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!!"} {
		if _, err := NewSigner(bad); err == nil {
			t.Errorf("NewSigner(%q) succeeded", bad)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestClassifyStatus(t *testing.T) {
	for _, tc := range []struct {
		code      int
		class     destination.Class
		throttled bool
	}{
		{200, destination.Success, false},
		{204, destination.Success, false},
		{301, destination.Permanent, false},
		{400, destination.Permanent, false},
		{401, destination.Permanent, false},
		{404, destination.Permanent, false},
		{408, destination.Retryable, false},
		{409, destination.Permanent, false},
		{429, destination.Retryable, true},
		{500, destination.Retryable, false},
		{503, destination.Retryable, false},
	} {
		r := classifyStatus(&http.Response{StatusCode: tc.code, Status: strconv.Itoa(tc.code), Header: http.Header{}}, nil, time.Now())
		if r.Class != tc.class || r.Throttled != tc.throttled || r.Status != strconv.Itoa(tc.code) {
			t.Errorf("%d: got %+v, want class %v throttled %v", tc.code, r, tc.class, tc.throttled)
		}
	}
}

type captured struct {
	header http.Header
	body   []byte
}

func TestDeliverRequestFormat(t *testing.T) {
	var (
		mu  sync.Mutex
		got []captured
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, captured{r.Header.Clone(), b})
		mu.Unlock()
		if r.Header.Get("ce-type") == "fail" {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(503)
			io.WriteString(w, "try later")
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	d, err := New(Config{
		URL: srv.URL + "/hook", SigningSecret: secret, AllowPrivateNetwork: true,
		Headers: map[string]string{"Authorization": "Bearer t0k", "X-Team": "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ev := &event.Event{
		ID: "ev-1", Source: "orders", Type: "order.created", Subject: "o/1",
		Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), ContentType: "application/json",
		Data: []byte(`{"amount":3}`), Attributes: map[string]string{"tenant": "acme", "bad header": "x"},
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	fail := *ev
	fail.ID, fail.Type = "ev-2", "fail"
	items := []destination.Item{{Event: ev}, {Event: &fail}}
	res := make([]destination.Result, 2)
	d.Deliver(context.Background(), items, res)
	if res[0].Class != destination.Success {
		t.Fatalf("first: %+v", res[0])
	}
	if res[1].Class != destination.Retryable || res[1].Status != "503" || res[1].RetryAfter != 3*time.Second || res[1].Response != "try later" {
		t.Fatalf("second: %+v", res[1])
	}
	mu.Lock()
	defer mu.Unlock()
	h := got[0].header
	for k, want := range map[string]string{
		"webhook-id": "ev-1", "content-type": "application/json", "ce-id": "ev-1", "ce-source": "orders",
		"ce-type": "order.created", "ce-subject": "o/1", "ce-time": "2026-05-01T12:00:00Z", "ce-tenant": "acme",
		"authorization": "Bearer t0k", "x-team": "a", "traceparent": ev.TraceParent, "ce-specversion": "1.0",
	} {
		if v := h.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if string(got[0].body) != `{"amount":3}` {
		t.Errorf("body %q", got[0].body)
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q", h.Get("webhook-timestamp"))
	}
	if !verify(secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), got[0].body, h.Get("webhook-signature")) {
		t.Errorf("signature %q does not verify", h.Get("webhook-signature"))
	}
	if verify(secret, "other-id", h.Get("webhook-timestamp"), got[0].body, h.Get("webhook-signature")) {
		t.Errorf("signature verifies for another id: the test's verifier is broken")
	}
}

func TestSSRFGuardRefusesLoopback(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer srv.Close()
	for _, url := range []string{srv.URL, "http://metadata.google.internal/computeMetadata/v1/", "http://169.254.169.254/latest/meta-data/"} {
		d, err := New(Config{URL: url, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res := make([]destination.Result, 1)
		d.Deliver(context.Background(), []destination.Item{{Event: &event.Event{ID: "x", Data: []byte("{}")}}}, res)
		if res[0].Class != destination.Permanent || res[0].Status != "refused" || !strings.Contains(res[0].Err, "allowPrivateNetwork") {
			t.Errorf("%s: %+v", url, res[0])
		}
		d.Close()
	}
	if hit {
		t.Fatal("the guarded destination reached the loopback server")
	}
}

func TestConnectionErrorsAreRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // slower than the attempt timeout
	}))
	url := srv.URL
	d, err := New(Config{URL: url, AllowPrivateNetwork: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := make([]destination.Result, 1)
	item := []destination.Item{{Event: &event.Event{ID: "x", Data: []byte("{}")}}}
	d.Deliver(context.Background(), item, res)
	if res[0].Class != destination.Retryable || res[0].Status != "timeout" {
		t.Errorf("slow server: %+v", res[0])
	}
	srv.Close()
	d.Deliver(context.Background(), item, res)
	if res[0].Class != destination.Retryable || res[0].Status != "connection" {
		t.Errorf("closed server: %+v", res[0])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Deliver(ctx, item, res)
	if res[0].Class != destination.Requeue {
		t.Errorf("canceled: %+v", res[0])
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{URL: "ftp://x/"},
		{URL: "http:///nohost"},
		{URL: "http://x/", SigningSecret: "whsec_***"},
		{URL: "http://x/", Headers: map[string]string{"bad name": "v"}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}
