package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Checkout writes the tree of t's commit into dir, like "git archive" piped
// into tar: files, executable bits and symbolic links, without .git.
// Submodules are left as empty directories. dir must not exist yet, or be
// empty. Every file's modification time is the commit time, so a build
// that looks at times sees the same ones on every server.
//
// A tree from the server is not trusted: every write goes through an
// os.Root, and names that git itself refuses to check out (".", "..",
// ".git", anything with a slash) are refused.
func (r *Repo) Checkout(ctx context.Context, t Tag, dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkout(ctx, t, dir); err != nil {
		return fmt.Errorf("check out %s into %s: %w", t.Name, dir, err)
	}
	return nil
}

func (r *Repo) checkout(ctx context.Context, t Tag, dir string) error {
	if t.Commit == "" {
		return errors.New("tag does not name a commit")
	}
	c, err := object.GetCommit(r.repo.Storer, plumbing.NewHash(t.Commit))
	if err != nil {
		return err
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
		if err == nil {
			err = errors.New("directory is not empty")
		}
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := exporter{ctx: ctx, objects: r.repo.Storer, root: root, time: c.Committer.When}
	return x.tree(tree, "")
}

// An exporter writes a tree under root.
type exporter struct {
	ctx     context.Context
	objects storer.EncodedObjectStorer
	root    *os.Root
	time    time.Time
}

func (x *exporter) tree(tree *object.Tree, dir string) error {
	for _, e := range tree.Entries {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.EqualFold(e.Name, ".git") || strings.ContainsAny(e.Name, "/\x00") {
			return fmt.Errorf("tree entry %q in %q: refused", e.Name, dir)
		}
		name := path.Join(dir, e.Name)
		switch e.Mode {
		case filemode.Dir:
			sub, err := object.GetTree(x.objects, e.Hash)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := x.root.Mkdir(name, 0o755); err != nil {
				return err
			}
			if err := x.tree(sub, name); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			perm := os.FileMode(0o644)
			if e.Mode == filemode.Executable {
				perm = 0o755
			}
			if err := x.file(e.Hash, name, perm); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case filemode.Symlink:
			if err := x.symlink(e.Hash, name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case filemode.Submodule:
			if err := x.root.Mkdir(name, 0o755); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unknown mode %s", name, e.Mode)
		}
	}
	return nil
}

func (x *exporter) file(h plumbing.Hash, name string, perm os.FileMode) error {
	blob, err := object.GetBlob(x.objects, h)
	if err != nil {
		return err
	}
	rd, err := blob.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return x.root.Chtimes(name, x.time, x.time)
}

func (x *exporter) symlink(h plumbing.Hash, name string) error {
	blob, err := object.GetBlob(x.objects, h)
	if err != nil {
		return err
	}
	if blob.Size > 4096 {
		return fmt.Errorf("symbolic link target of %d bytes", blob.Size)
	}
	rd, err := blob.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	target, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	return x.root.Symlink(string(target), name)
}
