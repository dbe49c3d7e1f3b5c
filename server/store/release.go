package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrClaimLost is returned by FinishBuild when the owner no longer holds the
// tag's build claim: its lease ran out and another replica claimed the tag,
// or the build already finished. The caller's build result must be dropped.
var ErrClaimLost = errors.New("build claim lost")

// BuildState is where the build of a release's tag stands.
type BuildState string

const (
	// Building means a replica holds the build claim, or held it and its
	// lease ran out, in which case another may claim it.
	Building BuildState = "building"
	// Succeeded means the bundle was built, signed and uploaded: the release
	// is complete.
	Succeeded BuildState = "succeeded"
	// Failed means the build failed; BuildError and BuildLog say why. No
	// replica claims the tag again.
	Failed BuildState = "failed"
)

// Release is a signed Git tag and the bundle built from it. Until its build
// succeeded only Tag and the Build fields are set.
type Release struct {
	Tag string
	// Version is the release's semantic version, unique among releases.
	Version string
	// Counter is the release counter that anti-rollback compares.
	Counter      int64
	Product      string
	DeviceTypes  []string
	BundleDigest string
	BundleSize   int64
	// TagObject is the id of the annotated tag object; Commit the commit it
	// points at; Signer the key that signed the tag.
	TagObject string
	Commit    string
	Signer    string
	// ObjectKeys maps what each stored object is ("bundle", "targets" ...) to
	// its key in object storage.
	ObjectKeys map[string]string

	BuildState BuildState
	// BuildOwner is the replica that claimed the build; BuildLeaseUntil is
	// when its claim runs out unless renewed.
	BuildOwner      string
	BuildLeaseUntil time.Time
	// BuildLog is where the build's log is kept (an object key); BuildError
	// is one line saying why a failed build failed.
	BuildLog   string
	BuildError string
	// Created is when the tag was first claimed; Finished when its build
	// finished.
	Created  time.Time
	Finished time.Time
}

// claimBuild inserts the tag's row, or takes over its claim if the claim is
// the owner's own (a renewal) or has run out. A finished build is never
// claimed again. The WHERE is evaluated on the latest row under its lock on
// both engines, so of replicas racing on a tag exactly one changes a row.
const claimBuild = `INSERT INTO releases (tag, build_state, build_owner, build_lease_until, created_at)
VALUES (?, 'building', ?, ?, ?)
ON CONFLICT (tag) DO UPDATE SET build_owner = excluded.build_owner, build_lease_until = excluded.build_lease_until
WHERE releases.build_state = 'building'
	AND (releases.build_owner = excluded.build_owner OR releases.build_lease_until <= ?)`

// ClaimBuild claims the build of tag for owner (a name unique to the calling
// replica) for lease, and reports whether owner got it. Of replicas claiming a
// tag at once, exactly one gets it. The owner renews its claim by claiming
// again before the lease runs out; once it has run out, another replica may
// claim the tag, so a replica that dies mid-build does not block the tag
// forever. A tag whose build finished, succeeded or failed, is not claimed
// again. Replicas' clocks must agree to well within lease.
func (s *Store) ClaimBuild(ctx context.Context, tag, owner string, lease time.Duration) (bool, error) {
	if tag == "" || owner == "" || lease <= 0 {
		return false, fmt.Errorf("claim build of %q for %q: tag, owner and a positive lease are required", tag, owner)
	}
	now := s.now()
	n, err := s.writer().update(ctx, claimBuild, tag, owner, micros(now.Add(lease)), micros(now), micros(now))
	if err != nil {
		return false, fmt.Errorf("claim build of %s: %w", tag, err)
	}
	return n == 1, nil
}

const renewBuild = `UPDATE releases SET build_lease_until = ?
WHERE tag = ? AND build_owner = ? AND build_state = 'building'`

// RenewBuild extends owner's claim of tag's build to lease from now, as the
// builder does while it builds so that no replica takes over a build whose
// owner is alive. It returns ErrClaimLost if owner no longer holds the claim
// (another replica took it over, or the build finished); a claim whose lease
// ran out but that no one took over is still owner's.
func (s *Store) RenewBuild(ctx context.Context, tag, owner string, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("renew build claim of %s: the lease must be positive", tag)
	}
	return s.leaseBuild(ctx, "renew", tag, owner, s.now().Add(lease))
}

// AbandonBuild ends owner's claim of tag's build now, unfinished: a replica
// shutting down mid-build hands the build over at once (StaleBuilds lists
// it) instead of holding it until its lease runs out. It returns
// ErrClaimLost as RenewBuild does.
func (s *Store) AbandonBuild(ctx context.Context, tag, owner string) error {
	return s.leaseBuild(ctx, "abandon", tag, owner, s.now())
}

// leaseBuild sets the lease of owner's unfinished claim of tag to until.
func (s *Store) leaseBuild(ctx context.Context, what, tag, owner string, until time.Time) error {
	n, err := s.writer().update(ctx, renewBuild, micros(until), tag, owner)
	if err == nil && n == 0 {
		err = ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("%s build claim of %s by %s: %w", what, tag, owner, err)
	}
	return nil
}

// StaleBuilds returns the builds whose claim's lease ran out unrenewed: their
// owner died or stopped mid-build. Any replica may claim them again
// (ClaimBuild), whatever their owner's name. Oldest claim first.
func (s *Store) StaleBuilds(ctx context.Context) ([]Release, error) {
	rs, err := queryAll(ctx, s.reader(), scanRelease,
		"SELECT "+releaseColumns+" FROM releases WHERE build_state = 'building' AND build_lease_until <= ? ORDER BY created_at, tag",
		micros(s.now()))
	if err != nil {
		return nil, fmt.Errorf("list stale builds: %w", err)
	}
	return rs, nil
}

const finishBuild = `UPDATE releases SET version = ?, counter = ?, product = ?, device_types = ?,
	bundle_digest = ?, bundle_size = ?, tag_object = ?, commit_id = ?, signer = ?, object_keys = ?,
	build_state = ?, build_log = ?, build_error = ?, finished_at = ?
WHERE tag = ? AND build_owner = ? AND build_state = 'building'`

// FinishBuild records the end of r.Tag's build, which owner claimed: with
// r.BuildState Succeeded it records the release r describes, with Failed the
// failure (r.BuildError, r.BuildLog). It returns ErrClaimLost if owner no
// longer holds the claim. The Build owner, lease and the Created and
// Finished times of r are ignored.
func (s *Store) FinishBuild(ctx context.Context, owner string, r Release) error {
	version := sql.NullString{String: r.Version, Valid: r.Version != ""}
	switch r.BuildState {
	case Succeeded:
		if r.Version == "" {
			return fmt.Errorf("finish build of %s: a succeeded build needs a version", r.Tag)
		}
	case Failed:
	default:
		return fmt.Errorf("finish build of %s: state %q is not %q or %q", r.Tag, r.BuildState, Succeeded, Failed)
	}
	types, err := jsonText(nonNil(r.DeviceTypes))
	if err != nil {
		return fmt.Errorf("finish build of %s: %w", r.Tag, err)
	}
	keys := r.ObjectKeys
	if keys == nil {
		keys = map[string]string{}
	}
	objects, err := jsonText(keys)
	if err != nil {
		return fmt.Errorf("finish build of %s: %w", r.Tag, err)
	}
	n, err := s.writer().update(ctx, finishBuild,
		version, r.Counter, r.Product, types, r.BundleDigest, r.BundleSize, r.TagObject, r.Commit, r.Signer, objects,
		string(r.BuildState), r.BuildLog, r.BuildError, micros(s.now()),
		r.Tag, owner)
	if err == nil && n == 0 {
		err = ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("finish build of %s by %s: %w", r.Tag, owner, err)
	}
	return nil
}

const releaseColumns = `tag, COALESCE(version, ''), counter, product, device_types, bundle_digest, bundle_size,
	tag_object, commit_id, signer, object_keys, build_state, build_owner, build_lease_until,
	build_log, build_error, created_at, finished_at`

// Release returns the release with version, or ErrNotFound.
func (s *Store) Release(ctx context.Context, version string) (Release, error) {
	row := s.reader().queryRow(ctx, "SELECT "+releaseColumns+" FROM releases WHERE version = ?", version)
	r, err := scanRelease(row)
	if err != nil {
		return Release{}, fmt.Errorf("read release %s: %w", version, notFound(err))
	}
	return r, nil
}

// ReleaseByTag returns the release of tag, whatever its build state, or
// ErrNotFound if no replica ever claimed the tag.
func (s *Store) ReleaseByTag(ctx context.Context, tag string) (Release, error) {
	row := s.reader().queryRow(ctx, "SELECT "+releaseColumns+" FROM releases WHERE tag = ?", tag)
	r, err := scanRelease(row)
	if err != nil {
		return Release{}, fmt.Errorf("read release of tag %s: %w", tag, notFound(err))
	}
	return r, nil
}

// Releases returns every release, newest claim first, builds in progress and
// failed ones included.
func (s *Store) Releases(ctx context.Context) ([]Release, error) {
	rs, err := queryAll(ctx, s.reader(), scanRelease,
		"SELECT "+releaseColumns+" FROM releases ORDER BY created_at DESC, tag DESC")
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	return rs, nil
}

// scanRelease reads releaseColumns.
func scanRelease(sc scanner) (Release, error) {
	var r Release
	var types, objects, state string
	var lease, created, finished int64
	err := sc.Scan(&r.Tag, &r.Version, &r.Counter, &r.Product, &types, &r.BundleDigest, &r.BundleSize,
		&r.TagObject, &r.Commit, &r.Signer, &objects, &state, &r.BuildOwner, &lease,
		&r.BuildLog, &r.BuildError, &created, &finished)
	if err != nil {
		return Release{}, err
	}
	if err := json.Unmarshal([]byte(types), &r.DeviceTypes); err != nil {
		return Release{}, fmt.Errorf("decode device types of %s: %w", r.Tag, err)
	}
	if err := json.Unmarshal([]byte(objects), &r.ObjectKeys); err != nil {
		return Release{}, fmt.Errorf("decode object keys of %s: %w", r.Tag, err)
	}
	r.BuildState = BuildState(state)
	r.BuildLeaseUntil = fromMicros(lease)
	r.Created = fromMicros(created)
	r.Finished = fromMicros(finished)
	return r, nil
}

// nonNil returns s, or an empty slice for nil, so that JSON holds [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
