package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Scope is what a token allows.
type Scope string

// The scopes. Each allows its own routes only: a token that reads and
// pauses needs read and admin.
const (
	// ScopeRead allows every GET under /api/v1.
	ScopeRead Scope = "read"
	// ScopeRelease allows promoting a release to a channel.
	ScopeRelease Scope = "release"
	// ScopeAdmin allows pausing, resuming and aborting rollouts.
	ScopeAdmin Scope = "admin"
)

var scopes = []Scope{ScopeRead, ScopeRelease, ScopeAdmin}

// Token is one API token: its name, for logs and errors, and its scopes.
type Token struct {
	Name   string
	Scopes []Scope
	hash   [sha256.Size]byte
}

// Allows reports whether t has scope s.
func (t *Token) Allows(s Scope) bool { return slices.Contains(t.Scopes, s) }

// Tokens is the set of tokens a Server accepts.
type Tokens struct {
	list []Token
}

// HashToken returns the hex SHA-256 of a token's secret: what a token file
// holds for it.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// LoadTokens reads the token file at path: see ParseTokens.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("load tokens from %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads a token file: a line a token, "NAME SCOPES SHA256",
// fields apart by spaces or tabs, where SCOPES is a comma-separated list of
// read, release and admin and SHA256 the hex SHA-256 of the token's secret
// (HashToken). Blank lines and lines starting with # are ignored. Names and
// secrets are unique. An error names the line and what is wrong with it.
func ParseTokens(r io.Reader) (*Tokens, error) {
	var t Tokens
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tok, err := parseToken(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		for _, o := range t.list {
			if o.Name == tok.Name {
				return nil, fmt.Errorf("line %d: token %s is listed twice", n, tok.Name)
			}
			if o.hash == tok.hash {
				return nil, fmt.Errorf("line %d: token %s has the secret of token %s: give each its own", n, tok.Name, o.Name)
			}
		}
		t.list = append(t.list, tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return &t, nil
}

func parseToken(line string) (Token, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return Token{}, fmt.Errorf("%d fields, want NAME SCOPES SHA256", len(f))
	}
	tok := Token{Name: f[0]}
	for s := range strings.SplitSeq(f[1], ",") {
		if !slices.Contains(scopes, Scope(s)) {
			return Token{}, fmt.Errorf("token %s: unknown scope %q: use read, release or admin", tok.Name, s)
		}
		if !tok.Allows(Scope(s)) {
			tok.Scopes = append(tok.Scopes, Scope(s))
		}
	}
	h, err := hex.DecodeString(f[2])
	if err != nil || len(h) != sha256.Size {
		return Token{}, fmt.Errorf("token %s: %q is not a hex SHA-256 (64 hex digits): see HashToken", tok.Name, f[2])
	}
	copy(tok.hash[:], h)
	return tok, nil
}

// List returns the tokens of t.
func (t *Tokens) List() []Token { return slices.Clone(t.list) }

// NewTokens returns a set of tokens made with NewToken: for tests, and for a
// server that makes its tokens itself rather than reading a token file.
func NewTokens(tokens ...Token) *Tokens {
	return &Tokens{list: slices.Clone(tokens)}
}

// NewToken returns a token named name that secret authenticates, with
// scopes.
func NewToken(name, secret string, scopes ...Scope) Token {
	return Token{Name: name, Scopes: scopes, hash: sha256.Sum256([]byte(secret))}
}

// lookup returns the token whose secret is secret, or nil. It compares the
// secret's hash with every token's, in constant time and without stopping at
// a match, so the time it takes tells nothing of which tokens exist.
func (t *Tokens) lookup(secret string) *Token {
	if t == nil {
		return nil
	}
	h := sha256.Sum256([]byte(secret))
	var found *Token
	for i := range t.list {
		if subtle.ConstantTimeCompare(h[:], t.list[i].hash[:]) == 1 {
			found = &t.list[i]
		}
	}
	return found
}
