package ingestauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func reason(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Published test vectors: GitHub's documentation and the Standard Webhooks
// reference libraries.
func TestPublishedVectors(t *testing.T) {
	gh, err := New(&samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "github", Secret: "It's a Secret to Everybody"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = gh.Authenticate(hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), []byte("Hello, World!"))
	if err != nil {
		t.Errorf("github vector: %v", err)
	}

	ts := time.Unix(1614265330, 0)
	sw, err := New(&samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, nil,
		WithClock(func() time.Time { return ts.Add(time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	err = sw.Authenticate(hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
		"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Errorf("standard webhooks vector: %v", err)
	}
}

func TestSignatures(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1","amount":12}`)
	stripeSig := func(ts int64, sec string, b []byte) string {
		return "t=" + itoa(ts) + ",v1=" + hexMAC(sec, []byte(itoa(ts)+"."+string(b)))
	}
	cases := []struct {
		name   string
		sig    *samsav1.Signature
		header http.Header
		body   []byte
		want   Reason // "" = accepted
	}{
		{"github ok", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr("X-Hub-Signature-256", "sha256="+hexMAC("s3", body)), body, ""},
		{"github uppercase hex", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr("X-Hub-Signature-256", "SHA256="+strings.ToUpper(hexMAC("s3", body))), body, ""},
		{"github missing", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr(), body, ReasonMissingSignature},
		{"github no prefix", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr("X-Hub-Signature-256", hexMAC("s3", body)), body, ReasonMalformedSignature},
		{"github not hex", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr("X-Hub-Signature-256", "sha256=zz"), body, ReasonMalformedSignature},
		{"github wrong secret", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr("X-Hub-Signature-256", "sha256="+hexMAC("other", body)), body, ReasonBadSignature},
		{"github body changed", &samsav1.Signature{Preset: "github", Secret: "s3"}, hdr("X-Hub-Signature-256", "sha256="+hexMAC("s3", body)), []byte(`{"id":"evt_1","amount":13}`), ReasonBadSignature},
		{"stripe ok", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr("Stripe-Signature", stripeSig(now.Unix()-60, "whsec_x", body)), body, ""},
		{"stripe second v1 matches", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr("Stripe-Signature", stripeSig(now.Unix(), "whsec_x", body)+",v1="+hexMAC("old", body)+",v0=abc"), body, ""},
		{"stripe expired", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr("Stripe-Signature", stripeSig(now.Unix()-301, "whsec_x", body)), body, ReasonTimestampExpired},
		{"stripe future", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr("Stripe-Signature", stripeSig(now.Unix()+301, "whsec_x", body)), body, ReasonTimestampExpired},
		{"stripe custom tolerance", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x", Tolerance: "1h"}, hdr("Stripe-Signature", stripeSig(now.Unix()-1800, "whsec_x", body)), body, ""},
		{"stripe forged", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr("Stripe-Signature", stripeSig(now.Unix(), "whsec_y", body)), body, ReasonBadSignature},
		{"stripe no t", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr("Stripe-Signature", "v1="+hexMAC("whsec_x", body)), body, ReasonMalformedSignature},
		{"stripe missing", &samsav1.Signature{Preset: "stripe", Secret: "whsec_x"}, hdr(), body, ReasonMissingSignature},
		{"generic sha512 base64", &samsav1.Signature{Preset: "generic", Secret: "k", Header: "X-Sig", Algorithm: "sha512", Encoding: "base64"}, mustSign(t, &samsav1.Signature{Preset: "generic", Secret: "k", Header: "X-Sig", Algorithm: "sha512", Encoding: "base64"}, "k", body, now), body, ""},
		{"generic sha1 prefix", &samsav1.Signature{Preset: "generic", Secret: "k", Header: "x-sig", Algorithm: "sha1", Prefix: "sha1="}, mustSign(t, &samsav1.Signature{Preset: "generic", Secret: "k", Header: "x-sig", Algorithm: "sha1", Prefix: "sha1="}, "k", body, now), body, ""},
		{"generic wrong", &samsav1.Signature{Preset: "generic", Secret: "k", Header: "X-Sig"}, hdr("X-Sig", hexMAC("j", body)), body, ReasonBadSignature},
		{"standard forged", &samsav1.Signature{Preset: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			hdr("webhook-id", "msg_1", "webhook-timestamp", itoa(now.Unix()), "webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), body, ReasonBadSignature},
		{"standard no v1", &samsav1.Signature{Preset: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			hdr("webhook-id", "msg_1", "webhook-timestamp", itoa(now.Unix()), "webhook-signature", "v1a,abc"), body, ReasonMalformedSignature},
		{"standard missing id", &samsav1.Signature{Preset: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			hdr("webhook-timestamp", itoa(now.Unix()), "webhook-signature", "v1,abc"), body, ReasonMalformedSignature},
	}
	// Standard Webhooks, signed by Sign, at several ages.
	sw := &samsav1.Signature{Preset: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	cases = append(cases,
		struct {
			name   string
			sig    *samsav1.Signature
			header http.Header
			body   []byte
			want   Reason
		}{"standard ok", sw, mustSignID(t, sw, sw.Secret, body, now.Add(-time.Minute), "msg_2"), body, ""},
		struct {
			name   string
			sig    *samsav1.Signature
			header http.Header
			body   []byte
			want   Reason
		}{"standard expired", sw, mustSignID(t, sw, sw.Secret, body, now.Add(-10*time.Minute), "msg_2"), body, ReasonTimestampExpired},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := New(&samsav1.SourceAuth{Signature: c.sig}, nil, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			err = v.Authenticate(c.header, c.body)
			if got := reason(err); got != c.want {
				t.Fatalf("Authenticate = %v (reason %q), want reason %q", err, got, c.want)
			}
			if err != nil && !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("%v does not match ErrUnauthenticated", err)
			}
		})
	}
}

func TestAPIKeys(t *testing.T) {
	auth := &samsav1.SourceAuth{ApiKeys: []*samsav1.ApiKey{
		{Name: "old", Hash: secret.HashKey("key-old")},
		{Name: "new", Hash: strings.ToUpper(secret.HashKey("key-new"))},
	}}
	v, err := New(auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		authz, wantName string
		want            Reason
	}{
		{"Bearer key-old", "old", ""},
		{"bearer key-new", "new", ""},
		{"Bearer key-other", "", ReasonInvalidAPIKey},
		{"Basic a2V5", "", ReasonMalformedCredentials},
		{"Bearer ", "", ReasonMalformedCredentials},
		{"", "", ReasonMissingCredentials},
	} {
		name, err := v.CheckAPIKey(c.authz)
		if reason(err) != c.want || name != c.wantName {
			t.Errorf("CheckAPIKey(%q) = %q, %v; want %q, reason %q", c.authz, name, err, c.wantName, c.want)
		}
		if err := v.Authenticate(hdr("Authorization", c.authz), nil); reason(err) != c.want {
			t.Errorf("Authenticate(%q) = %v; want reason %q", c.authz, err, c.want)
		}
	}
}

func TestKeyOrSignature(t *testing.T) {
	box, err := secret.New("k1:" + strings.Repeat("A", 43) + "=")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal("s3")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{}`)
	v, err := New(&samsav1.SourceAuth{
		ApiKeys:   []*samsav1.ApiKey{{Name: "k", Hash: secret.HashKey("key")}},
		Signature: &samsav1.Signature{Preset: "github", Secret: sealed},
	}, box.Open)
	if err != nil {
		t.Fatal(err)
	}
	good := "sha256=" + hexMAC("s3", body)
	for _, c := range []struct {
		name string
		h    http.Header
		want Reason
	}{
		{"key only", hdr("Authorization", "Bearer key"), ""},
		{"signature only", hdr("X-Hub-Signature-256", good), ""},
		{"wrong key, good signature", hdr("Authorization", "Bearer nope", "X-Hub-Signature-256", good), ""},
		{"wrong key, no signature", hdr("Authorization", "Bearer nope"), ReasonInvalidAPIKey},
		{"nothing", hdr(), ReasonMissingCredentials},
		{"bad signature", hdr("X-Hub-Signature-256", "sha256="+hexMAC("x", body)), ReasonBadSignature},
	} {
		if err := v.Authenticate(c.h, body); reason(err) != c.want {
			t.Errorf("%s: Authenticate = %v; want reason %q", c.name, err, c.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	box, _ := secret.New("k1:" + strings.Repeat("A", 43) + "=")
	other, _ := secret.New("k2:" + strings.Repeat("B", 43) + "=")
	sealed, _ := other.Seal("s")
	for _, c := range []struct {
		name string
		auth *samsav1.SourceAuth
		open func(string) (string, error)
		msg  string
	}{
		{"bad hash", &samsav1.SourceAuth{ApiKeys: []*samsav1.ApiKey{{Name: "a", Hash: "abc"}}}, nil, "hash is not a hex SHA-256"},
		{"unknown preset", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "gitlab", Secret: "s"}}, nil, "preset"},
		{"no secret", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "github"}}, nil, "secret is empty"},
		{"generic without header", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "generic", Secret: "s"}}, nil, "header is required"},
		{"bad algorithm", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "generic", Secret: "s", Header: "x", Algorithm: "md5"}}, nil, "algorithm"},
		{"bad tolerance", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "stripe", Secret: "s", Tolerance: "soon"}}, nil, "tolerance"},
		{"bad whsec", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "standard-webhooks", Secret: "whsec_***"}}, nil, "base64"},
		{"sealed without box", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "github", Secret: sealed}}, nil, "no decryption key"},
		{"sealed with another key", &samsav1.SourceAuth{Signature: &samsav1.Signature{Preset: "github", Secret: sealed}}, box.Open, "unknown key"},
	} {
		_, err := New(c.auth, c.open)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: New = %v; want ErrConfig mentioning %q", c.name, err, c.msg)
		}
	}
	if v, err := New(nil, nil); err != nil || v.Configured() {
		t.Errorf("New(nil) = %v, %v; want an unconfigured verifier", v, err)
	}
}

func hexMAC(sec string, b []byte) string {
	m := hmac.New(sha256.New, []byte(sec))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustSign(t *testing.T, s *samsav1.Signature, sec string, body []byte, now time.Time) http.Header {
	return mustSignID(t, s, sec, body, now, "")
}

func mustSignID(t *testing.T, s *samsav1.Signature, sec string, body []byte, now time.Time, id string) http.Header {
	t.Helper()
	h, err := Sign(s, sec, body, now, id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// FuzzAuthenticate feeds arbitrary signature headers to every preset: no
// panic, every failure is an *Error, and what Sign produces always passes.
func FuzzAuthenticate(f *testing.F) {
	f.Add("t=1700000000,v1=abc", "sha256=00", "v1,AAAA v1a,x", "1700000000", []byte(`{}`))
	f.Add("", "", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, stripeHdr, ghHdr, swHdr, swTime string, body []byte) {
		now := time.Unix(1_700_000_000, 0)
		for _, sig := range []*samsav1.Signature{
			{Preset: "github", Secret: "s"},
			{Preset: "stripe", Secret: "s"},
			{Preset: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			{Preset: "generic", Secret: "s", Header: "X-Sig", Encoding: "base64", Prefix: "v="},
		} {
			v, err := New(&samsav1.SourceAuth{Signature: sig}, nil, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			h := hdr("Stripe-Signature", stripeHdr, "X-Hub-Signature-256", ghHdr, "X-Sig", ghHdr,
				"webhook-id", "msg", "webhook-timestamp", swTime, "webhook-signature", swHdr)
			if err := v.Authenticate(h, body); err != nil && reason(err) == "" {
				t.Fatalf("%s: error %v is not an *Error", sig.Preset, err)
			}
			good, err := Sign(sig, sig.Secret, body, now, "msg")
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Authenticate(good, body); err != nil {
				t.Fatalf("%s: a signed request fails: %v", sig.Preset, err)
			}
		}
	})
}
