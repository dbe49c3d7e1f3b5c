package source

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/gitfleet/gitfleet/firmware/bundle"
)

// A File is a single-file bundle on a local filesystem.
type File struct {
	f        *os.File
	envelope []byte
	offsets  map[string]int64 // image name → file offset of its first byte
}

// OpenFile opens the bundle at path. It reads only the header and envelope;
// image offsets are computed when the envelope is read.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &File{f: f}, nil
}

// Envelope returns the signed envelope. It also checks that the file is
// exactly as long as the manifest says, so a truncated or padded file is
// refused before anything is written. The manifest is parsed, unverified,
// only to find where each image starts; the engine verifies these same
// bytes before it asks for any image.
func (s *File) Envelope(context.Context) ([]byte, error) {
	if s.envelope != nil {
		return s.envelope, nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	env, err := bundle.ReadEnvelope(s.f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.f.Name(), err)
	}
	offsets, end, err := imageOffsets(env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.f.Name(), err)
	}
	fi, err := s.f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Size() < end:
		return nil, fmt.Errorf("%s: %w: file has %d bytes, the manifest describes %d", s.f.Name(), bundle.ErrTruncated, fi.Size(), end)
	case fi.Size() > end:
		return nil, fmt.Errorf("%s: %w: %d bytes of trailing data after the last image", s.f.Name(), bundle.ErrCorrupt, fi.Size()-end)
	}
	s.envelope, s.offsets = env, offsets
	return env, nil
}

// Image returns im's bytes from offset on.
func (s *File) Image(ctx context.Context, im *bundle.Image, offset int64) (io.ReadCloser, error) {
	if _, err := s.Envelope(ctx); err != nil {
		return nil, err
	}
	start, ok := s.offsets[im.Name]
	if !ok {
		return nil, fmt.Errorf("%s: no image %s", s.f.Name(), im.Name)
	}
	return io.NopCloser(io.NewSectionReader(s.f, start+offset, im.Size-offset)), nil
}

// Close closes the file.
func (s *File) Close() error { return s.f.Close() }
