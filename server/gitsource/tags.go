package gitsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/internal/atomicfile"
)

// maxTagDepth bounds how many tags of tags Tags follows to reach a commit.
const maxTagDepth = 8

// A Tag is a release tag of the repository: a tag named "v" and a semantic
// version, such as v1.4.0 or v1.5.0-rc.1. Tags with other names are not
// releases and are ignored.
type Tag struct {
	// Name is the tag's name, "v1.4.0".
	Name string
	// Version is the version it names, "1.4.0", as in bundle manifests.
	Version string
	// Object is what the tag reference points to: the annotated tag
	// object, or the commit for a lightweight tag. A tag that moves
	// changes Object.
	Object string
	// Annotated tells an annotated tag (which can carry a signature) from
	// a lightweight one.
	Annotated bool
	// Commit is the commit the tag names, "" if it names something else
	// (a tree or a blob), which cannot be built.
	Commit string
	// CommitTime is the commit's committer time.
	CommitTime time.Time
}

// Tags returns the release tags in the cache, as of the last Fetch, in
// semantic version order.
func (r *Repo) Tags() ([]Tag, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Tag
	for name, h := range r.localTags() {
		t, ok, err := r.tag(name.Short(), h)
		if err != nil {
			return nil, fmt.Errorf("read tag %s: %w", name.Short(), err)
		}
		if ok {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Tag) int {
		if c := bundle.CompareVersions(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name) // v1.0.0+a and v1.0.0+b
	})
	return out, nil
}

// tag describes the tag name pointing at h; ok is false when the name is
// not a release tag.
func (r *Repo) tag(name string, h plumbing.Hash) (t Tag, ok bool, err error) {
	version, ok := strings.CutPrefix(name, "v")
	if !ok || bundle.CheckVersion(version) != nil {
		return Tag{}, false, nil
	}
	t = Tag{Name: name, Version: version, Object: h.String()}
	target, typ := h, plumbing.CommitObject
	if to, err := object.GetTag(r.repo.Storer, h); err == nil {
		t.Annotated = true
		target, typ = to.Target, to.TargetType
		for i := 0; typ == plumbing.TagObject; i++ {
			if i == maxTagDepth {
				return t, true, nil
			}
			if to, err = object.GetTag(r.repo.Storer, target); err != nil {
				return Tag{}, false, err
			}
			target, typ = to.Target, to.TargetType
		}
	} else if !errors.Is(err, plumbing.ErrObjectNotFound) && !errors.Is(err, plumbing.ErrInvalidType) {
		return Tag{}, false, err
	}
	if typ != plumbing.CommitObject {
		return t, true, nil
	}
	c, err := object.GetCommit(r.repo.Storer, target)
	if errors.Is(err, plumbing.ErrInvalidType) {
		return t, true, nil // a lightweight tag of a tree or blob
	}
	if err != nil {
		return Tag{}, false, err
	}
	t.Commit, t.CommitTime = c.Hash.String(), c.Committer.When
	return t, true, nil
}

// State is what a watcher has seen of a repository's release tags, kept
// between polls (and restarts) by its caller: see LoadState and Save. The
// zero State has seen nothing.
type State struct {
	Tags map[string]SeenTag `json:"tags"`
	// Head is the branch's head commit at the last poll, "" if there was
	// no branch.
	Head string `json:"head,omitempty"`
}

// SeenTag is what State remembers of one tag.
type SeenTag struct {
	// Object is the tag's object when it was first seen: the release that
	// was (or will be) built. It never changes by itself.
	Object string `json:"object"`
	// Moved is the other object the tag was last reported moved to.
	Moved string `json:"moved,omitempty"`
	// Deleted is set once the tag's deletion was reported.
	Deleted bool `json:"deleted,omitempty"`
}

// Changes are what a poll found different from the State it started from.
type Changes struct {
	// New are tags never seen before: releases to verify and build.
	New []Tag
	// Moved are tags that now point elsewhere than when first seen. A moved
	// release tag is never rebuilt on its own: someone rewrote a release,
	// and an operator must look. Each move is reported once.
	Moved []Move
	// Deleted are tags that disappeared, reported once.
	Deleted []Deletion
	// Head is the branch's new head commit when it moved, so fleet.yaml may
	// have changed (see Repo.Fleet); "" when it did not move.
	Head string
}

// A Move is a tag found pointing elsewhere than when it was first seen.
type Move struct {
	Tag Tag
	// Was is the object the tag pointed to when first seen.
	Was string
}

// A Deletion is a tag that is gone from the repository.
type Deletion struct {
	Name string
	// Was is the object the tag pointed to when first seen.
	Was string
}

// Empty reports whether there are no changes.
func (c Changes) Empty() bool {
	return len(c.New) == 0 && len(c.Moved) == 0 && len(c.Deleted) == 0 && c.Head == ""
}

// Diff compares the tags a poll found with prev and returns what changed
// and the State to keep for the next poll, whose Head is prev's (Poll
// looks after heads). It does not modify prev.
//
// The next State remembers every tag ever seen by its first object, also
// after it is deleted, so that a tag deleted and then pushed again
// elsewhere is a move, not a new release. A tag that comes back to its
// first object is quietly restored. To accept a moved tag as a new release,
// an operator calls Forget.
func Diff(prev State, tags []Tag) (Changes, State) {
	var ch Changes
	next := State{Tags: maps.Clone(prev.Tags), Head: prev.Head}
	if next.Tags == nil {
		next.Tags = make(map[string]SeenTag)
	}
	present := make(map[string]bool, len(tags))
	for _, t := range tags {
		present[t.Name] = true
		seen, ok := prev.Tags[t.Name]
		switch {
		case !ok:
			ch.New = append(ch.New, t)
			next.Tags[t.Name] = SeenTag{Object: t.Object}
		case t.Object == seen.Object:
			next.Tags[t.Name] = SeenTag{Object: seen.Object}
		case t.Object != seen.Moved || seen.Deleted:
			ch.Moved = append(ch.Moved, Move{Tag: t, Was: seen.Object})
			next.Tags[t.Name] = SeenTag{Object: seen.Object, Moved: t.Object}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev.Tags)) {
		seen := prev.Tags[name]
		if present[name] || seen.Deleted {
			continue
		}
		ch.Deleted = append(ch.Deleted, Deletion{Name: name, Was: seen.Object})
		seen.Deleted = true
		next.Tags[name] = seen
	}
	return ch, next
}

// Forget makes s forget the tag name, so that the next poll reports it as
// new wherever it points: how an operator accepts a moved tag.
func (s State) Forget(name string) {
	delete(s.Tags, name)
}

// LoadState reads a State that Save wrote; a missing file is the zero
// State.
func LoadState(path string) (State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("load tag state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("load tag state %s: %w", path, err)
	}
	return s, nil
}

// Save writes s to path so that a power cut leaves either the old state or
// the new.
func (s State) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save tag state: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save tag state: %w", err)
	}
	return nil
}
