package bundle_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
)

func FuzzParseManifest(f *testing.F) {
	tr := bundletest.NewTrust(f, 1, 1, farFuture)
	path := bundletest.Image(f, 5000, 1)
	_, m := bundletest.Bundle(f, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, tr.Targets...)
	canon, err := m.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(canon)
	f.Add([]byte(`{"schema":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bundle.ParseManifest(data)
		if err != nil {
			return
		}
		// Whatever parses is valid and is its own canonical encoding.
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("parsed manifest does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("parsed manifest re-encodes differently")
		}
	})
}

// FuzzReader feeds arbitrary bytes to the reader with a real verifier: it
// must never panic, and the seeds' mutations must never be accepted with
// different image bytes than were signed.
func FuzzReader(f *testing.F) {
	tr := bundletest.NewTrust(f, 1, 1, farFuture)
	v := tr.Verifier(f)
	path := bundletest.Image(f, 2*bundle.MinChunkSize+10, 1)
	good, m := bundletest.Bundle(f, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, tr.Targets...)
	f.Add(good)
	f.Add(good[:100])
	f.Add(append(bytes.Clone(good), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := bundle.NewReader(context.Background(), io.MultiReader(bytes.NewReader(data)), v, bundle.Policy{})
		if err != nil {
			return
		}
		for {
			im, err := r.Next()
			if err != nil {
				return
			}
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, r); err != nil {
				return
			}
			if want := m.Image(im.Name); want == nil || int64(buf.Len()) != want.Size {
				t.Fatalf("accepted image %s of %d bytes that was not signed", im.Name, buf.Len())
			}
		}
	})
}
