// Package bundletest makes signing keys, trust roots and bundles for tests,
// the way httptest makes servers: real keys, real signatures, temp files.
package bundletest

import (
	"bytes"
	"context"
	"crypto"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// Key generates a key of alg and returns its signer.
func Key(t testing.TB, alg keys.Algorithm) *keys.Signer {
	t.Helper()
	p, err := keys.Generate(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(path, p.PrivatePEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := keys.LoadSigner(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A Trust is a root and the signers of its roles.
type Trust struct {
	RootJSON []byte
	Root     []*keys.Signer
	Targets  []*keys.Signer
	Snapshot *keys.Signer
	Time     *keys.Signer
}

// NewTrust makes a root whose root and targets roles have n keys each with
// threshold k, expiring at expires.
func NewTrust(t testing.TB, n, k int, expires time.Time) *Trust {
	t.Helper()
	tr := &Trust{Snapshot: Key(t, keys.Ed25519), Time: Key(t, keys.Ed25519)}
	for i := range n {
		alg := keys.Ed25519
		if i%2 == 1 {
			alg = keys.ECDSAP256
		}
		tr.Root = append(tr.Root, Key(t, alg))
		tr.Targets = append(tr.Targets, Key(t, alg))
	}
	spec := trust.RootSpec{Expires: expires, Roles: map[string]trust.RoleKeys{
		trust.RoleRoot:      {Keys: Publics(tr.Root), Threshold: k},
		trust.RoleTargets:   {Keys: Publics(tr.Targets), Threshold: k},
		trust.RoleSnapshot:  {Keys: Publics([]*keys.Signer{tr.Snapshot}), Threshold: 1},
		trust.RoleTimestamp: {Keys: Publics([]*keys.Signer{tr.Time}), Threshold: 1},
	}}
	var err error
	if tr.RootJSON, err = trust.NewRoot(spec, tr.Root[:k]...); err != nil {
		t.Fatal(err)
	}
	return tr
}

// Verifier returns the targets policy of the trust's root, as a device
// that pins it would.
func (tr *Trust) Verifier(t testing.TB) *trust.Verifier {
	t.Helper()
	root, err := trust.LoadRoot(tr.RootJSON)
	if err != nil {
		t.Fatal(err)
	}
	v, err := root.Verifier(trust.RoleTargets)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Publics returns the public keys of signers.
func Publics(signers []*keys.Signer) []crypto.PublicKey {
	pubs := make([]crypto.PublicKey, len(signers))
	for i, s := range signers {
		pubs[i] = s.Public
	}
	return pubs
}

// Image writes size pseudo-random bytes from seed to a temp file and
// returns its path.
func Image(t testing.TB, size int64, seed uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	return path
}

// Release returns a valid release description for tests.
func Release() bundle.Release {
	return bundle.Release{
		Product:     "acme-gateway",
		Version:     "1.4.0",
		Counter:     14,
		DeviceTypes: []string{"acme-gw-v2", "acme-gw-v3"},
		Created:     time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		ChunkSize:   bundle.MinChunkSize,
		Provenance: &bundle.Provenance{
			Repository: "https://git.example.com/acme/firmware.git",
			Tag:        "v1.4.0",
			TagObject:  "5b0e0f3c6b8f0b3f8f4c2f1e0d9c8b7a6f5e4d3c",
			Commit:     "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e",
			Signer:     "release@example.com",
		},
	}
}

// Bundle creates a bundle of images signed by signers and returns its bytes
// and manifest.
func Bundle(t testing.TB, rel bundle.Release, images []bundle.ImageFile, signers ...*keys.Signer) ([]byte, *bundle.Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := bundle.Create(context.Background(), &buf, rel, images, trust.Sealer(signers), nil)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}
