package trust

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/gitfleet/gitfleet/firmware/keys"
)

// The TUF roles. Targets signs bundles.
const (
	RoleRoot      = metadata.ROOT
	RoleTargets   = metadata.TARGETS
	RoleSnapshot  = metadata.SNAPSHOT
	RoleTimestamp = metadata.TIMESTAMP
)

var roles = []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp}

// A RoleKeys names the keys of one role and how many of them must sign.
type RoleKeys struct {
	Keys      []crypto.PublicKey
	Threshold int
}

// A RootSpec describes a root: every role's keys, and when it expires.
type RootSpec struct {
	Roles   map[string]RoleKeys
	Expires time.Time
}

// NewRoot returns the first root (version 1) of a new trust chain, signed by
// signers, in TUF's JSON encoding. It fails unless the signers meet the
// root role's threshold, so a root that no device would accept is never
// written.
func NewRoot(spec RootSpec, signers ...*keys.Signer) ([]byte, error) {
	root, err := buildRoot(spec, 1)
	if err != nil {
		return nil, err
	}
	data, err := signRoot(root, signers)
	if err != nil {
		return nil, err
	}
	if _, err := trustedmetadata.New(data); err != nil {
		return nil, fmt.Errorf("new root: not signed by a threshold of its own root keys: %w", err)
	}
	return data, nil
}

// Rotate returns the root that follows prev: spec's keys, version one more.
// signers must include a threshold of prev's root keys and a threshold of the
// new root keys (TUF's rule for a root update), which Rotate checks by
// verifying the new root against prev before returning it.
func Rotate(prev []byte, spec RootSpec, signers ...*keys.Signer) ([]byte, error) {
	old, err := metadata.Root().FromBytes(prev)
	if err != nil {
		return nil, fmt.Errorf("rotate root: parse previous root: %w", err)
	}
	root, err := buildRoot(spec, old.Signed.Version+1)
	if err != nil {
		return nil, err
	}
	data, err := signRoot(root, signers)
	if err != nil {
		return nil, err
	}
	if _, err := LoadRoot(prev, data); err != nil {
		return nil, fmt.Errorf("rotate root: %w", err)
	}
	return data, nil
}

func buildRoot(spec RootSpec, version int64) (*metadata.Metadata[metadata.RootType], error) {
	if spec.Expires.IsZero() {
		return nil, errors.New("root: no expiry given")
	}
	root := metadata.Root(spec.Expires.UTC().Truncate(time.Second))
	root.Signed.Version = version
	for _, role := range roles {
		rk, ok := spec.Roles[role]
		if !ok || len(rk.Keys) == 0 {
			return nil, fmt.Errorf("root: role %s has no keys", role)
		}
		for _, pub := range rk.Keys {
			if _, err := keys.ID(pub); err != nil {
				return nil, fmt.Errorf("root: role %s: %w", role, err)
			}
			k, err := metadata.KeyFromPublicKey(pub)
			if err != nil {
				return nil, fmt.Errorf("root: role %s: %w", role, err)
			}
			if err := root.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("root: role %s: %w", role, err)
			}
		}
		n := len(root.Signed.Roles[role].KeyIDs)
		if rk.Threshold < 1 || rk.Threshold > n {
			return nil, fmt.Errorf("root: role %s: threshold %d with %d distinct keys", role, rk.Threshold, n)
		}
		root.Signed.Roles[role].Threshold = rk.Threshold
	}
	return root, nil
}

func signRoot(root *metadata.Metadata[metadata.RootType], signers []*keys.Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("root: no signing key")
	}
	for _, s := range signers {
		if _, err := root.Sign(s.Signer); err != nil {
			return nil, fmt.Errorf("root: sign with key %s: %w", short(s.ID), err)
		}
	}
	return root.ToBytes(true)
}

// A Root is a root verified from a pinned root through a chain of updates.
type Root struct {
	md *metadata.Metadata[metadata.RootType]
	// Now returns the current time for expiry checks; nil means time.Now.
	Now func() time.Time
}

// LoadRoot verifies pinned (a root the device trusts, e.g. from its image)
// by its own signatures, then each update in turn: an update must have the
// next version number and be signed by a threshold of the previous root's
// root keys and of its own. It returns the last root. Expiry is not checked
// here (an intermediate root may have expired, as TUF allows); Verifier
// checks it.
func LoadRoot(pinned []byte, updates ...[]byte) (*Root, error) {
	tm, err := trustedmetadata.New(pinned)
	if err != nil {
		return nil, fmt.Errorf("pinned root: %w", err)
	}
	for _, u := range updates {
		if _, err := tm.UpdateRoot(u); err != nil {
			return nil, fmt.Errorf("root update to version %d: %w", tm.Root.Signed.Version+1, err)
		}
	}
	return &Root{md: tm.Root}, nil
}

// Version returns the root's version number.
func (r *Root) Version() int64 { return r.md.Signed.Version }

// Expires returns when the root stops vouching for its keys.
func (r *Root) Expires() time.Time { return r.md.Signed.Expires }

// Metadata returns the underlying TUF root metadata.
func (r *Root) Metadata() *metadata.Metadata[metadata.RootType] { return r.md }

// Verifier returns the policy of role: its keys and threshold, valid until
// the root expires.
func (r *Root) Verifier(role string) (*Verifier, error) {
	rl, ok := r.md.Signed.Roles[role]
	if !ok {
		return nil, fmt.Errorf("root version %d has no role %q", r.Version(), role)
	}
	pubs := make([]any, 0, len(rl.KeyIDs))
	for _, id := range rl.KeyIDs {
		k, ok := r.md.Signed.Keys[id]
		if !ok {
			return nil, fmt.Errorf("root version %d: %s key %s is not listed", r.Version(), role, short(id))
		}
		pub, err := k.ToPublicKey()
		if err != nil {
			return nil, fmt.Errorf("root version %d: %s key %s: %w", r.Version(), role, short(id), err)
		}
		pubs = append(pubs, pub)
	}
	v, err := NewVerifier(role, rl.Threshold, pubs...)
	if err != nil {
		return nil, fmt.Errorf("root version %d: %w", r.Version(), err)
	}
	v.Expires = r.Expires()
	v.Now = r.Now
	return v, nil
}

// RoleKeyIDs returns the key ids of role, sorted.
func (r *Root) RoleKeyIDs(role string) []string {
	rl, ok := r.md.Signed.Roles[role]
	if !ok {
		return nil
	}
	ids := slices.Clone(rl.KeyIDs)
	slices.Sort(ids)
	return ids
}
