package trust

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/gitfleet/gitfleet/firmware/keys"
)

// A Target is one file that targets metadata vouches for: in gitfleet, a
// bundle's signed envelope, named by its object key, with custom metadata
// (version, release counter, device types, Git provenance).
type Target struct {
	Name   string
	Length int64
	SHA256 [sha256.Size]byte
	Custom json.RawMessage
}

// TargetOf describes data as a target called name.
func TargetOf(name string, data []byte, custom json.RawMessage) Target {
	return Target{Name: name, Length: int64(len(data)), SHA256: sha256.Sum256(data), Custom: custom}
}

// A Metadata set is the TUF metadata, besides the root, that a device checks
// for freshness: timestamp (short expiry, names the snapshot), snapshot
// (names the targets version, against mix-and-match), targets (the bundles).
type Metadata struct {
	Timestamp, Snapshot, Targets []byte
}

// SignTargets returns targets metadata of the given version listing
// targets, signed by signers (the targets role).
func SignTargets(version int64, expires time.Time, targets []Target, signers ...*keys.Signer) ([]byte, error) {
	md := metadata.Targets(expires.UTC().Truncate(time.Second))
	md.Signed.Version = version
	for _, t := range targets {
		tf := metadata.TargetFile()
		tf.Length = t.Length
		tf.Hashes = metadata.Hashes{"sha256": t.SHA256[:]}
		if len(t.Custom) > 0 {
			c := t.Custom
			tf.Custom = &c
		}
		md.Signed.Targets[t.Name] = tf
	}
	return signMetadata(md, "targets", signers)
}

// SignSnapshot returns snapshot metadata of the given version that pins
// targets (its version, length and hash), signed by the snapshot role.
func SignSnapshot(version int64, expires time.Time, targets []byte, signers ...*keys.Signer) ([]byte, error) {
	t, err := metadata.Targets().FromBytes(targets)
	if err != nil {
		return nil, fmt.Errorf("snapshot: parse targets: %w", err)
	}
	md := metadata.Snapshot(expires.UTC().Truncate(time.Second))
	md.Signed.Version = version
	md.Signed.Meta["targets.json"] = metaFile(t.Signed.Version, targets)
	return signMetadata(md, "snapshot", signers)
}

// SignTimestamp returns timestamp metadata of the given version that pins
// snapshot, signed by the timestamp role. Its short expiry is what makes a
// frozen server visible: a device refuses metadata past it.
func SignTimestamp(version int64, expires time.Time, snapshot []byte, signers ...*keys.Signer) ([]byte, error) {
	s, err := metadata.Snapshot().FromBytes(snapshot)
	if err != nil {
		return nil, fmt.Errorf("timestamp: parse snapshot: %w", err)
	}
	md := metadata.Timestamp(expires.UTC().Truncate(time.Second))
	md.Signed.Version = version
	md.Signed.Meta["snapshot.json"] = metaFile(s.Signed.Version, snapshot)
	return signMetadata(md, "timestamp", signers)
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	mf := metadata.MetaFile(version)
	sum := sha256.Sum256(data)
	mf.Length = int64(len(data))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}

func signMetadata[T metadata.Roles](md *metadata.Metadata[T], role string, signers []*keys.Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("%s: no signing key", role)
	}
	for _, s := range signers {
		if _, err := md.Sign(s.Signer); err != nil {
			return nil, fmt.Errorf("%s: sign with key %s: %w", role, short(s.ID), err)
		}
	}
	// Compact, so a target's custom JSON keeps the bytes it was given.
	return md.ToBytes(false)
}

// Targets are the targets a fresh, verified metadata set vouches for.
type Targets struct {
	md *metadata.Metadata[metadata.TargetsType]
}

// Version returns the targets metadata version.
func (t *Targets) Version() int64 { return t.md.Signed.Version }

// Check verifies that data is the target called name, byte for byte, and
// returns its custom metadata.
func (t *Targets) Check(name string, data []byte) (json.RawMessage, error) {
	tf, ok := t.md.Signed.Targets[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a target of targets version %d", ErrUntrustedKey, name, t.Version())
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("%w: %s does not match its targets entry: %v", ErrBadSignature, name, err)
	}
	if tf.Custom == nil {
		return nil, nil
	}
	return *tf.Custom, nil
}

// VerifyMetadata checks cur the way TUF's client workflow does: against the
// root reached from pinned through rootUpdates; timestamp, snapshot and
// targets each signed by their role's threshold; snapshot and targets the
// exact versions and bytes the level above names (no mix and match); none
// expired at now (no freeze); and, if prev is the set the device trusted
// before, no version lower than prev's (no rollback). It returns the
// targets.
func VerifyMetadata(pinned []byte, rootUpdates [][]byte, prev *Metadata, cur Metadata, now time.Time) (*Targets, error) {
	tm, err := trustedmetadata.New(pinned)
	if err != nil {
		return nil, fmt.Errorf("pinned root: %w", err)
	}
	tm.RefTime = now.UTC()
	for _, u := range rootUpdates {
		if _, err := tm.UpdateRoot(u); err != nil {
			return nil, fmt.Errorf("root update to version %d: %w", tm.Root.Signed.Version+1, tuf(err))
		}
	}
	if prev != nil {
		// A previously trusted timestamp may have expired since; it is
		// loaded only so the new one cannot be older.
		if _, err := tm.UpdateTimestamp(prev.Timestamp); err != nil && !isExpired(err) {
			return nil, fmt.Errorf("previously trusted timestamp: %w", tuf(err))
		}
	}
	if _, err := tm.UpdateTimestamp(cur.Timestamp); err != nil {
		var equal *metadata.ErrEqualVersionNumber
		if !errors.As(err, &equal) {
			return nil, fmt.Errorf("timestamp: %w", tuf(err))
		}
	}
	if tm.Timestamp == nil {
		return nil, fmt.Errorf("timestamp: none trusted")
	}
	if tm.Timestamp.Signed.IsExpired(tm.RefTime) {
		return nil, fmt.Errorf("%w: timestamp version %d expired at %s", ErrExpired, tm.Timestamp.Signed.Version, tm.Timestamp.Signed.Expires.Format(time.RFC3339))
	}
	snap, err := tm.UpdateSnapshot(cur.Snapshot, false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", tuf(err))
	}
	if prev != nil {
		// The timestamp check above keeps snapshot versions from going
		// back; this keeps the targets version it names from going back.
		// (go-tuf's trusted set checks it only against a snapshot loaded in
		// the same session, which the previous one cannot be once the
		// timestamp names a newer snapshot.)
		old, err := metadata.Snapshot().FromBytes(prev.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("previously trusted snapshot: %w", err)
		}
		if was, is := old.Signed.Meta["targets.json"], snap.Signed.Meta["targets.json"]; was != nil && is != nil && is.Version < was.Version {
			return nil, fmt.Errorf("%w: snapshot names targets version %d, the device trusted %d", ErrRollback, is.Version, was.Version)
		}
	}
	t, err := tm.UpdateTargets(cur.Targets)
	if err != nil {
		return nil, fmt.Errorf("targets: %w", tuf(err))
	}
	return &Targets{md: t}, nil
}

func isExpired(err error) bool {
	var e *metadata.ErrExpiredMetadata
	return errors.As(err, &e)
}

// tuf maps go-tuf's errors to this package's sentinels, keeping the message.
func tuf(err error) error {
	var (
		expired  *metadata.ErrExpiredMetadata
		unsigned *metadata.ErrUnsignedMetadata
		version  *metadata.ErrBadVersionNumber
		length   *metadata.ErrLengthOrHashMismatch
	)
	switch {
	case errors.As(err, &expired):
		return fmt.Errorf("%w: %v", ErrExpired, err)
	case errors.As(err, &unsigned):
		return fmt.Errorf("%w: %v", ErrThreshold, err)
	case errors.As(err, &version):
		return fmt.Errorf("%w: %v", ErrRollback, err)
	case errors.As(err, &length):
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return err
}

// ErrRollback: metadata older than what the device already trusted.
var ErrRollback = errors.New("metadata rollback")
