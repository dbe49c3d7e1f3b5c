package slot

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// A Detector tells which group the running system booted from. The boot
// package's environment backend is one, reading the bootloader's variables.
type Detector interface {
	Booted(ctx context.Context) (string, error)
}

// Defaults of Cmdline.
const (
	DefaultCmdline    = "/proc/cmdline"
	DefaultCmdlineKey = "gitfleet.slot"
)

// Cmdline finds the running group in the kernel command line, where the
// bootloader put it when it chose the group: gitfleet.slot=A. It is the
// most reliable Detector: the command line is what this boot was started
// with, whatever was written to the bootloader's variables since.
type Cmdline struct {
	// Path is the file holding the command line; empty means
	// DefaultCmdline.
	Path string
	// Key is the parameter naming the group; empty means
	// DefaultCmdlineKey.
	Key string
}

// Booted returns the value of the last Key=value parameter in the command
// line, read as the kernel splits it: at spaces, except inside double
// quotes, which are dropped.
func (c Cmdline) Booted(ctx context.Context) (string, error) {
	path, key := c.Path, c.Key
	if path == "" {
		path = DefaultCmdline
	}
	if key == "" {
		key = DefaultCmdlineKey
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read kernel command line: %w", err)
	}
	v, ok := cmdlineValue(string(b), key)
	if !ok {
		return "", fmt.Errorf("kernel command line %s has no %s=: have the bootloader pass %s=A or %s=B", path, key, key, key)
	}
	return v, nil
}

// cmdlineValue returns the value of the last key=value parameter in the
// command line s.
func cmdlineValue(s, key string) (value string, ok bool) {
	for _, p := range cmdlineParams(s) {
		if k, v, found := strings.Cut(p, "="); found && k == key {
			value, ok = v, true
		}
	}
	return value, ok
}

// cmdlineParams splits a kernel command line into parameters as the kernel's
// next_arg does: at whitespace outside double quotes, the quotes removed.
func cmdlineParams(s string) []string {
	var params []string
	var cur strings.Builder
	inQuote, inParam := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote, inParam = !inQuote, true
		case !inQuote && isSpace(c):
			if inParam {
				params = append(params, cur.String())
				cur.Reset()
				inParam = false
			}
		default:
			cur.WriteByte(c)
			inParam = true
		}
	}
	if inParam {
		params = append(params, cur.String())
	}
	return params
}

// isSpace reports whether c is whitespace to the kernel's isspace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// Fixed is a running group fixed by configuration, for a device that boots
// one group only or for tests.
type Fixed string

// Booted returns f.
func (f Fixed) Booted(context.Context) (string, error) { return string(f), nil }
