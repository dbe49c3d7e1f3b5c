package gitsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/gitfleet/gitfleet/server/recipe"
)

// MaxPromoteAttempts bounds how often Promote starts over because someone
// else pushed to the branch first.
const MaxPromoteAttempts = 5

// Fleet returns fleet.yaml at the head of the branch, as of the last Fetch,
// and the head commit's id.
func (r *Repo) Fleet() (*recipe.Fleet, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	head, err := r.head()
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", recipe.FleetFile, err)
	}
	fl, _, err := r.fleetAt(head)
	if err != nil {
		return nil, "", fmt.Errorf("read %s at %s: %w", recipe.FleetFile, head.Hash, err)
	}
	return fl, head.Hash.String(), nil
}

// Head returns the head commit of the branch as of the last Fetch, or ""
// if the server has no such branch.
func (r *Repo) Head() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.repo.Storer.Reference(r.remoteBranch())
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read branch %s: %w", r.cfg.Branch, err)
	}
	return ref.Hash().String(), nil
}

// head returns the cached head commit of the branch.
func (r *Repo) head() (*object.Commit, error) {
	ref, err := r.repo.Storer.Reference(r.remoteBranch())
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, fmt.Errorf("branch %s not found on %s", r.cfg.Branch, r.cfg.URL)
	}
	if err != nil {
		return nil, err
	}
	return object.GetCommit(r.repo.Storer, ref.Hash())
}

// fleetAt parses fleet.yaml in commit c's root tree and returns it with its
// tree entry.
func (r *Repo) fleetAt(c *object.Commit) (*recipe.Fleet, *object.TreeEntry, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, nil, err
	}
	var entry *object.TreeEntry
	for i := range tree.Entries {
		if tree.Entries[i].Name == recipe.FleetFile {
			entry = &tree.Entries[i]
		}
	}
	if entry == nil || (entry.Mode != filemode.Regular && entry.Mode != filemode.Executable) {
		return nil, nil, fmt.Errorf("no regular file %s at the root of the branch", recipe.FleetFile)
	}
	blob, err := object.GetBlob(r.repo.Storer, entry.Hash)
	if err != nil {
		return nil, nil, err
	}
	if blob.Size > recipe.MaxFileSize {
		return nil, nil, fmt.Errorf("%d bytes: at most %d allowed", blob.Size, recipe.MaxFileSize)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, nil, err
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, nil, err
	}
	fl, err := recipe.ParseFleet(recipe.FleetFile, data)
	if err != nil {
		return nil, nil, err
	}
	return fl, entry, nil
}

// A Promotion is a promotion commit, pushed.
type Promotion struct {
	// Commit is the promotion commit, now the head of the branch.
	Commit string
	// Parent is the head it was made on.
	Parent string
	// Fleet is fleet.yaml as the commit has it.
	Fleet *recipe.Fleet
	// Message is the commit message: "promote v1.4.0 to production".
	Message string
}

// Promote sets channel's release to version in fleet.yaml on the branch:
// a commit by the configured author, "promote v1.4.0 to production", that
// changes one line, pushed to the server. If someone else pushed to the
// branch in the meantime, the push is refused, and Promote fetches the new
// head, applies the promotion to it and pushes again, at most
// MaxPromoteAttempts times. "git revert" of the commit is the rollback.
//
// Errors wrap recipe.ErrUnknownChannel and recipe.ErrUnchanged (the channel
// already runs version, so nothing was committed) for the caller to decide
// on.
func (r *Repo) Promote(ctx context.Context, channel, version string) (Promotion, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lastErr error
	for range MaxPromoteAttempts {
		p, err := r.promote(ctx, channel, version)
		if err == nil {
			return p, nil
		}
		var lost *lostRaceError
		if !errors.As(err, &lost) {
			return Promotion{}, fmt.Errorf("promote %s to %s: %w", version, channel, err)
		}
		lastErr = err
	}
	return Promotion{}, fmt.Errorf("promote %s to %s: gave up after %d attempts: %w", version, channel, MaxPromoteAttempts, lastErr)
}

// A lostRaceError is a refused push after which the branch head is not
// the promotion's parent: someone else pushed first, and the promotion is
// worth trying again on the new head.
type lostRaceError struct {
	err error
}

func (e *lostRaceError) Error() string { return "the branch moved: " + e.err.Error() }
func (e *lostRaceError) Unwrap() error { return e.err }

func (r *Repo) promote(ctx context.Context, channel, version string) (Promotion, error) {
	if err := r.fetch(ctx); err != nil {
		return Promotion{}, fmt.Errorf("fetch %s: %w", r.cfg.URL, err)
	}
	parent, err := r.head()
	if err != nil {
		return Promotion{}, err
	}
	fl, entry, err := r.fleetAt(parent)
	if err != nil {
		return Promotion{}, fmt.Errorf("read %s at %s: %w", recipe.FleetFile, parent.Hash, err)
	}
	data, err := fl.Promote(channel, version)
	if err != nil {
		return Promotion{}, err
	}
	v, _ := recipe.ParseRelease(version) // Promote accepted it
	msg := fmt.Sprintf("promote v%s to %s", v, channel)
	commit, err := r.commitFile(parent, *entry, data, msg)
	if err != nil {
		return Promotion{}, fmt.Errorf("commit: %w", err)
	}
	if err := r.push(ctx, parent.Hash, commit); err != nil {
		return Promotion{}, err
	}
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(r.remoteBranch(), commit)); err != nil {
		return Promotion{}, err
	}
	next, err := recipe.ParseFleet(recipe.FleetFile, data)
	if err != nil {
		return Promotion{}, err
	}
	return Promotion{Commit: commit.String(), Parent: parent.Hash.String(), Fleet: next, Message: msg}, nil
}

// commitFile stores a commit on parent whose root tree has data as the
// file of entry, and returns its id.
func (r *Repo) commitFile(parent *object.Commit, entry object.TreeEntry, data []byte, msg string) (plumbing.Hash, error) {
	s := r.repo.Storer
	blob := s.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, err := blob.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	blobHash, err := s.SetEncodedObject(blob)
	if err != nil {
		return plumbing.ZeroHash, err
	}

	tree, err := parent.Tree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	// Same names, same order: only the file's blob changes.
	newTree := &object.Tree{Entries: append([]object.TreeEntry(nil), tree.Entries...)}
	for i := range newTree.Entries {
		if newTree.Entries[i].Name == entry.Name {
			newTree.Entries[i].Hash = blobHash
		}
	}
	treeHash, err := store(s, newTree)
	if err != nil {
		return plumbing.ZeroHash, err
	}

	sig := object.Signature{Name: r.cfg.Author.Name, Email: r.cfg.Author.Email, When: time.Now()}
	c := &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      msg + "\n",
		TreeHash:     treeHash,
		ParentHashes: []plumbing.Hash{parent.Hash},
	}
	return store(s, c)
}

// An encoder is a git object that encodes itself: a tree or a commit.
type encoder interface {
	Encode(plumbing.EncodedObject) error
}

// store encodes o into s.
func store(s storer.EncodedObjectStorer, o encoder) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(obj)
}

// push makes commit, a child of parent, the branch's head on the server,
// provided the head there is still parent. A refusal after which the
// server's head is no longer parent is a lostRaceError.
func (r *Repo) push(ctx context.Context, parent, commit plumbing.Hash) error {
	branch := plumbing.NewBranchReferenceName(r.cfg.Branch)
	// The cache's own branch ref is only ever the source of this push.
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(branch, commit)); err != nil {
		return err
	}
	rem, err := r.repo.Remote(remoteName)
	if err != nil {
		return err
	}
	err = rem.PushContext(ctx, &git.PushOptions{
		RemoteName:        remoteName,
		RefSpecs:          []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", branch, branch))},
		RequireRemoteRefs: []config.RefSpec{config.RefSpec(fmt.Sprintf("%s:%s", parent, branch))},
		Auth:              r.auth,
		CABundle:          r.cfg.Auth.CABundle,
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("push %s: %w", r.cfg.URL, ctx.Err())
	}
	// Whether the push lost a race is for the server's branch to say, not
	// for the wording of the error.
	refs, lerr := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth, CABundle: r.cfg.Auth.CABundle})
	if lerr != nil {
		return fmt.Errorf("push %s: %w", r.cfg.URL, err)
	}
	for _, ref := range refs {
		if ref.Name() == branch && ref.Hash() != parent {
			return &lostRaceError{err: fmt.Errorf("push %s: %w", r.cfg.URL, err)}
		}
	}
	return fmt.Errorf("push %s: %w", r.cfg.URL, err)
}
