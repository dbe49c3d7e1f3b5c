package update

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/ctxio"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

var errCancelled = errors.New("cancelled")

// errNoSpace: an image is larger than its slot.
var errNoSpace = errors.New("no space")

// manifest opens the update's source and returns its verified manifest
// and the bundle digest ("sha256:<hex>"), checking it is still the release
// the journal recorded: a source that changed between a crash and the
// resume is refused, not mixed.
func (e *Engine) manifest(ctx context.Context) (Source, *bundle.Manifest, string, error) {
	u := e.j.Update
	src, err := e.Open(ctx, u.Source)
	if err != nil {
		return nil, nil, "", gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_DOWNLOAD_FAILED, fmt.Errorf("open %s: %w", u.Source, err))
	}
	env, err := src.Envelope(ctx)
	if err != nil {
		src.Close()
		if failureOf(err).Code == gitfleetv1.ErrorCode_ERROR_CODE_INTERNAL.String() {
			// Not a refused bundle (those have their own codes): it could
			// not be fetched.
			err = gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_DOWNLOAD_FAILED, err)
		}
		return nil, nil, "", err
	}
	m, d, sum := e.verified.manifest, e.verified.digest, sha256.Sum256(env)
	if m == nil || sum != e.verified.envelope {
		if m, d, err = bundle.OpenEnvelope(ctx, env, e.Verifier); err != nil {
			src.Close()
			return nil, nil, "", err
		}
		e.verified = verifiedEnvelope{envelope: sum, manifest: m, digest: d}
	}
	digest := "sha256:" + d.String()
	if u.Release.Digest != "" && u.Release.Digest != digest {
		// Either the advert named another bundle than the source serves, or
		// the source changed between a crash and the resume: never mix.
		src.Close()
		return nil, nil, "", gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_DIGEST_MISMATCH,
			fmt.Errorf("%s serves bundle %s, expected %s", u.Source, digest, u.Release.Digest))
	}
	return src, m, digest, nil
}

// check is the Checking action: trust, policy, space. Nothing is written.
func (e *Engine) check(ctx context.Context) error {
	src, m, digest, err := e.manifest(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	p := bundle.Policy{DeviceType: e.Policy.DeviceType, InstalledCounter: e.j.Installed.Counter}
	if p.DeviceType == "" {
		return errors.New("policy: the device type is not configured")
	}
	if err := p.Check(m); err != nil {
		return err
	}
	booted, err := e.Slots.Booted()
	if err != nil {
		return fmt.Errorf("which slot is running: %w", err)
	}
	target, err := e.Slots.Other(booted)
	if err != nil {
		return err
	}
	for i := range m.Images {
		im := &m.Images[i]
		s, err := e.Slots.Open(target, im.Slot, false)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Name, err)
		}
		size, err := s.Size()
		s.Close()
		if err != nil {
			return fmt.Errorf("image %s: slot size: %w", im.Name, err)
		}
		if im.Size > size {
			return fmt.Errorf("%w: image %s has %d bytes, slot %s/%s holds %d", errNoSpace, im.Name, im.Size, target, im.Slot, size)
		}
	}
	u := e.j.Update
	u.Release = Release{Product: m.Product, Version: m.Version, Counter: m.Counter, Digest: digest}
	if p := m.Provenance; p != nil {
		u.Release.Tag, u.Release.Commit = p.Tag, p.Commit
	}
	u.Target, u.Previous, u.Total = target, booted, m.PayloadSize()
	return nil
}

// write is the Writing action: each image streams from the source into its
// slot, verified chunk by chunk, resuming at the last checkpoint.
func (e *Engine) write(ctx context.Context) error {
	src, m, _, err := e.manifest(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	u := e.j.Update
	every := e.Policy.CheckpointBytes
	if every <= 0 {
		every = 16 << 20
	}
	e.written.reset(u.Release.Digest)
	var prior int64 // bytes of the images before this one
	for i := range m.Images {
		im := &m.Images[i]
		if err := e.writeImage(ctx, src, im, prior, every); err != nil {
			return err
		}
		prior += im.Size
	}
	u.Done = u.Total
	return nil
}

func (e *Engine) writeImage(ctx context.Context, src Source, im *bundle.Image, prior, every int64) error {
	u := e.j.Update
	from := u.Chunks[im.Name]
	if from >= len(im.Chunks) {
		return nil
	}
	slot, err := e.Slots.Open(u.Target, im.Slot, true)
	if err != nil {
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED, fmt.Errorf("image %s: %w", im.Name, err))
	}
	defer slot.Close()
	off := int64(from) * im.ChunkSize
	if _, err := slot.Seek(off, io.SeekStart); err != nil {
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED, fmt.Errorf("image %s: seek slot: %w", im.Name, err))
	}
	rc, err := src.Image(ctx, im, off)
	if err != nil {
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_DOWNLOAD_FAILED, fmt.Errorf("image %s: %w", im.Name, err))
	}
	defer rc.Close()
	// One chunk buffer per core: the writer holds one while the other
	// cores read and hash the next. A buffer more (the reader's default)
	// was no faster on two cores and cost a chunk of memory.
	ir, err := bundle.NewPipelinedImageReader(rc, im, from, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	defer ir.Close()
	cw := &checkpointWriter{ctx: ctx, e: e, slot: slot, im: im, off: off, every: every, base: prior, written: e.written.of(im)}
	if _, err := ir.WriteTo(cw); err != nil {
		// Stopped (shut down, cancelled, a bad chunk): still record what
		// the sync in flight makes durable, so a restart resumes there.
		if perr := cw.settle(); perr != nil {
			e.Log.Warn("checkpoint after a stopped write", "image", im.Name, "err", perr)
		}
		return err
	}
	return cw.checkpoint()
}

// checkpointWriter writes verified chunks to a slot and, every so many
// bytes, makes a checkpoint: it syncs the slot and only then persists how
// far it got, the order that makes resuming at the checkpoint safe.
//
// The sync runs in the background while later chunks are written: a
// checkpoint covers the bytes written when its sync started, and is
// persisted by the writer once that sync has returned. At most one sync is
// in flight; the last checkpoint waits for it.
type checkpointWriter struct {
	ctx       context.Context
	e         *Engine
	slot      Slot
	im        *bundle.Image
	off       int64 // image offset of the next byte
	every     int64
	sinceSync int64
	base      int64 // payload offset of the image's first byte

	syncing chan error // the sync in flight, or nil
	mark    int64      // image offset that sync makes durable
	written *writtenImage
}

func (w *checkpointWriter) Write(p []byte) (int, error) {
	if w.e.Cancelled != nil && w.e.Cancelled() {
		return 0, errCancelled
	}
	if err := w.ctx.Err(); err != nil {
		// Shutdown or power cut: stop; the last checkpoint is where to resume.
		return 0, err
	}
	n, err := w.slot.Write(p)
	if n == len(p) {
		w.written.add(w.off, p)
	}
	w.off += int64(n)
	w.sinceSync += int64(n)
	if err != nil {
		return n, gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED, fmt.Errorf("write slot for image %s: %w", w.im.Name, err))
	}
	u := w.e.j.Update
	u.Done = w.base + w.off
	if w.e.progress != nil {
		w.e.progress(u.Done, u.Total)
	}
	if w.syncing != nil {
		select {
		case err := <-w.syncing:
			if err := w.persist(err); err != nil {
				return n, err
			}
		default:
		}
	}
	if w.syncing == nil && w.sinceSync >= w.every && w.off%w.im.ChunkSize == 0 {
		w.startSync()
	}
	return n, nil
}

// startSync starts syncing the slot in the background, for a checkpoint
// at the current offset.
func (w *checkpointWriter) startSync() {
	w.syncing, w.mark, w.sinceSync = make(chan error, 1), w.off, 0
	go func(done chan<- error) { done <- w.slot.Sync() }(w.syncing)
}

// persist records the checkpoint of the sync that returned err.
func (w *checkpointWriter) persist(err error) error {
	w.syncing = nil
	if err != nil {
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_SLOT_WRITE_FAILED, fmt.Errorf("sync slot for image %s: %w", w.im.Name, err))
	}
	w.e.j.Update.Chunks[w.im.Name] = bundle.ChunkCount(w.mark, w.im.ChunkSize)
	// Progress: the restarts so far were not a loop.
	w.e.j.Attempts = 0
	return w.e.j.save(w.e.JournalPath)
}

// checkpoint makes everything written so far durable and records it: the
// end of an image.
func (w *checkpointWriter) checkpoint() error {
	if err := w.settle(); err != nil {
		return err
	}
	w.startSync()
	return w.persist(<-w.syncing)
}

// settle waits for the sync in flight, if any, and records its checkpoint.
func (w *checkpointWriter) settle() error {
	if w.syncing == nil {
		return nil
	}
	return w.persist(<-w.syncing)
}

// verifySlots is the Verifying action: read every written slot back and
// check every chunk again, so what the bootloader will boot is exactly
// what was signed.
//
// A chunk this process wrote is compared with the fingerprint taken of it
// when it was written, right after it matched the signed manifest: the
// same proof for a fraction of the cost of a second SHA-256 pass. An image with any
// chunk written before a restart is checked against the manifest's SHA-256
// digests again.
func (e *Engine) verifySlots(ctx context.Context) error {
	src, m, _, err := e.manifest(ctx)
	if err != nil {
		return err
	}
	src.Close()
	target := e.j.Update.Target
	for i := range m.Images {
		im := &m.Images[i]
		open := func() (Slot, error) { return e.Slots.Open(target, im.Slot, false) }
		if w := e.written.image(e.j.Update.Release.Digest, im); w.complete() {
			err = w.check(ctx, open)
		} else {
			err = verifyImage(ctx, open, im)
		}
		if err != nil {
			return fmt.Errorf("read back image %s from slot %s/%s: %w", im.Name, target, im.Slot, err)
		}
	}
	return nil
}

// verifyImage reads an image from its slot and checks every chunk's
// SHA-256 digest.
func verifyImage(ctx context.Context, open func() (Slot, error), im *bundle.Image) error {
	slot, err := open()
	if err != nil {
		return err
	}
	defer slot.Close()
	ir, err := bundle.NewPipelinedImageReader(io.LimitReader(ctxio.Reader(ctx, slot), im.Size), im, 0, 0)
	if err != nil {
		return err
	}
	defer ir.Close()
	_, err = ir.WriteTo(io.Discard)
	return err
}

// failureOf turns an error into the wire code and one-line message that
// reports carry.
func failureOf(err error) *Failure {
	code := gitfleetv1.ErrorCode_ERROR_CODE_UNSPECIFIED
	if c, ok := errors.AsType[gitfleetv1.ErrorCoder](err); ok {
		code = c.ErrorCode()
	} else {
		for _, c := range []struct {
			target error
			code   gitfleetv1.ErrorCode
		}{
			{trust.ErrBadSignature, gitfleetv1.ErrorCode_ERROR_CODE_BAD_SIGNATURE},
			{trust.ErrMalformed, gitfleetv1.ErrorCode_ERROR_CODE_BAD_SIGNATURE},
			{trust.ErrUntrustedKey, gitfleetv1.ErrorCode_ERROR_CODE_UNTRUSTED_KEY},
			{trust.ErrThreshold, gitfleetv1.ErrorCode_ERROR_CODE_THRESHOLD_NOT_MET},
			{trust.ErrExpired, gitfleetv1.ErrorCode_ERROR_CODE_EXPIRED},
			{trust.ErrRollback, gitfleetv1.ErrorCode_ERROR_CODE_DOWNGRADE},
			{bundle.ErrDowngrade, gitfleetv1.ErrorCode_ERROR_CODE_DOWNGRADE},
			{bundle.ErrIncompatible, gitfleetv1.ErrorCode_ERROR_CODE_INCOMPATIBLE_DEVICE},
			{bundle.ErrCorrupt, gitfleetv1.ErrorCode_ERROR_CODE_CORRUPT_CHUNK},
			{bundle.ErrTruncated, gitfleetv1.ErrorCode_ERROR_CODE_TRUNCATED},
			{bundle.ErrOversized, gitfleetv1.ErrorCode_ERROR_CODE_OVERSIZED},
			{bundle.ErrUnknownFormat, gitfleetv1.ErrorCode_ERROR_CODE_UNKNOWN_FORMAT},
			{bundle.ErrNotBundle, gitfleetv1.ErrorCode_ERROR_CODE_UNKNOWN_FORMAT},
			{errNoSpace, gitfleetv1.ErrorCode_ERROR_CODE_NO_SPACE},
		} {
			if errors.Is(err, c.target) {
				code = c.code
				break
			}
		}
	}
	if code == gitfleetv1.ErrorCode_ERROR_CODE_UNSPECIFIED {
		code = gitfleetv1.ErrorCode_ERROR_CODE_INTERNAL
	}
	return &Failure{Code: code.String(), Message: gitfleetv1.CleanText(err.Error())}
}
