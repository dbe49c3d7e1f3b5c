package bundle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
)

// A Verifier opens a signed envelope and returns its payload only if the
// signatures satisfy its trust policy. *trust.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, payloadType string, envelope []byte) ([]byte, error)
}

// A Reader reads a single-file bundle as a stream. NewReader has verified the
// manifest's signature and the Policy before any image byte is read; each
// image's bytes are verified chunk by chunk as they are read.
type Reader struct {
	src      io.Reader
	size     int64 // total size of src if known, else -1
	envelope []byte
	m        *Manifest
	digest   Digest
	next     int // index of the next image Next returns
	cur      *ImageReader
}

// NewReader reads the header and signed manifest from src, verifies them
// with v, and checks p. If src is an *os.File or has a Size method, lengths
// are checked against its size first, so a truncated file or an oversized
// length field is refused before a single image byte is read.
func NewReader(ctx context.Context, src io.Reader, v Verifier, p Policy) (*Reader, error) {
	r := &Reader{src: src, size: sourceSize(src)}
	envelope, err := readEnvelope(src, r.size)
	if err != nil {
		return nil, err
	}
	r.envelope = envelope
	h := header{envelopeLen: uint32(len(envelope))}
	m, digest, err := OpenEnvelope(ctx, r.envelope, v)
	if err != nil {
		return nil, err
	}
	r.m, r.digest = m, digest
	if r.size >= 0 {
		want := HeaderSize + int64(h.envelopeLen) + m.PayloadSize()
		switch {
		case r.size < want:
			return nil, fmt.Errorf("%w: file has %d bytes, the manifest describes %d", ErrTruncated, r.size, want)
		case r.size > want:
			return nil, fmt.Errorf("%w: %d bytes of trailing data after the last image", ErrCorrupt, r.size-want)
		}
	}
	if err := p.Check(m); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadEnvelope reads the header and the signed envelope at the start of a
// single-file bundle, without verifying anything but the header: for
// showing what a bundle claims, or for handing the envelope to OpenEnvelope.
func ReadEnvelope(src io.Reader) ([]byte, error) {
	return readEnvelope(src, sourceSize(src))
}

// readEnvelope reads the header and envelope; size is the number of bytes
// src holds, or -1 if unknown.
func readEnvelope(src io.Reader, size int64) ([]byte, error) {
	hb := make([]byte, HeaderSize)
	if n, err := io.ReadFull(src, hb); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrTruncated, n, HeaderSize)
		}
		return nil, fmt.Errorf("read bundle header: %w", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	if size >= 0 && int64(h.envelopeLen) > size-HeaderSize {
		return nil, fmt.Errorf("%w: envelope length %d is larger than the %d bytes after the header", ErrOversized, h.envelopeLen, size-HeaderSize)
	}
	envelope := make([]byte, h.envelopeLen)
	if n, err := io.ReadFull(src, envelope); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: envelope length %d, but only %d bytes follow the header", ErrTruncated, h.envelopeLen, n)
		}
		return nil, fmt.Errorf("read bundle envelope: %w", err)
	}
	return envelope, nil
}

// OpenEnvelope verifies a signed manifest envelope with v, parses the
// manifest and returns it with the bundle digest. Both bundle forms start
// here.
func OpenEnvelope(ctx context.Context, envelope []byte, v Verifier) (*Manifest, Digest, error) {
	payload, err := v.Verify(ctx, PayloadType, envelope)
	if err != nil {
		return nil, Digest{}, fmt.Errorf("manifest signature: %w", err)
	}
	m, err := ParseManifest(payload)
	if err != nil {
		return nil, Digest{}, err
	}
	// ParseManifest accepted only the canonical encoding, so this is the
	// same digest Manifest.Digest computes.
	return m, sha256.Sum256(payload), nil
}

func sourceSize(src io.Reader) int64 {
	switch s := src.(type) {
	case interface{ Size() int64 }:
		return s.Size()
	case *os.File:
		fi, err := s.Stat()
		if err == nil && fi.Mode().IsRegular() {
			if off, err := s.Seek(0, io.SeekCurrent); err == nil {
				return fi.Size() - off
			}
		}
	}
	return -1
}

// Manifest returns the verified manifest.
func (r *Reader) Manifest() *Manifest { return r.m }

// Envelope returns the signed envelope exactly as it was read.
func (r *Reader) Envelope() []byte { return r.envelope }

// Digest returns the bundle digest (see Manifest.Digest).
func (r *Reader) Digest() Digest { return r.digest }

// Next advances to the next image and returns its manifest entry. The rest
// of the previous image, if unread, is read and verified first. After the
// last image Next returns io.EOF, having checked that nothing follows it.
func (r *Reader) Next() (*Image, error) {
	if r.cur != nil {
		_, err := r.cur.WriteTo(io.Discard)
		r.cur.Close()
		r.cur = nil
		if err != nil {
			return nil, err
		}
	}
	if r.next == len(r.m.Images) {
		var one [1]byte
		if n, _ := io.ReadFull(r.src, one[:]); n > 0 {
			return nil, fmt.Errorf("%w: trailing data after the last image", ErrCorrupt)
		}
		return nil, io.EOF
	}
	im := &r.m.Images[r.next]
	r.next++
	// The image's bytes are exactly the next im.Size bytes; LimitReader keeps
	// a reader of one image from consuming the next. The pipelined reader
	// has read all of them by the time its last chunk is handed out, so the
	// next image's reader never shares src with it.
	cur, err := NewPipelinedImageReader(io.LimitReader(r.src, im.Size), im, 0, 0)
	if err != nil {
		return nil, err
	}
	r.cur = cur
	return im, nil
}

// Close stops the read-ahead of the current image, if any. Call it when
// abandoning a Reader before Next returned io.EOF.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	return nil
}

// Read reads verified bytes of the current image.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cur == nil {
		return 0, errors.New("bundle: Read before Next")
	}
	return r.cur.Read(p)
}

// WriteTo writes the rest of the current image to w.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.cur == nil {
		return 0, errors.New("bundle: WriteTo before Next")
	}
	return r.cur.WriteTo(w)
}

// Verify reads the whole bundle and returns the first error found: a cheap
// way to check a bundle without installing it.
func (r *Reader) Verify(progress Progress) error {
	defer r.Close()
	total, done := r.m.PayloadSize(), int64(0)
	for {
		im, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := r.WriteTo(&progressWriter{fn: progress, done: done, total: total}); err != nil {
			return err
		}
		done += im.Size
	}
}
