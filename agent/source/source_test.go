package source_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/agent/source"
	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/internal/backoff"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

type src interface {
	Envelope(ctx context.Context) ([]byte, error)
	Image(ctx context.Context, im *bundle.Image, offset int64) (io.ReadCloser, error)
	Close() error
}

func fixture(t *testing.T) ([]byte, *bundle.Manifest, map[string][]byte, *bundletest.Trust) {
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	files := []bundle.ImageFile{
		{Name: "rootfs", Slot: "rootfs", Path: bundletest.Image(t, 5*bundle.MinChunkSize+7, 1)},
		{Name: "boot", Slot: "boot", Path: bundletest.Image(t, 3000, 2)},
	}
	data, m := bundletest.Bundle(t, bundletest.Release(), files, tr.Targets...)
	imgs := map[string][]byte{}
	for _, f := range files {
		imgs[f.Name], _ = os.ReadFile(f.Path)
	}
	return data, m, imgs, tr
}

// checkSource reads every image from every chunk offset and compares.
func checkSource(t *testing.T, s src, m *bundle.Manifest, imgs map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Envelope(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range m.Images {
		im := &m.Images[i]
		for from := 0; from <= len(im.Chunks); from++ {
			off := min(int64(from)*im.ChunkSize, im.Size)
			rc, err := s.Image(ctx, im, off)
			if err != nil {
				t.Fatal(err)
			}
			ir, err := bundle.NewImageReader(rc, im, from, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(ir)
			rc.Close()
			if err != nil {
				t.Fatalf("image %s from chunk %d: %v", im.Name, from, err)
			}
			if !bytes.Equal(got, imgs[im.Name][off:]) {
				t.Fatalf("image %s from chunk %d: bytes differ", im.Name, from)
			}
		}
	}
}

func TestFile(t *testing.T) {
	data, m, imgs, _ := fixture(t)
	path := filepath.Join(t.TempDir(), "b.gfb")
	os.WriteFile(path, data, 0o644)
	s, err := source.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkSource(t, s, m, imgs)

	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)-1],
		"padded":    append(bytes.Clone(data), 0),
	} {
		p := filepath.Join(t.TempDir(), name+".gfb")
		os.WriteFile(p, bad, 0o644)
		s, _ := source.OpenFile(p)
		if _, err := s.Envelope(context.Background()); err == nil {
			t.Errorf("%s file: Envelope accepted it", name)
		}
		s.Close()
	}
}

func TestHTTPFileResumesCutConnections(t *testing.T) {
	data, m, imgs, _ := fixture(t)
	var requests, cuts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every third ranged request is cut after 1000 bytes.
		if requests.Add(1)%3 == 0 && r.Header.Get("Range") != "" {
			cuts.Add(1)
			cw := &cutWriter{ResponseWriter: w, left: 1000}
			http.ServeContent(cw, r, "b.gfb", time.Time{}, bytes.NewReader(data))
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "b.gfb", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	s := source.NewHTTPFile(srv.URL+"/b.gfb", srv.Client())
	s.Retry = backoff.Policy{Base: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 20}
	checkSource(t, s, m, imgs)
	if cuts.Load() == 0 {
		t.Fatal("no connection was cut: the test did not test resuming")
	}
}

func TestHTTPObjects(t *testing.T) {
	data, m, imgs, tr := fixture(t)
	ctx := context.Background()
	r, err := bundle.NewReader(ctx, bytes.NewReader(data), tr.Verifier(t), bundle.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := bundle.Explode(ctx, r, bundle.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	urls := map[string]string{}
	for name, key := range o.Images {
		urls[name] = srv.URL + "/" + key
	}
	checkSource(t, source.NewHTTPObjects(srv.URL+"/"+o.Envelope, urls, srv.Client()), m, imgs)

	// An advert that gives a base URL instead of one URL per image.
	ref := source.ReleaseRef(&gitfleetv1.Release{ManifestUrl: srv.URL + "/" + o.Envelope, BaseUrl: srv.URL})
	s, err := source.Open(ref, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	checkSource(t, s, m, imgs)
}

func TestHTTPForbiddenIsNotRetried(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "Request has expired", http.StatusForbidden)
	}))
	defer srv.Close()
	s := source.NewHTTPFile(srv.URL+"/b.gfb?X-Amz-Signature=secret", srv.Client())
	_, err := s.Envelope(context.Background())
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("err = %v, want HTTP 403", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the presigned URL's query: %v", err)
	}
	if requests.Load() != 1 {
		t.Errorf("%d requests, want 1: a 403 is not retried", requests.Load())
	}
}

type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("cut")
	}
	n := min(len(p), c.left)
	c.left -= n
	c.ResponseWriter.Write(p[:n])
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if n < len(p) {
		return n, errors.New("cut")
	}
	return n, nil
}
