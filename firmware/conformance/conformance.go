// Package conformance checks that a bundle is exactly what the format
// specifies (firmware/bundle/FORMAT.md), beyond what an installer needs to
// trust it. Every writer of bundles — the CLI, the server's builder, tests —
// must produce output that passes CheckFile, and CheckObjects for the object
// layout.
//
// A Reader already refuses anything unsigned, corrupt or truncated; the
// checker adds what a reader need not check: that each image's whole-file
// SHA-256 matches the manifest, that the object layout holds the same
// bytes under the right keys, and that the single file can be rebuilt from
// the objects byte for byte.
package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/gitfleet/gitfleet/firmware/bundle"
)

// CheckFile reads the single-file bundle at path and returns every way it
// departs from the format, or nil.
func CheckFile(ctx context.Context, path string, v bundle.Verifier) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := bundle.NewReader(ctx, f, v, bundle.Policy{})
	if err != nil {
		return err
	}
	var errs []error
	for {
		im, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := checkDigest(im, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckObjects checks the object layout of the bundle with digest d in dir:
// the envelope under its key verifies and has that digest, every image
// object has exactly the bytes the manifest describes, and writing the
// single file from the objects gives a bundle that passes CheckFile.
func CheckObjects(ctx context.Context, dir bundle.Dir, d bundle.Digest, v bundle.Verifier) error {
	key := "bundles/" + d.String() + ".dsse.json"
	ef, err := dir.Open(key)
	if err != nil {
		return fmt.Errorf("envelope object: %w", err)
	}
	envelope, err := io.ReadAll(io.LimitReader(ef, 8<<20+1))
	ef.Close()
	if err != nil {
		return fmt.Errorf("envelope object: %w", err)
	}
	m, got, err := bundle.OpenEnvelope(ctx, envelope, v)
	if err != nil {
		return fmt.Errorf("envelope object %s: %w", key, err)
	}
	if got != d {
		return fmt.Errorf("envelope object %s holds bundle %s", key, got)
	}
	o := bundle.ObjectKeys(d, m)
	if o.Envelope != key {
		return fmt.Errorf("envelope key %s, the layout says %s", key, o.Envelope)
	}
	var errs []error
	var files []bundle.ImageFile
	for i := range m.Images {
		im := &m.Images[i]
		f, err := dir.Open(o.Images[im.Name])
		if err != nil {
			errs = append(errs, fmt.Errorf("image %s object: %w", im.Name, err))
			continue
		}
		files = append(files, bundle.ImageFile{Name: im.Name, Slot: im.Slot, Path: f.Name()})
		ir, err := bundle.NewImageReader(f, im, 0, nil)
		if err == nil {
			err = checkDigest(im, ir)
		}
		if err == nil {
			var one [1]byte
			if n, _ := f.Read(one[:]); n > 0 {
				err = fmt.Errorf("image %s object %s: longer than the manifest's %d bytes", im.Name, o.Images[im.Name], im.Size)
			}
		}
		f.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	tmp, err := os.CreateTemp("", "gitfleet-conformance-*.gfb")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := bundle.Write(ctx, tmp, envelope, m, files, nil); err != nil {
		return fmt.Errorf("single file from objects: %w", err)
	}
	if err := CheckFile(ctx, tmp.Name(), v); err != nil {
		return fmt.Errorf("single file from objects: %w", err)
	}
	return nil
}

// checkDigest reads the rest of an image from r, which verifies its chunks,
// and compares its whole-file SHA-256 with the manifest's.
func checkDigest(im *bundle.Image, r io.Reader) error {
	var h hash.Hash = sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	if got := bundle.Digest(h.Sum(nil)); !bytes.Equal(got[:], im.SHA256[:]) {
		return fmt.Errorf("image %s: whole-file SHA-256 %s, the manifest says %s", im.Name, got, im.SHA256)
	}
	return nil
}
