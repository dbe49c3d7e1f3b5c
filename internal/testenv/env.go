package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env reads the variables that describe one service, collecting the names of those that are not set
// so that one failure can name them all.
type env struct {
	missing []string
}

func (e *env) get(name string) string {
	v := os.Getenv(name)
	if v == "" {
		e.missing = append(e.missing, name)
	}
	return v
}

// check fails the test if a variable was not set.
func (e *env) check(t testing.TB, service string) {
	t.Helper()
	if len(e.missing) > 0 {
		fatalf(t, "this test needs %s, but %s not set", service, isOrAre(e.missing))
	}
}

func isOrAre(names []string) string {
	if len(names) == 1 {
		return names[0] + " is"
	}
	return strings.Join(names, ", ") + " are"
}

// fatalf fails the test with a message about a service, followed by how to run the test with the services.
func fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("testenv: %s.\n"+
		"The test services run under scripts/with-services.sh: run the tests with \"make test\", or run this "+
		"package alone with \"scripts/with-services.sh go test %s\" at the repository root.",
		fmt.Sprintf(format, args...), packagePattern())
}

// packagePattern returns the go test pattern of the package under test ("./internal/testenv/"), or
// "./..." if it cannot tell. go test runs a test binary in its package's directory.
func packagePattern() string {
	dir, err := os.Getwd()
	if err != nil {
		return "./..."
	}
	for root := dir; ; root = filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, dir)
			if err != nil || rel == "." {
				return "./..."
			}
			return "./" + filepath.ToSlash(rel) + "/"
		}
		if root == filepath.Dir(root) {
			return "./..."
		}
	}
}
