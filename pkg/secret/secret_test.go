package secret

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func TestSealOpen(t *testing.T) {
	box, err := New(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal("whsec_top-secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "top-secret") || !IsSealed(sealed) {
		t.Fatalf("sealed value leaks or lacks prefix: %q", sealed)
	}
	again, _ := box.Seal("whsec_top-secret")
	if again == sealed {
		t.Fatal("two seals of one secret are equal: nonce reused")
	}
	got, err := box.Open(sealed)
	if err != nil || got != "whsec_top-secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if got, _ := box.Seal(sealed); got != sealed {
		t.Fatal("sealing a sealed value changed it")
	}
}

func TestRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	old, _ := New("old:" + oldKey)
	sealed, _ := old.Seal("pw")
	rotated, err := New("new:"+newK, "old:"+oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed); err != nil || got != "pw" {
		t.Fatalf("rotated box cannot open old value: %q %v", got, err)
	}
	resealed, _ := rotated.Seal("pw")
	if !strings.HasPrefix(resealed, prefix+"new:") {
		t.Fatalf("new seals not under primary key: %q", resealed)
	}
	if _, err := old.Open(resealed); !errors.Is(err, ErrNoKey) {
		t.Fatalf("old box opened value of unknown key: %v", err)
	}
}

func TestTamper(t *testing.T) {
	box, _ := New(newKey(t))
	sealed, _ := box.Seal("pw")
	b := []byte(sealed)
	b[len(b)-3] ^= 'A' ^ 'B'
	if _, err := box.Open(string(b)); err == nil {
		t.Fatal("tampered value opened")
	}
	if _, err := box.Open(prefix + "k1:!!"); err == nil {
		t.Fatal("malformed value opened")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, "no encryption key"},
		{[]string{"k:notbase64!"}, "not base64"},
		{[]string{base64.StdEncoding.EncodeToString([]byte("short"))}, "want 32"},
		{[]string{"a:" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "a:" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, "twice"},
	} {
		_, err := New(tc.keys...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v) = %v, want error containing %q", tc.keys, err, tc.want)
		}
	}
}
