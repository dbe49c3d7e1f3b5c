package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
)

// gitfleet runs the CLI in dir and returns its stdout, or its error.
func gitfleet(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return gitfleetIn(t, dir, nil, args...)
}

// gitfleetIn is gitfleet with stdin as its standard input (nil: the
// process's).
func gitfleetIn(t *testing.T, dir string, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	t.Chdir(dir)
	root := newRootCommand()
	if stdin != nil {
		root.SetIn(stdin)
	}
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitfleet(t, dir, args...)
	if err != nil {
		t.Fatalf("gitfleet %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TestReleaseEngineerFlow is the offline release flow of the README: keys,
// a root, a bundle, verify and inspect — and the refusals a device relies on.
func TestReleaseEngineerFlow(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(keys.PassphraseEnv, "release passphrase")
	mustRun(t, dir, "keys", "generate", "--role", "root", "--algorithm", "ecdsa-p256")
	mustRun(t, dir, "keys", "generate", "--role", "targets", "--encrypt")
	mustRun(t, dir, "keys", "generate", "--role", "snapshot")
	mustRun(t, dir, "keys", "generate", "--role", "timestamp")
	if _, err := gitfleet(t, dir, "keys", "generate", "--role", "targets"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwriting a key: err = %v, want it refused", err)
	}
	mustRun(t, dir, "trust", "init", "--root-pub", "root.pub", "--targets-pub", "targets.pub",
		"--snapshot-pub", "snapshot.pub", "--timestamp-pub", "timestamp.pub", "--sign-key", "root.key")

	img := bundletest.Image(t, 3<<20+5, 1)
	out := mustRun(t, dir, "bundle", "create", "-f", "b.gfb", "--product", "acme-gw", "--version", "v1.4.0",
		"--counter", "14", "--device-type", "acme-gw-v2", "--image", "rootfs="+img, "--key", "targets.key",
		"--tag", "v1.4.0", "--commit", "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e", "--objects", "objects")
	if !strings.Contains(out, "acme-gw 1.4.0, counter 14") {
		t.Errorf("create output %q", out)
	}

	out = mustRun(t, dir, "bundle", "verify", "b.gfb", "--root", "root.json", "--device-type", "acme-gw-v2", "--installed-counter", "14", "-o", "json")
	var got struct {
		OK       bool   `json:"ok"`
		Digest   string `json:"digest"`
		Manifest struct {
			Version    string `json:"version"`
			Provenance struct {
				Tag string `json:"tag"`
			} `json:"provenance"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("verify -o json: %v\n%s", err, out)
	}
	if !got.OK || got.Manifest.Version != "1.4.0" || got.Manifest.Provenance.Tag != "v1.4.0" {
		t.Errorf("verify -o json = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "bundles", strings.TrimPrefix(got.Digest, "sha256:")+".dsse.json")); err != nil {
		t.Errorf("object layout: %v", err)
	}

	// The same bundle streamed through a pipe, as from curl; the pipe is
	// widened to hold a chunk, which must not change what is read.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		defer pw.Close()
		if f, err := os.Open(filepath.Join(dir, "b.gfb")); err == nil {
			io.Copy(pw, f)
			f.Close()
		}
	}()
	out, err = gitfleetIn(t, dir, pr, "bundle", "verify", "-", "--root", "root.json", "-o", "json")
	var streamed struct {
		OK     bool   `json:"ok"`
		Digest string `json:"digest"`
	}
	if err != nil || json.Unmarshal([]byte(out), &streamed) != nil || !streamed.OK || streamed.Digest != got.Digest {
		t.Fatalf("verify - from a pipe = %+v, %v\n%s", streamed, err, out)
	}

	out = mustRun(t, dir, "bundle", "inspect", "b.gfb")
	for _, want := range []string{"acme-gw", "not verified", "rootfs", "4 x 1048576"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	data, _ := os.ReadFile(filepath.Join(dir, "b.gfb"))
	data[len(data)-100] ^= 1
	os.WriteFile(filepath.Join(dir, "bad.gfb"), data, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bundle", "verify", "bad.gfb", "--root", "root.json"}, "image rootfs chunk 2"},
		{[]string{"bundle", "verify", "b.gfb", "--root", "root.json", "--installed-counter", "15"}, "downgrade refused"},
		{[]string{"bundle", "verify", "b.gfb", "--root", "root.json", "--device-type", "other"}, "incompatible device type"},
		{[]string{"bundle", "verify", "b.gfb", "--pub", "snapshot.pub"}, "not a trusted --pub key"},
		{[]string{"bundle", "verify", "b.gfb"}, "whom to trust"},
		{[]string{"bundle", "create", "-f", "x.gfb", "--product", "p", "--version", "1.0", "--device-type", "d", "--image", "r=" + img, "--key", "targets.key"}, `version "1.0"`},
		{[]string{"bundle", "create", "-f", "x.gfb", "--product", "p", "--version", "1.0.0", "--device-type", "d", "--image", "r", "--key", "targets.key"}, "want NAME=PATH"},
	} {
		_, err := gitfleet(t, dir, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("gitfleet %s: err = %v, want it to say %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gfb")); !os.IsNotExist(err) {
		t.Errorf("a failed create left x.gfb behind (stat err = %v)", err)
	}
}
