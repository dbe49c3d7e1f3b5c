package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/server/api"
)

// TestParseTokens reads token files good and bad.
func TestParseTokens(t *testing.T) {
	ci, ops := api.HashToken("ci-secret"), api.HashToken("ops-secret")
	tests := []struct {
		name    string
		file    string
		want    []string // "name scopes" of each token
		wantErr string
	}{
		{name: "empty", file: "", want: nil},
		{name: "two tokens", file: "# name scopes sha256\n\nci read,release " + ci + "\n\tops   read,admin,read\t" + ops + "\n",
			want: []string{"ci [read release]", "ops [read admin]"}},
		{name: "too few fields", file: "ci read", wantErr: "line 1: 2 fields, want NAME SCOPES SHA256"},
		{name: "unknown scope", file: "\nci read,write " + ci, wantErr: `line 2: token ci: unknown scope "write": use read, release or admin`},
		{name: "not hex", file: "ci read " + strings.Repeat("g", 64), wantErr: "line 1: token ci: \"ggg"},
		{name: "short hash", file: "ci read abcd", wantErr: "is not a hex SHA-256 (64 hex digits)"},
		{name: "token itself instead of its hash", file: "ci read ci-secret", wantErr: "is not a hex SHA-256"},
		{name: "name twice", file: "ci read " + ci + "\nci admin " + ops, wantErr: "line 2: token ci is listed twice"},
		{name: "secret twice", file: "ci read " + ci + "\nops admin " + ci, wantErr: "line 2: token ops has the secret of token ci"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			toks, err := api.LoadTokens(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want it to name %s and say %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tok := range toks.List() {
				got = append(got, fmt.Sprint(tok.Name, " ", tok.Scopes))
			}
			if !cmp.Equal(got, tc.want) {
				t.Errorf("tokens = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := api.LoadTokens(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "load tokens") {
		t.Errorf("missing file: err = %v", err)
	}
}

// FuzzParseTokens: any file either parses or fails with one line naming the
// line of the file it failed on.
func FuzzParseTokens(f *testing.F) {
	f.Add("ci read,release " + api.HashToken("x") + "\n# comment\n")
	f.Add("a b c\n\n")
	f.Fuzz(func(t *testing.T, file string) {
		_, err := api.ParseTokens(strings.NewReader(file))
		if err != nil && (!strings.HasPrefix(err.Error(), "line ") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("error %q names no line", err)
		}
	})
}
