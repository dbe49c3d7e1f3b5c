package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/internal/atomicfile"
)

// File is a Store in a plain text file of name=value lines, the virtual
// board's environment. A write replaces the file atomically (temp file,
// fsync, rename, fsync of the directory), so a power cut leaves the old
// variables or the new ones. A missing file holds no variables, like erased
// flash, which the bootloader side reads as "boot A, no trial".
//
// File takes no lock: one process at a time changes it (the agent while the
// board runs, the board's bootloader while it powers on).
type File struct {
	Path string
}

// Read returns the variables in the file.
func (f *File) Read() (*bootenv.Vars, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return new(bootenv.Vars), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read boot environment: %w", err)
	}
	v, err := parseFile(b)
	if err != nil {
		return nil, fmt.Errorf("read boot environment %s: %w", f.Path, err)
	}
	return v, nil
}

// Write replaces the file with v, creating it if needed. It returns an error
// naming the variable for a name or value the format cannot hold: a newline,
// or a name starting with '#'.
func (f *File) Write(v *bootenv.Vars) error {
	b, err := marshalFile(v)
	if err != nil {
		return fmt.Errorf("write boot environment %s: %w", f.Path, err)
	}
	if err := atomicfile.Write(f.Path, b, 0o644); err != nil {
		return fmt.Errorf("write boot environment: %w", err)
	}
	return nil
}

// Update reads the file, lets fn change the variables and writes them back.
// If fn returns an error nothing is written.
func (f *File) Update(ctx context.Context, fn func(*bootenv.Vars) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := f.Read()
	if err != nil {
		return err
	}
	if err := fn(v); err != nil {
		return fmt.Errorf("update boot environment: %w", err)
	}
	return f.Write(v)
}

// parseFile reads name=value lines. Blank lines and lines starting with '#'
// are skipped; the name runs to the first '=', the value to the end of the
// line; of duplicate names the last wins. A line without '=' or with a name
// bootenv.Vars refuses is an error naming the line.
func parseFile(b []byte) (*bootenv.Vars, error) {
	v := new(bootenv.Vars)
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: no '=' in %q", i+1, line)
		}
		if err := v.Set(name, value); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return v, nil
}

// marshalFile writes v as name=value lines, in v's order.
func marshalFile(v *bootenv.Vars) ([]byte, error) {
	var b bytes.Buffer
	for name, value := range v.All() {
		if strings.HasPrefix(name, "#") || strings.Contains(name+value, "\n") {
			return nil, fmt.Errorf("variable %q: a name starting with '#' or a newline cannot be stored in a key=value file", name)
		}
		fmt.Fprintf(&b, "%s=%s\n", name, value)
	}
	return b.Bytes(), nil
}
