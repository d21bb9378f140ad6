// Package secret seals the secrets of sources and flows (signing secrets,
// auth headers, passwords) with AES-256-GCM before they are written to
// samsa.flows, and opens them in the services that need them.
//
// A sealed value is "enc:v1:<key id>:<base64url(nonce | ciphertext)>". The
// key id lets a Box hold several keys, so the encryption key can be rotated:
// new writes use the primary key, reads accept every configured key.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const prefix = "enc:v1:"

// Redacted replaces a secret in every API response.
const Redacted = "<redacted>"

// ErrNoKey means a sealed value names a key the Box does not hold.
var ErrNoKey = errors.New("secret: sealed with an unknown key")

// Box seals and opens secrets. Its zero value is not usable; see New.
type Box struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// New returns a Box from keys given as "id:base64key" or a bare base64 key
// (id "k1"), each 32 bytes once decoded. The first key is the primary: it
// seals new secrets.
func New(keys ...string) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret: no encryption key configured")
	}
	b := &Box{aeads: make(map[string]cipher.AEAD)}
	for i, k := range keys {
		id, enc, ok := strings.Cut(k, ":")
		if !ok {
			id, enc = "k1", k
		}
		if id == "" || strings.ContainsAny(id, ":") {
			return nil, fmt.Errorf("secret: key %d: empty or invalid key id", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("secret: key %q: not base64: %w", id, err)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("secret: key %q: %d bytes, want 32 (generate one with: head -c32 /dev/urandom | base64)", id, len(raw))
		}
		blk, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("secret: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(blk)
		if err != nil {
			return nil, fmt.Errorf("secret: key %q: %w", id, err)
		}
		if _, dup := b.aeads[id]; dup {
			return nil, fmt.Errorf("secret: key id %q given twice", id)
		}
		b.aeads[id] = aead
		if i == 0 {
			b.primary = id
		}
	}
	return b, nil
}

// IsSealed reports whether s is a sealed value.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Seal encrypts plaintext under the primary key. Sealing an empty string or
// an already sealed value returns it unchanged.
func (b *Box) Seal(plaintext string) (string, error) {
	if plaintext == "" || IsSealed(plaintext) {
		return plaintext, nil
	}
	aead := b.aeads[b.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: nonce: %w", err)
	}
	// The key id is authenticated data: a value cannot be moved to another key.
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(b.primary))
	return prefix + b.primary + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed value. A value that is not sealed is returned as
// is, so that resources written before encryption was configured still work.
func (b *Box) Open(sealed string) (string, error) {
	if !IsSealed(sealed) {
		return sealed, nil
	}
	id, enc, ok := strings.Cut(strings.TrimPrefix(sealed, prefix), ":")
	if !ok {
		return "", errors.New("secret: malformed sealed value")
	}
	aead, ok := b.aeads[id]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrNoKey, id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", errors.New("secret: malformed sealed value")
	}
	n := aead.NonceSize()
	pt, err := aead.Open(nil, raw[:n], raw[n:], []byte(id))
	if err != nil {
		return "", fmt.Errorf("secret: open with key %q: %w", id, err)
	}
	return string(pt), nil
}

// Primary is the id of the key new secrets are sealed with.
func (b *Box) Primary() string { return b.primary }

// HashKey returns the hex SHA-256 of an ingest API key, the form in which
// keys are stored. Keys are long random strings, so a fast hash is enough.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
