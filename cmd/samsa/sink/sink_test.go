package sink

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sign(key []byte, id string, ts int64, body string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSinkVerifiesSignatures(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	now := time.Now()
	var out bytes.Buffer
	s := New(Config{Secret: secret, Status: 200}, &out)
	for _, tc := range []struct {
		name   string
		sig    string
		ts     int64
		status int
	}{
		{"valid", sign(key, "ev-1", now.Unix(), `{"a":1}`), now.Unix(), 200},
		{"valid among several", "v1,AAAA " + sign(key, "ev-1", now.Unix(), `{"a":1}`), now.Unix(), 200},
		{"forged", sign([]byte("other"), "ev-1", now.Unix(), `{"a":1}`), now.Unix(), 401},
		{"stale", sign(key, "ev-1", now.Add(-time.Hour).Unix(), `{"a":1}`), now.Add(-time.Hour).Unix(), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"a":1}`))
			req.Header.Set("webhook-id", "ev-1")
			req.Header.Set("webhook-timestamp", strconv.FormatInt(tc.ts, 10))
			req.Header.Set("webhook-signature", tc.sig)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; output:\n%s", rec.Code, tc.status, out.String())
			}
		})
	}
	if s.Count() != 4 {
		t.Fatalf("count %d, want 4", s.Count())
	}
	s.SetStatus(503)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x")))
	if rec.Code != 401 { // no signature at all with a secret configured
		t.Fatalf("unsigned request with secret: %d", rec.Code)
	}
}
