package bundle_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
)

// readers are the two ways to read an image; they must behave the same.
var readers = []struct {
	name string
	make func(src io.Reader, im *bundle.Image, from int) (*bundle.ImageReader, error)
}{
	{"sequential", func(src io.Reader, im *bundle.Image, from int) (*bundle.ImageReader, error) {
		return bundle.NewImageReader(src, im, from, nil)
	}},
	{"pipelined", func(src io.Reader, im *bundle.Image, from int) (*bundle.ImageReader, error) {
		return bundle.NewPipelinedImageReader(src, im, from, 3)
	}},
}

func TestImageReadersAgree(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	path := bundletest.Image(t, 9*bundle.MinChunkSize+123, 5)
	_, m := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, tr.Targets...)
	img, _ := os.ReadFile(path)
	im := &m.Images[0]
	corrupt := bytes.Clone(img)
	corrupt[6*bundle.MinChunkSize+1] ^= 1

	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			for from := 0; from <= len(im.Chunks); from++ {
				off := min(int64(from)*im.ChunkSize, int64(len(img)))
				r, err := rd.make(bytes.NewReader(img[off:]), im, from)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, img[off:]) {
					t.Fatalf("from chunk %d: err %v, equal %v", from, err, bytes.Equal(got, img[off:]))
				}
			}
			cases := []struct {
				name string
				src  []byte
				want error
				good int // bytes handed out before the error
			}{
				{"corrupt chunk 6", corrupt, bundle.ErrCorrupt, 6 * bundle.MinChunkSize},
				{"truncated in chunk 4", img[:4*bundle.MinChunkSize+10], bundle.ErrTruncated, 4 * bundle.MinChunkSize},
			}
			for _, tc := range cases {
				r, _ := rd.make(bytes.NewReader(tc.src), im, 0)
				var out bytes.Buffer
				_, err := io.Copy(&out, r)
				r.Close()
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
				if out.Len() != tc.good {
					t.Errorf("%s: handed out %d bytes before the error, want exactly the %d verified ones", tc.name, out.Len(), tc.good)
				}
			}
		})
	}
}

// TestPipelineCloseStopsGoroutines abandons pipelined readers mid-image and
// checks Close leaves no goroutine behind.
func TestPipelineCloseStopsGoroutines(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	path := bundletest.Image(t, 40*bundle.MinChunkSize, 6)
	_, m := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, tr.Targets...)
	img, _ := os.ReadFile(path)
	before := runtime.NumGoroutine()
	for range 20 {
		r, err := bundle.NewPipelinedImageReader(bytes.NewReader(img), &m.Images[0], 0, 4)
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, r, 3*bundle.MinChunkSize)
		r.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}
