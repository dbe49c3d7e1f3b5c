package recipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BuildPath is the PATH a build runs with. It is fixed rather than taken
// from the server, like the rest of the build's environment.
const BuildPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// waitDelay is how long Build waits for the build's output to close after
// its process group was killed, in case a process escaped the group while
// holding the log pipe.
const waitDelay = 5 * time.Second

// A Checkout is a clean checkout of a tagged commit, where a recipe runs.
type Checkout struct {
	// Dir is the checkout's root directory.
	Dir string
	// Time is the commit's time: the build's SOURCE_DATE_EPOCH, so that
	// reproducible builds stamp files with it rather than with the time of
	// the build.
	Time time.Time
	// Tag and Commit, when set, are given to the build as GITFLEET_TAG and
	// GITFLEET_COMMIT: the checkout has no .git to ask.
	Tag, Commit string
}

// An Image is a file a build produced, found where its recipe said.
type Image struct {
	Name string
	Slot string
	// Path is the file's absolute path, inside the checkout.
	Path string
	Size int64
}

// Build runs r's build command in co.Dir and returns the images it
// produced, in the recipe's order. Everything the command prints, on
// standard output and standard error, goes to log.
//
// The command runs in a process group of its own with a fixed environment
// that takes nothing from the server's, so that no secret of the server
// reaches a build that anyone with push access can write:
//
//	PATH=BuildPath HOME=<empty temp dir> TMPDIR=<empty temp dir> LANG=C TZ=UTC
//	SOURCE_DATE_EPOCH=<co.Time> GITFLEET_PRODUCT=<r.Product>
//	GITFLEET_TAG=<co.Tag> GITFLEET_COMMIT=<co.Commit> (when set)
//
// When the build outlives r.Timeout (DefaultTimeout if unset) or ctx, the
// whole group is killed and Build returns an error wrapping
// context.DeadlineExceeded (or ctx's error). Processes left running when
// the command exits are killed too.
// Processes that leave the group (setsid, daemons) are not: the build is
// trusted not to, or sandboxed by the command itself.
//
// Each image must then be a regular file at its path, not a symbolic link,
// and no directory on the way to it may lead out of the checkout.
func Build(ctx context.Context, r *Recipe, co Checkout, log io.Writer) ([]Image, error) {
	if log == nil {
		log = io.Discard
	}
	dir, err := filepath.Abs(co.Dir)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", r.Product, err)
	}
	tmp, err := os.MkdirTemp("", "gitfleet-build-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", r.Product, err)
	}
	defer os.RemoveAll(tmp)
	home, tmpdir := filepath.Join(tmp, "home"), filepath.Join(tmp, "tmp")
	for _, d := range []string{home, tmpdir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("build %s: %w", r.Product, err)
		}
	}
	env := []string{
		"PATH=" + BuildPath,
		"HOME=" + home,
		"TMPDIR=" + tmpdir,
		"LANG=C",
		"TZ=UTC",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(co.Time.Unix(), 10),
		"GITFLEET_PRODUCT=" + r.Product,
	}
	if co.Tag != "" {
		env = append(env, "GITFLEET_TAG="+co.Tag)
	}
	if co.Commit != "" {
		env = append(env, "GITFLEET_COMMIT="+co.Commit)
	}

	argv := r.Command.Argv
	if argv == nil {
		argv = []string{"/bin/sh", "-c", r.Command.Shell}
	}
	prog, err := lookPath(argv[0], dir)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", r.Product, err)
	}

	timeout := r.Timeout
	if timeout <= 0 { // a Recipe made by hand rather than parsed
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("timed out after %s: %w", fmtDuration(timeout), context.DeadlineExceeded))
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.WaitDelay = waitDelay
	ownGroup(cmd)
	fmt.Fprintf(log, "gitfleet: building %s in %s: %s (timeout %s)\n", r.Product, dir, r.Command, fmtDuration(timeout))
	start := time.Now()
	err = cmd.Run()
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		fmt.Fprintf(log, "gitfleet: build failed after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
		return nil, fmt.Errorf("build %s: %s: %w", r.Product, r.Command, err)
	}
	fmt.Fprintf(log, "gitfleet: build finished in %s\n", time.Since(start).Round(time.Millisecond))
	images, err := findImages(r, dir)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", r.Product, err)
	}
	return images, nil
}

// lookPath finds the program a build runs: a name with a slash is relative
// to the checkout, a bare name is looked up in BuildPath (not in the
// server's PATH).
func lookPath(name, dir string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return name, nil
	}
	for _, d := range filepath.SplitList(BuildPath) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in %s", name, BuildPath)
}

// findImages checks every image of r in the checkout dir through an
// os.Root, which refuses any path that leads out of it.
func findImages(r *Recipe, dir string) ([]Image, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var out []Image
	for _, im := range r.Images {
		fi, err := root.Lstat(filepath.FromSlash(im.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("image %s: the build left no file at %s", im.Name, im.Path)
		case err != nil:
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is im.Path, and the operation an implementation detail
			}
			return nil, fmt.Errorf("image %s: %s: %w", im.Name, im.Path, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, fmt.Errorf("image %s: %s is a symbolic link, want a regular file", im.Name, im.Path)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("image %s: %s is a %s, want a regular file", im.Name, im.Path, fileKind(fi.Mode()))
		}
		out = append(out, Image{Name: im.Name, Slot: im.Slot, Path: filepath.Join(dir, filepath.FromSlash(im.Path)), Size: fi.Size()})
	}
	return out, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
