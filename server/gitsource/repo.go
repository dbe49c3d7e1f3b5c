package gitsource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// DefaultBranch is the branch fleet.yaml lives on when Config.Branch is
// empty.
const DefaultBranch = "main"

// remoteName is the name of the one remote of a cache.
const remoteName = "origin"

// Config says which repository to watch and how.
type Config struct {
	// URL is the firmware repository: file://, git://, http://, https://
	// or ssh:// (also user@host:path).
	URL string
	// Branch is the branch that holds fleet.yaml; DefaultBranch when empty.
	Branch string
	// Dir is the cache: a bare repository that Open creates if needed and
	// that only this package writes to.
	Dir string
	// Auth is how to authenticate to the repository's server.
	Auth Auth
	// Policy says which tag signatures Verify accepts; nil accepts any tag,
	// signed or not.
	Policy *Policy
	// Author is the author and committer of promotion commits; the zero
	// value is "gitfleet <gitfleet@localhost>".
	Author Author
}

// Author names who made a commit.
type Author struct {
	Name, Email string
}

// Auth holds credentials for the repository's server. Which fields apply
// depends on the URL's scheme.
type Auth struct {
	// Username and Password are HTTP basic credentials; a token goes in
	// Password (with any non-empty Username).
	Username, Password string
	// CABundle is PEM certificates to trust for https://, besides the
	// system's.
	CABundle []byte

	// SSHKey is a PEM private key for ssh:// URLs, decrypted with
	// SSHKeyPassphrase if it is encrypted. SSHUser defaults to the URL's
	// user, then "git".
	SSHKey           []byte
	SSHKeyPassphrase string
	SSHUser          string
	// KnownHosts is a known_hosts file that must list the server's host
	// key; HostKeyCallback, when set, checks the key instead. An ssh://
	// URL needs one of them: there is no trust on first use.
	KnownHosts      string
	HostKeyCallback ssh.HostKeyCallback
}

// A Repo is a watched firmware repository and its local cache. Its methods
// are safe for concurrent use; they run one at a time.
type Repo struct {
	cfg  Config
	auth transport.AuthMethod

	mu   sync.Mutex // serialises use of the cache
	repo *git.Repository
}

// Open opens the cache in cfg.Dir, creating a bare repository there if
// there is none, and checks cfg. It does not contact the server: Fetch
// does.
func Open(cfg Config) (*Repo, error) {
	if cfg.Branch == "" {
		cfg.Branch = DefaultBranch
	}
	if cfg.Author == (Author{}) {
		cfg.Author = Author{Name: "gitfleet", Email: "gitfleet@localhost"}
	}
	if cfg.Dir == "" {
		return nil, errors.New("open repository cache: no directory configured")
	}
	if plumbing.NewBranchReferenceName(cfg.Branch).Validate() != nil {
		return nil, fmt.Errorf("open repository cache: branch %q is not a valid branch name", cfg.Branch)
	}
	auth, err := authMethod(cfg)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", cfg.URL, err)
	}
	repo, err := git.PlainOpen(cfg.Dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = initCache(cfg.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository cache %s: %w", cfg.Dir, err)
	}
	if err := setRemote(repo, cfg.URL); err != nil {
		return nil, fmt.Errorf("open repository cache %s: %w", cfg.Dir, err)
	}
	return &Repo{cfg: cfg, auth: auth, repo: repo}, nil
}

// initCache creates a bare repository in dir, which must be empty or absent:
// the cache is never mixed with other files.
func initCache(dir string) (*git.Repository, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("directory is neither empty nor a git repository")
	}
	return git.PlainInit(dir, true)
}

// setRemote points the cache's remote at url, so that a repository moved
// in the configuration is fetched from its new place.
func setRemote(repo *git.Repository, url string) error {
	rem, err := repo.Remote(remoteName)
	switch {
	case err == nil && slices.Equal(rem.Config().URLs, []string{url}):
		return nil
	case err == nil:
		if err := repo.DeleteRemote(remoteName); err != nil {
			return err
		}
	case !errors.Is(err, git.ErrRemoteNotFound):
		return err
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{url}})
	return err
}

// authMethod returns go-git's authentication for cfg's URL.
func authMethod(cfg Config) (transport.AuthMethod, error) {
	if cfg.URL == "" {
		return nil, errors.New("no URL configured")
	}
	ep, err := transport.NewEndpoint(cfg.URL)
	if err != nil {
		return nil, err
	}
	a := cfg.Auth
	switch ep.Protocol {
	case "file", "git":
		return nil, nil
	case "http", "https":
		if a.Username == "" && a.Password == "" {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: a.Username, Password: a.Password}, nil
	case "ssh":
		if a.SSHKey == nil {
			return nil, errors.New("ssh: no private key configured")
		}
		user := a.SSHUser
		if user == "" {
			user = ep.User
		}
		if user == "" {
			user = gitssh.DefaultUsername
		}
		keys, err := gitssh.NewPublicKeys(user, a.SSHKey, a.SSHKeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh private key: %w", err)
		}
		switch {
		case a.HostKeyCallback != nil:
			keys.HostKeyCallback = a.HostKeyCallback
		case a.KnownHosts != "":
			cb, err := gitssh.NewKnownHostsCallback(a.KnownHosts)
			if err != nil {
				return nil, fmt.Errorf("ssh known hosts: %w", err)
			}
			keys.HostKeyCallback = cb
		default:
			return nil, errors.New("ssh: no known_hosts file or host key callback configured")
		}
		return keys, nil
	}
	return nil, fmt.Errorf("unsupported scheme %q", ep.Protocol)
}

// Branch returns the branch that holds fleet.yaml.
func (r *Repo) Branch() string { return r.cfg.Branch }

// remoteBranch is where the cache keeps the server's branch.
func (r *Repo) remoteBranch() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, r.cfg.Branch)
}

// Fetch brings the cache up to date with the server's tags and branch.
// It first lists the server's references, which is all a poll with nothing
// new costs, and fetches only when they differ from the cache's. Tags
// deleted on the server are deleted from the cache; moved tags are moved.
func (r *Repo) Fetch(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fetch(ctx); err != nil {
		return fmt.Errorf("fetch %s: %w", r.cfg.URL, err)
	}
	return nil
}

func (r *Repo) fetch(ctx context.Context) error {
	rem, err := r.repo.Remote(remoteName)
	if err != nil {
		return err
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth, CABundle: r.cfg.Auth.CABundle})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		refs, err = nil, nil
	}
	if err != nil {
		return err
	}
	remoteTags := make(map[plumbing.ReferenceName]plumbing.Hash)
	var head plumbing.Hash
	for _, ref := range refs {
		switch name := ref.Name(); {
		case ref.Type() != plumbing.HashReference:
		case name.IsTag():
			remoteTags[name] = ref.Hash()
		case name == plumbing.NewBranchReferenceName(r.cfg.Branch):
			head = ref.Hash()
		}
	}
	upToDate, err := r.matches(remoteTags, head)
	if err != nil || upToDate {
		return err
	}

	specs := []config.RefSpec{"+refs/tags/*:refs/tags/*"}
	if !head.IsZero() {
		specs = append(specs, config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", r.cfg.Branch, r.remoteBranch())))
	}
	if len(refs) > 0 {
		err = rem.FetchContext(ctx, &git.FetchOptions{
			RefSpecs: specs,
			Auth:     r.auth,
			CABundle: r.cfg.Auth.CABundle,
			Tags:     git.NoTags,
			Force:    true,
			Prune:    true,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return err
		}
	}
	// Prune keeps tags in step; the branch and, when the server has no
	// references at all, the tags are the cache's to drop.
	if head.IsZero() {
		if err := r.repo.Storer.RemoveReference(r.remoteBranch()); err != nil {
			return err
		}
	}
	if len(refs) == 0 {
		for name := range r.localTags() {
			if err := r.repo.Storer.RemoveReference(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// matches reports whether the cache already has exactly the server's tags
// and branch head, with their objects.
func (r *Repo) matches(remoteTags map[plumbing.ReferenceName]plumbing.Hash, head plumbing.Hash) (bool, error) {
	local := r.localTags()
	if len(local) != len(remoteTags) {
		return false, nil
	}
	for name, h := range remoteTags {
		if local[name] != h {
			return false, nil
		}
	}
	ref, err := r.repo.Storer.Reference(r.remoteBranch())
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		return head.IsZero(), nil
	case err != nil:
		return false, err
	}
	return ref.Hash() == head, nil
}

// localTags returns the cache's tags; an unreadable reference is left out,
// which makes Fetch fetch again.
func (r *Repo) localTags() map[plumbing.ReferenceName]plumbing.Hash {
	out := make(map[plumbing.ReferenceName]plumbing.Hash)
	iter, err := r.repo.Tags()
	if err != nil {
		return out
	}
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		out[ref.Name()] = ref.Hash()
		return nil
	})
	return out
}
