package bundle

import (
	"github.com/gitfleet/gitfleet/internal/ctxio"

	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"
)

// A Signer seals a manifest in a signed envelope. trust.Sealer is one.
type Signer interface {
	Sign(ctx context.Context, payloadType string, payload []byte) ([]byte, error)
}

// An ImageFile is an image to put in a bundle.
type ImageFile struct {
	Name string
	Slot string
	Path string
}

// A Release is what a manifest says about the release, apart from images.
type Release struct {
	Product     string
	Version     string
	Counter     uint64
	DeviceTypes []string
	Provenance  *Provenance
	// Created defaults to now.
	Created time.Time
	// ChunkSize defaults to DefaultChunk.
	ChunkSize int64
}

// Progress is called as bytes of the images are processed.
type Progress func(done, total int64)

// Create writes a signed single-file bundle of images to w: it hashes every
// image (Plan), seals the manifest with s, and writes the bundle (Write).
// The images are read twice, because the signed manifest, which holds their
// digests, comes before them in the file.
func Create(ctx context.Context, w io.Writer, rel Release, images []ImageFile, s Signer, progress Progress) (*Manifest, error) {
	m, err := Plan(ctx, rel, images, progress)
	if err != nil {
		return nil, err
	}
	payload, err := m.Encode()
	if err != nil {
		return nil, err
	}
	envelope, err := s.Sign(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign manifest: %w", err)
	}
	if err := Write(ctx, w, envelope, m, images, progress); err != nil {
		return nil, err
	}
	return m, nil
}

// Plan hashes the images and returns the manifest that describes them.
func Plan(ctx context.Context, rel Release, images []ImageFile, progress Progress) (*Manifest, error) {
	if rel.ChunkSize == 0 {
		rel.ChunkSize = DefaultChunk
	}
	if rel.Created.IsZero() {
		rel.Created = time.Now()
	}
	m := &Manifest{
		Schema:      Schema,
		Product:     rel.Product,
		Version:     rel.Version,
		Counter:     rel.Counter,
		DeviceTypes: rel.DeviceTypes,
		Created:     rel.Created.UTC().Truncate(time.Second),
		Provenance:  rel.Provenance,
	}
	var total, done int64
	for _, f := range images {
		fi, err := os.Stat(f.Path)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", f.Name, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("image %s: %s is not a regular file", f.Name, f.Path)
		}
		total += fi.Size()
	}
	buf := [2][]byte{make([]byte, rel.ChunkSize), make([]byte, rel.ChunkSize)}
	for _, f := range images {
		im, err := hashImage(ctx, f, rel.ChunkSize, buf, func(n int64) {
			done += n
			if progress != nil {
				progress(done, total)
			}
		})
		if err != nil {
			return nil, err
		}
		m.Images = append(m.Images, *im)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// hashImage computes an image's chunk index and whole-file digest in one
// read. The whole-file hash runs beside the chunk hash, on another core
// when there is one, while the next chunk is read into the other buffer.
func hashImage(ctx context.Context, f ImageFile, chunkSize int64, buf [2][]byte, advance func(int64)) (*Image, error) {
	file, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", f.Name, err)
	}
	defer file.Close()
	im := &Image{Name: f.Name, Slot: f.Slot, ChunkSize: chunkSize}
	whole := sha256.New()
	var (
		wg    sync.WaitGroup
		which int
	)
	for {
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return nil, err
		}
		b := buf[which]
		n, err := io.ReadFull(file, b)
		if n > 0 {
			wg.Wait() // the other buffer's whole-file hash
			chunk := b[:n]
			wg.Go(func() { hashInto(whole, chunk) })
			im.Chunks = append(im.Chunks, sha256.Sum256(chunk))
			im.Size += int64(n)
			advance(int64(n))
			which = 1 - which
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			wg.Wait()
			return nil, fmt.Errorf("image %s: %w", f.Name, err)
		}
	}
	wg.Wait()
	im.SHA256 = Digest(whole.Sum(nil))
	return im, nil
}

func hashInto(h hash.Hash, b []byte) { h.Write(b) }

// Write writes a single-file bundle: the header, envelope (which must seal
// m), then each image in manifest order. It fails if an image's size
// differs from the manifest's, e.g. because the file changed since Plan.
func Write(ctx context.Context, w io.Writer, envelope []byte, m *Manifest, images []ImageFile, progress Progress) error {
	if len(images) != len(m.Images) {
		return fmt.Errorf("write bundle: %d image files for %d manifest images", len(images), len(m.Images))
	}
	h := header{version: FormatVersion, envelopeLen: uint32(len(envelope))}
	if _, err := w.Write(h.encode()); err != nil {
		return fmt.Errorf("write bundle header: %w", err)
	}
	if _, err := w.Write(envelope); err != nil {
		return fmt.Errorf("write bundle envelope: %w", err)
	}
	pw := &progressWriter{w: w, total: m.PayloadSize(), fn: progress}
	for i, f := range images {
		im := &m.Images[i]
		if f.Name != im.Name {
			return fmt.Errorf("write bundle: image file %d is %s, manifest image %d is %s", i, f.Name, i, im.Name)
		}
		if err := copyImage(ctx, pw, f, im.Size); err != nil {
			return err
		}
	}
	return nil
}

func copyImage(ctx context.Context, w io.Writer, f ImageFile, size int64) error {
	file, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("image %s: %w", f.Name, err)
	}
	defer file.Close()
	n, err := io.Copy(w, ctxio.Reader(ctx, io.LimitReader(file, size+1)))
	if err != nil {
		return fmt.Errorf("write image %s: %w", f.Name, err)
	}
	if n != size {
		return fmt.Errorf("write image %s: %s has %d bytes, the manifest says %d: did it change?", f.Name, f.Path, n, size)
	}
	return nil
}

// progressWriter passes writes to w (if set) and reports the running count.
type progressWriter struct {
	w           io.Writer
	fn          Progress
	done, total int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n := len(b)
	if p.w != nil {
		var err error
		if n, err = p.w.Write(b); err != nil {
			p.done += int64(n)
			return n, err
		}
	}
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, nil
}
