package recipe

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml/ast"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// RecipeFile is the name of the recipe at the root of a tagged commit.
const RecipeFile = "gitfleet.yaml"

// Limits on a recipe, matching what a bundle manifest may hold (see
// firmware/bundle), so that a recipe that parses yields a manifest that
// validates.
const (
	DefaultTimeout = 30 * time.Minute
	// MaxRollbackIndex bounds rollback_index.
	MaxRollbackIndex = 1 << 31
	MaxTimeout       = 24 * time.Hour
	maxDeviceTypes   = 64
	maxNameLength    = 64
	maxArgs          = 256
	maxArgLength     = 64 << 10
	maxPathLength    = 1024
)

// A Recipe is gitfleet.yaml: how to build a release from the commit a tag
// points to. FORMAT.md beside this file describes the file.
type Recipe struct {
	// Product names what the firmware is for, as in the bundle manifest.
	Product string
	// DeviceTypes are the device types the images run on.
	DeviceTypes []string
	// Command is build.command, run in a clean checkout of the tag.
	Command Command
	// Timeout is build.timeout: the build is killed, with every process it
	// started, when it runs longer.
	Timeout time.Duration
	// Images are the files the build leaves in the checkout.
	Images []ImageSpec
	// RollbackIndex is rollback_index: the lowest release counter the
	// release may carry. Devices refuse a bundle whose counter is below the
	// one they run, so raising it (for a security fix) keeps every older
	// release off them for good; leaving it alone lets `git revert` of a
	// promotion roll devices back. 0 when absent.
	RollbackIndex int
}

// A Command is a build command: either an argument vector, run directly, or
// a shell script, run by /bin/sh -c. Exactly one is set.
type Command struct {
	Argv  []string
	Shell string
}

// String returns the command as a person would type it.
func (c Command) String() string {
	if c.Argv == nil {
		return c.Shell
	}
	return strings.Join(c.Argv, " ")
}

// An ImageSpec is an image the build produces.
type ImageSpec struct {
	// Name is the image's name in the bundle.
	Name string
	// Path is where the build leaves the image, relative to the checkout,
	// slash-separated and inside it.
	Path string
	// Slot is the slot class the image is written to, e.g. "rootfs".
	Slot string
}

// Parse parses and validates a recipe. name is the file name used in
// errors, normally RecipeFile; errors are *Error.
func Parse(name string, data []byte) (*Recipe, error) {
	d := &decoder{file: name}
	root := d.parse(data)
	if root == nil {
		return nil, d.err
	}
	r := &Recipe{Timeout: DefaultTimeout}
	d.mapping(field{node: root, line: line(root)},
		spec{"product", true, func(f field) { r.Product = d.name(f) }},
		spec{"device_types", true, func(f field) { r.DeviceTypes = d.names(f, maxDeviceTypes) }},
		spec{"build", true, func(f field) {
			d.mapping(f,
				spec{"command", true, func(f field) { r.Command = d.command(f) }},
				spec{"timeout", false, func(f field) { r.Timeout, _ = d.duration(f, time.Second, MaxTimeout) }},
			)
		}},
		spec{"images", true, func(f field) { r.Images = d.images(f) }},
		spec{"rollback_index", false, func(f field) { r.RollbackIndex, _ = d.integer(f, 0, MaxRollbackIndex) }},
	)
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// Load reads and parses RecipeFile in dir, a checkout of a tag.
func Load(dir string) (*Recipe, error) {
	data, err := readFile(filepath.Join(dir, RecipeFile))
	if err != nil {
		return nil, err
	}
	return Parse(RecipeFile, data)
}

// readFile reads a file of at most MaxFileSize bytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("read %s: want a regular file of at most %d bytes", name, MaxFileSize)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// name decodes a product, device type, image, slot or label key name.
func (d *decoder) name(f field) string {
	s, ok := d.scalar(f)
	switch {
	case !ok:
		d.fail(f, "want a name, got null")
	case len(s) > maxNameLength || !gitfleetv1.IsName(s):
		d.fail(f, "%q: want lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most %d", s, maxNameLength)
	}
	return s
}

// names decodes a non-empty list of distinct names.
func (d *decoder) names(f field, max int) []string {
	var out []string
	d.sequence(f, func(i int, v field) {
		s := d.name(v)
		for _, prev := range out {
			if prev == s {
				d.fail(v, "%q listed twice", s)
			}
		}
		out = append(out, s)
	})
	if len(out) == 0 || len(out) > max {
		d.fail(f, "%d entries: want 1 to %d", len(out), max)
	}
	return out
}

func (d *decoder) command(f field) Command {
	if _, list := d.value(f).(*ast.SequenceNode); !list {
		s, ok := d.scalar(f)
		if !ok || strings.TrimSpace(s) == "" {
			d.fail(f, "want a shell command or a list of arguments")
		} else if err := checkArg(s); err != nil {
			d.fail(f, "%v", err)
		}
		return Command{Shell: s}
	}
	var argv []string
	d.sequence(f, func(i int, v field) {
		s, ok := d.scalar(v)
		if !ok {
			d.fail(v, "want an argument, got null")
		} else if err := checkArg(s); err != nil {
			d.fail(v, "%v", err)
		}
		argv = append(argv, s)
	})
	if d.err != nil {
		return Command{}
	}
	if len(argv) == 0 || len(argv) > maxArgs || argv[0] == "" {
		d.fail(f, "want a program and at most %d arguments", maxArgs-1)
	}
	return Command{Argv: argv}
}

// checkArg refuses NUL, which no process argument can hold, and oversized
// arguments.
func checkArg(s string) error {
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("contains a NUL character")
	}
	if len(s) > maxArgLength {
		return fmt.Errorf("%d bytes: at most %d allowed", len(s), maxArgLength)
	}
	return nil
}

func (d *decoder) images(f field) []ImageSpec {
	var out []ImageSpec
	d.sequence(f, func(i int, v field) {
		var im ImageSpec
		d.mapping(v,
			spec{"name", true, func(f field) { im.Name = d.name(f) }},
			spec{"path", true, func(f field) { im.Path = d.imagePath(f) }},
			spec{"slot", true, func(f field) { im.Slot = d.name(f) }},
		)
		for _, prev := range out {
			switch {
			case d.err != nil:
			case prev.Name == im.Name:
				d.fail(v, "image %q listed twice", im.Name)
			case prev.Slot == im.Slot:
				d.fail(v, "slot %q: images %s and %s both target it", im.Slot, prev.Name, im.Name)
			case prev.Path == im.Path:
				d.fail(v, "path %q: images %s and %s are the same file", im.Path, prev.Name, im.Name)
			}
		}
		out = append(out, im)
	})
	if d.err == nil && (len(out) == 0 || len(out) > bundle.MaxImages) {
		d.fail(f, "%d images: want 1 to %d", len(out), bundle.MaxImages)
	}
	return out
}

// imagePath decodes an image path: relative, slash-separated, clean, and
// inside the checkout. Symbolic links are checked after the build, when the
// file exists (see Build).
func (d *decoder) imagePath(f field) string {
	s, ok := d.scalar(f)
	switch {
	case !ok || s == "":
		d.fail(f, "want a path relative to the checkout")
	case len(s) > maxPathLength || strings.ContainsFunc(s, unicode.IsControl) || strings.Contains(s, `\`):
		d.fail(f, "%.80q: want at most %d printable characters and '/' as separator", s, maxPathLength)
	case path.IsAbs(s) || !filepath.IsLocal(s):
		d.fail(f, "%q: want a path inside the checkout, relative to it", s)
	case path.Clean(s) != s:
		d.fail(f, "%q: want a clean path (%s)", s, path.Clean(s))
	case s == ".git" || strings.HasPrefix(s, ".git/"):
		d.fail(f, "%q: want a path outside .git", s)
	}
	return s
}
