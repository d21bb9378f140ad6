package httpdest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// secretPrefix marks a Standard Webhooks secret: the rest is the base64 key.
const secretPrefix = "whsec_"

// Signer signs requests the Standard Webhooks way
// (https://www.standardwebhooks.com): the webhook-signature header is
// "v1," followed by the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
type Signer struct {
	pool sync.Pool // of hash.Hash keyed with the secret
}

// NewSigner returns a signer for secret: "whsec_" + base64 key as Standard
// Webhooks prescribes, or any other string, whose bytes are the key.
func NewSigner(secret string) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("empty signing secret")
	}
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("signing secret: %s... is not base64 after the prefix: %w", secretPrefix, err)
		}
		if len(k) == 0 {
			return nil, errors.New("signing secret: empty key after " + secretPrefix)
		}
		key = k
	}
	s := &Signer{}
	s.pool.New = func() any { return hmac.New(sha256.New, key) }
	return s, nil
}

// Sign returns the webhook-signature header value.
func (s *Signer) Sign(id string, timestamp int64, body []byte) string {
	return string(s.AppendSign(make([]byte, 0, 47), id, timestamp, body))
}

// AppendSign appends the webhook-signature header value to dst.
func (s *Signer) AppendSign(dst []byte, id string, timestamp int64, body []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	var buf [64]byte
	b := append(buf[:0], id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '.')
	h.Write(b)
	h.Write(body)
	var sum [sha256.Size]byte
	mac := h.Sum(sum[:0])
	s.pool.Put(h)
	dst = append(dst, "v1,"...)
	return base64.StdEncoding.AppendEncode(dst, mac)
}
