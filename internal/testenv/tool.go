package testenv

import (
	"cmp"
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// tools is the table of the programs tests run and the Debian packages that provide them, which
// scripts/with-services.sh reads too.
//
//go:embed tools.txt
var tools string

// Tool returns the path of program name, which the calling test runs. It looks in $PATH, then where
// Debian keeps programs out of a user's $PATH: /usr/sbin, /sbin and /usr/lib/postgresql/VERSION/bin,
// newest version first. It fails the test if the program is not installed, naming the Debian package
// to install; and if tools.txt does not list the program, so that "make test" installs every program
// a test needs on a fresh machine.
func Tool(t testing.TB, name string) string {
	t.Helper()
	pkg, ok := packages()[name]
	if !ok {
		t.Fatalf("testenv: %s is not in internal/testenv/tools.txt: add it there with the Debian package "+
			"that provides it, so that make test installs it", name)
	}
	path, ok := lookTool(name)
	if !ok {
		t.Fatalf("testenv: this test runs %s, which is not installed: install it with "+
			"\"apt-get install %s\", or run the tests with \"make test\", which installs it", name, pkg)
	}
	return path
}

// packages maps each program in tools.txt to the Debian package that provides it.
var packages = sync.OnceValue(func() map[string]string {
	m := make(map[string]string)
	for line := range strings.Lines(tools) {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			m[f[0]] = f[1]
		}
	}
	return m
})

// lookTool looks for program name where Tool says.
func lookTool(name string) (string, bool) {
	if filepath.IsAbs(name) {
		// A file a package provides, such as protoc's include files.
		_, err := os.Stat(name)
		return name, err == nil
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, true
	}
	postgres, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(postgres, func(a, b string) int { // newest first: 15 before 9.6
		return cmp.Compare(postgresVersion(b), postgresVersion(a))
	})
	for _, dir := range append([]string{"/usr/sbin", "/sbin"}, postgres...) {
		if path, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return path, true
		}
	}
	return "", false
}

// postgresVersion returns the version in /usr/lib/postgresql/VERSION/bin.
func postgresVersion(bin string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64)
	return v
}
