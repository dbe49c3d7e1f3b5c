package bundle

import (
	"github.com/gitfleet/gitfleet/internal/ctxio"

	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Objects names the objects of a bundle's object layout. Keys are content
// addressed: an envelope by the bundle digest, an image by its SHA-256, so
// releases that share an image share its object, and an object's key says
// what its bytes must hash to.
type Objects struct {
	Envelope string
	// Images maps image names to keys.
	Images map[string]string
}

// ObjectKeys returns the object layout of the bundle with manifest m and
// bundle digest d.
func ObjectKeys(d Digest, m *Manifest) Objects {
	o := Objects{Envelope: "bundles/" + d.String() + ".dsse.json", Images: map[string]string{}}
	for _, im := range m.Images {
		o.Images[im.Name] = "blobs/sha256/" + im.SHA256.String()
	}
	return o
}

// An ObjectWriter stores objects. PutObject must make an object visible
// only once all size bytes of it are stored.
type ObjectWriter interface {
	PutObject(ctx context.Context, key string, r io.Reader, size int64) error
}

// Explode reads the rest of the bundle from r and stores it in the object
// layout: every image first, the envelope last, so that a reader that finds
// the envelope finds every image it names. Image bytes are verified as they
// are read, so nothing unverified is stored under a content address.
func Explode(ctx context.Context, r *Reader, store ObjectWriter) (Objects, error) {
	o := ObjectKeys(r.Digest(), r.Manifest())
	for {
		im, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Objects{}, err
		}
		if err := store.PutObject(ctx, o.Images[im.Name], r, im.Size); err != nil {
			return Objects{}, fmt.Errorf("store image %s: %w", im.Name, err)
		}
	}
	if err := store.PutObject(ctx, o.Envelope, strings.NewReader(string(r.Envelope())), int64(len(r.Envelope()))); err != nil {
		return Objects{}, fmt.Errorf("store envelope: %w", err)
	}
	return o, nil
}

// A Dir is an object store in a local directory: an object is a file at its
// key below the directory. It is the embedded server's store and a test
// double for S3.
type Dir string

// PutObject writes the object to a temporary file, syncs it and renames it
// into place, so the object is visible only once complete.
func (d Dir) PutObject(ctx context.Context, key string, r io.Reader, size int64) error {
	path, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, ctxio.Reader(ctx, io.LimitReader(r, size+1)))
	if err == nil && n != size {
		err = fmt.Errorf("object %s: got %d bytes, want %d", key, n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// Open opens the object at key.
func (d Dir) Open(key string) (*os.File, error) {
	path, err := d.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(path)
}

func (d Dir) path(key string) (string, error) {
	if !filepath.IsLocal(key) || strings.Contains(key, `\`) {
		return "", fmt.Errorf("object key %q escapes the store", key)
	}
	return filepath.Join(string(d), filepath.FromSlash(key)), nil
}
