package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
	"github.com/gitfleet/gitfleet/server/api"
)

// persistentSecret reads the secret at path, making a random one on first
// use: presigned object URLs stay valid across restarts.
func persistentSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return hex.DecodeString(strings.TrimSpace(string(b)))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return secret, nil
}

// demoTokens gives the embedded defaults one admin token, kept in
// DATA_DIR/api-token so the CLI can use it:
// GITFLEET_TOKEN=$(cat gitfleet-data/api-token).
func (s *server) demoTokens() (*api.Tokens, error) {
	path := filepath.Join(s.cfg.DataDir, "api-token")
	secret, err := persistentSecret(path)
	if err != nil {
		return nil, fmt.Errorf("api token: %w", err)
	}
	s.log.Warn("no api.tokens_file: one admin token is in " + path + " (export GITFLEET_TOKEN=$(cat " + path + "))")
	return api.NewTokens(api.NewToken("demo-admin", hex.EncodeToString(secret), api.ScopeRead, api.ScopeRelease, api.ScopeAdmin)), nil
}
