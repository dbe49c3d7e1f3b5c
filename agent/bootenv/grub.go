package bootenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
)

// GRUBEnvSize is the size of the GRUB environment block that grub-editenv
// creates and that MarshalGRUBEnv writes.
const GRUBEnvSize = 1024

// grubSignature starts every GRUB environment block.
const grubSignature = "# GRUB Environment Block\n"

// ParseGRUBEnv decodes a GRUB environment block, reading it as GRUB's
// grub_envblk_iterate does: after the signature line, lines starting with
// '#' are comments (Debian's warning line, the '#' padding), other lines are
// name=value with "\\" and "\" + newline unescaped in the value. Like GRUB,
// it stops without error at a line it cannot finish (no '=' or no newline
// before the end), and reads names and values as C strings, up to a NUL.
// Variables with an empty name are skipped; of duplicate names the last
// wins, as in GRUB's load_env. A block without the signature is an error
// wrapping ErrCorrupt. Any length is accepted, as GRUB accepts it.
func ParseGRUBEnv(b []byte) (*Vars, error) {
	if !bytes.HasPrefix(b, []byte(grubSignature)) {
		return nil, fmt.Errorf("%w: GRUB environment block does not start with %q", ErrCorrupt, grubSignature)
	}
	v := new(Vars)
	for p := len(grubSignature); p < len(b); p++ {
		if b[p] == '#' {
			for p < len(b) && b[p] != '\n' {
				p++
			}
			continue
		}
		eq := bytes.IndexByte(b[p:], '=')
		if eq < 0 {
			break
		}
		name := cString(b[p : p+eq])
		p += eq + 1
		var value []byte
		for ; p < len(b) && b[p] != '\n'; p++ {
			if b[p] == '\\' {
				p++
				if p == len(b) {
					break
				}
			}
			value = append(value, b[p])
		}
		if p >= len(b) {
			break
		}
		if name != "" {
			v.set(name, cString(value))
		}
	}
	return v, nil
}

// cString returns b up to its first NUL, as C code sees it.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// MarshalGRUBEnv encodes v as a GRUBEnvSize-byte block that grub-editenv and
// GRUB's load_env read: the signature line, one name=value line per
// variable in v's order with '\' and newline escaped by a backslash, and '#'
// padding. It writes no Debian warning line: that is a comment. It returns an
// error naming the variable for a name GRUB would read as a comment, and one
// naming the sizes if the variables do not fit.
func MarshalGRUBEnv(v *Vars) ([]byte, error) {
	b := make([]byte, 0, GRUBEnvSize)
	b = append(b, grubSignature...)
	for name, value := range v.All() {
		if strings.HasPrefix(name, "#") {
			return nil, fmt.Errorf("variable %q: a GRUB variable name cannot start with '#'", name)
		}
		b = append(b, name...)
		b = append(b, '=')
		for i := 0; i < len(value); i++ {
			if value[i] == '\\' || value[i] == '\n' {
				b = append(b, '\\')
			}
			b = append(b, value[i])
		}
		b = append(b, '\n')
	}
	if len(b) > GRUBEnvSize {
		return nil, fmt.Errorf("GRUB environment of %d variables needs %d bytes, the block holds %d", v.Len(), len(b), GRUBEnvSize)
	}
	for len(b) < GRUBEnvSize {
		b = append(b, '#')
	}
	return b, nil
}

// GRUBEnv is a GRUB environment block in a file, such as
// /boot/grub/grubenv.
//
// Writes replace the file atomically: a new file in the same directory,
// fsynced, renamed over the old one, and the directory fsynced. A power cut
// leaves the old block or the new one, never a mix; the block has no
// checksum, so a torn in-place write could not be detected. GRUB does not
// need the block to stay where it was: its save_env looks up the file's
// sectors each time it runs. FORMAT.md discusses the trade-off.
type GRUBEnv struct {
	// Path is the block's file. A symbolic link is followed, and the file
	// it points to is replaced.
	Path string
}

// Read returns the variables in the block. A missing file is an error
// wrapping fs.ErrNotExist, and a file without the signature one wrapping
// ErrCorrupt; either way a caller that starts over from defaults uses Write.
func (e *GRUBEnv) Read() (*Vars, error) {
	b, err := os.ReadFile(e.Path)
	if err != nil {
		return nil, fmt.Errorf("read GRUB environment: %w", err)
	}
	v, err := ParseGRUBEnv(b)
	if err != nil {
		return nil, fmt.Errorf("read GRUB environment %s: %w", e.Path, err)
	}
	return v, nil
}

// Update reads the block, lets fn change the variables and writes them back,
// holding a lock on the block's directory so that another Update in between
// is not lost. If fn returns an error nothing is written. grub-editenv takes
// no lock: do not run it while the agent updates the block.
func (e *GRUBEnv) Update(ctx context.Context, fn func(*Vars) error) error {
	path, dir, err := e.lock(ctx)
	if err != nil {
		return fmt.Errorf("update GRUB environment: %w", err)
	}
	defer dir.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("update GRUB environment: %w", err)
	}
	v, err := ParseGRUBEnv(b)
	if err != nil {
		return fmt.Errorf("update GRUB environment %s: %w", path, err)
	}
	if err := fn(v); err != nil {
		return fmt.Errorf("update GRUB environment: %w", err)
	}
	return writeGRUBEnv(path, v)
}

// Write replaces the block with one holding v, creating the file if needed.
func (e *GRUBEnv) Write(ctx context.Context, v *Vars) error {
	path, dir, err := e.lock(ctx)
	if err != nil {
		return fmt.Errorf("write GRUB environment: %w", err)
	}
	defer dir.Close()
	return writeGRUBEnv(path, v)
}

// lock resolves the block's path through symbolic links and flocks its
// directory. The directory and not the file is locked because the rename
// replaces the file: a lock on the old file would not exclude a process that
// opened the new one.
func (e *GRUBEnv) lock(ctx context.Context) (path string, dir *os.File, err error) {
	path = e.Path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	dir, err = os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	if err := flock(ctx, dir); err != nil {
		dir.Close()
		return "", nil, err
	}
	return path, dir, nil
}

// writeGRUBEnv encodes v and atomically replaces the file at path, keeping
// the file's permissions.
func writeGRUBEnv(path string, v *Vars) error {
	b, err := MarshalGRUBEnv(v)
	if err != nil {
		return fmt.Errorf("write GRUB environment %s: %w", path, err)
	}
	perm := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := atomicfile.Write(path, b, perm); err != nil {
		return fmt.Errorf("write GRUB environment: %w", err)
	}
	return nil
}
