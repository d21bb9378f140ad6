// Package auth authenticates callers of the control API with bearer tokens
// that carry a role, and authorizes each gRPC method by the role it needs.
//
// Roles are ordered: viewer < editor < admin. A viewer reads (Get, List,
// Status, Test), an editor also writes (Put, Delete, Pause, Resume,
// Redrive), an admin may call everything, including methods added later
// that are not classified yet.
//
// Tokens come from configuration as "role:token" entries. They are kept
// only as SHA-256 digests and compared in constant time against every
// configured token, so neither the comparison nor the number of tokens
// tried leaks a token through timing.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// Role is what a token may do.
type Role int

const (
	// RoleNone is no role: the caller is not authenticated.
	RoleNone Role = iota
	RoleViewer
	RoleEditor
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleEditor:
		return "editor"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses "admin", "editor" or "viewer".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "admin":
		return RoleAdmin, nil
	case "editor":
		return RoleEditor, nil
	case "viewer":
		return RoleViewer, nil
	}
	return RoleNone, fmt.Errorf("auth: role %q: want admin, editor or viewer", s)
}

// MinTokenLength is the shortest token accepted: tokens are bearer secrets
// and must not be guessable.
const MinTokenLength = 16

// Tokens is a set of tokens with their roles.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	role   Role
}

// ParseTokens parses "role:token" entries. Empty entries are skipped; a
// token given twice is an error (it could only have one role).
func ParseTokens(entries []string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		roleStr, tok, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("auth: token entry %d: want role:token", i+1)
		}
		role, err := ParseRole(roleStr)
		if err != nil {
			return nil, fmt.Errorf("auth: token entry %d: %w", i+1, err)
		}
		tok = strings.TrimSpace(tok)
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("auth: token entry %d (%s): token shorter than %d characters (generate one with: openssl rand -hex 32)", i+1, role, MinTokenLength)
		}
		d := sha256.Sum256([]byte(tok))
		if seen[d] {
			return nil, fmt.Errorf("auth: token entry %d (%s): the same token is given twice", i+1, role)
		}
		seen[d] = true
		t.entries = append(t.entries, tokenEntry{digest: d, role: role})
	}
	return t, nil
}

// ReadTokensFile reads "role:token" entries from a file, one per line;
// blank lines and lines starting with # are ignored.
func ReadTokensFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: tokens file: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Role returns the role of token, or RoleNone. It takes the same time
// whichever token matches, if any.
func (t *Tokens) Role(token string) Role {
	if t == nil || token == "" {
		return RoleNone
	}
	d := sha256.Sum256([]byte(token))
	role := RoleNone
	for _, e := range t.entries {
		match := subtle.ConstantTimeCompare(d[:], e.digest[:])
		role = Role(subtle.ConstantTimeSelect(match, int(e.role), int(role)))
	}
	return role
}
