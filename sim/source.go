package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/gitfleet/gitfleet/agent/source"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/gitfleet/gitfleet/firmware/bundle"
)

// A bundles is the fleet's download cache, standing in for the CDN in front
// of object storage: the first device that opens a release reference
// downloads the bundle with the agent's own HTTP source; every device then
// reads it from memory. Each device's engine still verifies the envelope
// and every chunk it writes and reads back, as on a real device; only the
// network transfer is shared, so the server's object store is not what the
// simulator measures.
type bundles struct {
	client   *http.Client
	verifier bundle.Verifier

	mu    sync.Mutex
	byRef map[string]*download
}

type download struct {
	done     chan struct{}
	envelope []byte
	images   map[string][]byte
	err      error
}

func newBundles(client *http.Client, v bundle.Verifier) *bundles {
	return &bundles{client: client, verifier: v, byRef: map[string]*download{}}
}

// open returns a Source of the bundle ref names, downloading it first if no
// device has yet.
func (b *bundles) open(ctx context.Context, ref string) (update.Source, error) {
	b.mu.Lock()
	d, ok := b.byRef[ref]
	if !ok {
		d = &download{done: make(chan struct{})}
		b.byRef[ref] = d
	}
	b.mu.Unlock()
	if !ok {
		d.envelope, d.images, d.err = b.fetch(ctx, ref)
		close(d.done)
		if d.err != nil {
			// Let the next device try again.
			b.mu.Lock()
			delete(b.byRef, ref)
			b.mu.Unlock()
		}
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if d.err != nil {
		return nil, d.err
	}
	return &memSource{envelope: d.envelope, images: d.images}, nil
}

// fetch downloads the envelope and every image of ref.
func (b *bundles) fetch(ctx context.Context, ref string) ([]byte, map[string][]byte, error) {
	src, err := source.Open(ref, b.client)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	env, err := src.Envelope(ctx)
	if err != nil {
		return nil, nil, err
	}
	m, _, err := bundle.OpenEnvelope(ctx, env, b.verifier)
	if err != nil {
		return nil, nil, fmt.Errorf("download: %w", err)
	}
	images := map[string][]byte{}
	for i := range m.Images {
		im := &m.Images[i]
		rc, err := src.Image(ctx, im, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("download image %s: %w", im.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, im.Size))
		rc.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("download image %s: %w", im.Name, err)
		}
		images[im.Name] = data
	}
	return env, images, nil
}

// A memSource serves a downloaded bundle from memory.
type memSource struct {
	envelope []byte
	images   map[string][]byte
}

func (s *memSource) Envelope(context.Context) ([]byte, error) { return s.envelope, nil }

func (s *memSource) Image(_ context.Context, im *bundle.Image, offset int64) (io.ReadCloser, error) {
	data, ok := s.images[im.Name]
	if !ok || offset > int64(len(data)) {
		return nil, fmt.Errorf("image %s: not in the bundle, or offset %d past its end", im.Name, offset)
	}
	return io.NopCloser(bytes.NewReader(data[offset:])), nil
}

func (s *memSource) Close() error { return nil }
