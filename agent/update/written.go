package update

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"
	"sync"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/internal/ctxio"
)

// written holds fingerprints of the chunks this process wrote to the slots,
// for the read-back: a keyed 64-bit hash (hash/maphash, AES-based, a random
// seed per process) of each chunk, taken as it was written, after it
// matched its SHA-256 digest in the signed manifest. Reading a chunk back
// and finding its fingerprint shows the slot returns the bytes that were
// verified: a failing medium or a stray writer is caught except with odds
// of 2^-64, and as the seed never leaves the process, no one can prepare
// other bytes that match.
//
// Fingerprints live in memory only: after a restart the read-back checks
// the manifest's digests instead.
type written struct {
	seed   maphash.Seed
	digest string // the release the fingerprints are of
	images map[string]*writtenImage
}

// A writtenImage holds the fingerprints of one image's chunks.
type writtenImage struct {
	seed  maphash.Seed
	im    *bundle.Image
	sums  []uint64
	taken []bool
}

// reset starts the fingerprints of release digest afresh, unless they are
// of it already: a write resumed in the same process keeps the chunks it
// fingerprinted before.
func (w *written) reset(digest string) {
	if w.images != nil && w.digest == digest {
		return
	}
	w.seed, w.digest, w.images = maphash.MakeSeed(), digest, map[string]*writtenImage{}
}

// of returns the fingerprints of im, to be filled by the writer.
func (w *written) of(im *bundle.Image) *writtenImage {
	wi := w.images[im.Name]
	if wi == nil || wi.im.ChunkSize != im.ChunkSize || len(wi.sums) != len(im.Chunks) {
		wi = &writtenImage{seed: w.seed, im: im, sums: make([]uint64, len(im.Chunks)), taken: make([]bool, len(im.Chunks))}
		w.images[im.Name] = wi
	}
	return wi
}

// image returns the fingerprints of im of release digest, or nil.
func (w *written) image(digest string, im *bundle.Image) *writtenImage {
	if w.digest != digest {
		return nil
	}
	return w.images[im.Name]
}

// add records the fingerprint of p, written at image offset off, when p is
// exactly one chunk.
func (wi *writtenImage) add(off int64, p []byte) {
	if wi == nil || off%wi.im.ChunkSize != 0 {
		return
	}
	i := int(off / wi.im.ChunkSize)
	if i >= len(wi.sums) || int64(len(p)) != wi.im.ChunkLen(i) {
		return
	}
	wi.sums[i], wi.taken[i] = maphash.Bytes(wi.seed, p), true
}

// complete reports whether every chunk of the image was fingerprinted.
func (wi *writtenImage) complete() bool {
	if wi == nil {
		return false
	}
	for _, ok := range wi.taken {
		if !ok {
			return false
		}
	}
	return true
}

// check reads the image back and compares each chunk with its
// fingerprint, on every core: each worker opens the slot with open and
// reads its own run of chunks through a small buffer, so memory stays
// 128 KiB per core whatever the chunk size. The first bad chunk in image
// order is the error.
func (wi *writtenImage) check(ctx context.Context, open func() (Slot, error)) error {
	workers := min(runtime.GOMAXPROCS(0), len(wi.sums))
	per := (len(wi.sums) + workers - 1) / max(workers, 1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for k := range workers {
		from, to := k*per, min((k+1)*per, len(wi.sums))
		wg.Go(func() { errs[k] = wi.checkRun(ctx, open, from, to) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkRun checks chunks [from, to).
func (wi *writtenImage) checkRun(ctx context.Context, open func() (Slot, error), from, to int) error {
	if from >= to {
		return nil
	}
	slot, err := open()
	if err != nil {
		return err
	}
	defer slot.Close()
	if _, err := slot.Seek(int64(from)*wi.im.ChunkSize, io.SeekStart); err != nil {
		return err
	}
	r := ctxio.Reader(ctx, slot)
	// No bigger than the run: a small image's read-back has no use for
	// 128 KiB of zeroed memory. 128 KiB reads are as fast as 256 KiB
	// ones, and half the memory at the install's peak.
	runBytes := min(int64(to)*wi.im.ChunkSize, wi.im.Size) - int64(from)*wi.im.ChunkSize
	buf := make([]byte, min(wi.im.ChunkSize, 128<<10, runBytes))
	var h maphash.Hash
	h.SetSeed(wi.seed)
	for i := from; i < to; i++ {
		h.Reset()
		n := wi.im.ChunkLen(i)
		if got, err := io.CopyBuffer(&h, io.LimitReader(r, n), buf); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		} else if got != n {
			return fmt.Errorf("%w: image %s ends in chunk %d at byte %d of %d", bundle.ErrTruncated, wi.im.Name, i, int64(i)*wi.im.ChunkSize+got, wi.im.Size)
		}
		if h.Sum64() != wi.sums[i] {
			return fmt.Errorf("%w: image %s chunk %d (bytes %d-%d) reads back other bytes than were written", bundle.ErrCorrupt, wi.im.Name, i, int64(i)*wi.im.ChunkSize, int64(i)*wi.im.ChunkSize+n-1)
		}
	}
	return nil
}
