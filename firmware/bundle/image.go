package bundle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// An ImageReader reads one image's bytes and hands out only bytes whose
// chunk matched its digest in the signed manifest.
//
// It reads a whole chunk into memory, checks it, and only then returns it,
// so memory is one chunk whatever the image size.
type ImageReader struct {
	im   *Image
	src  io.Reader
	buf  []byte
	next int    // index of the next chunk to read from src
	data []byte // verified bytes of the current chunk not yet handed out
	err  error
	pipe *pipeline // read-ahead, for NewPipelinedImageReader
}

// Close stops a pipelined reader's read-ahead; for other readers it does
// nothing. It does not close the source. A pipelined reader also stops by
// itself at the end of the image or at its first error. Its chunk buffers
// go back to a pool for the next reader: do not use the reader, or bytes
// it returned, after Close.
func (r *ImageReader) Close() error {
	if r.pipe != nil {
		r.pipe.close()
	}
	return nil
}

// NewImageReader returns a reader of im's bytes from chunk from on. src must
// yield the image's bytes starting at offset from*im.ChunkSize: the whole
// image for from = 0, or the rest of it when resuming with an HTTP range
// request. buf, if at least im.ChunkSize long, is used as the chunk buffer.
func NewImageReader(src io.Reader, im *Image, from int, buf []byte) (*ImageReader, error) {
	if from < 0 || from > len(im.Chunks) {
		return nil, fmt.Errorf("image %s: resume at chunk %d of %d", im.Name, from, len(im.Chunks))
	}
	if int64(len(buf)) < im.ChunkSize {
		buf = make([]byte, im.ChunkSize)
	}
	return &ImageReader{im: im, src: src, buf: buf[:im.ChunkSize], next: from}, nil
}

// Chunk returns the number of chunks verified and fully handed out so far,
// counting from the start of the image: the chunk to resume at.
func (r *ImageReader) Chunk() int {
	if len(r.data) > 0 {
		return r.next - 1
	}
	return r.next
}

// Read reads verified bytes of the image. It returns io.EOF after the last
// byte of the image; it reads nothing from src beyond the image.
func (r *ImageReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// WriteTo writes the rest of the image to w chunk by chunk, without the
// extra copy io.Copy would make through Read.
func (r *ImageReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.data) == 0 {
			if err := r.fill(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(r.data)
		total += int64(n)
		r.data = r.data[n:]
		if err != nil {
			return total, err
		}
	}
}

// fill reads and verifies the next chunk.
func (r *ImageReader) fill() error {
	if r.err != nil {
		return r.err
	}
	if r.next == len(r.im.Chunks) {
		r.err = io.EOF
		return r.err
	}
	if r.pipe != nil {
		chunk, err := r.pipe.nextChunk()
		if err == io.EOF {
			err = fmt.Errorf("%w: image %s ends before chunk %d", ErrTruncated, r.im.Name, r.next)
		}
		if err != nil {
			// Stop the read-ahead now: after an error nothing more is
			// read from src, whether or not the caller calls Close.
			r.pipe.close()
			r.err = err
			return err
		}
		r.data = chunk
		r.next++
		return nil
	}
	i := r.next
	n := r.im.ChunkLen(i)
	got, err := io.ReadFull(r.src, r.buf[:n])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: image %s ends in chunk %d at byte %d of %d", ErrTruncated, r.im.Name, i, int64(i)*r.im.ChunkSize+int64(got), r.im.Size)
		} else {
			err = fmt.Errorf("read image %s chunk %d: %w", r.im.Name, i, err)
		}
		r.err = err
		return err
	}
	if Digest(sha256.Sum256(r.buf[:n])) != r.im.Chunks[i] {
		r.err = fmt.Errorf("%w: image %s chunk %d (bytes %d-%d): SHA-256 does not match the manifest", ErrCorrupt, r.im.Name, i, int64(i)*r.im.ChunkSize, int64(i)*r.im.ChunkSize+n-1)
		return r.err
	}
	r.data = r.buf[:n]
	r.next++
	return nil
}
