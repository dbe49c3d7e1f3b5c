package bundle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

var farFuture = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

// readAll reads a whole bundle through a Reader and returns each image's
// bytes.
func readAll(t *testing.T, src io.Reader, v bundle.Verifier, p bundle.Policy) (map[string][]byte, *bundle.Reader, error) {
	t.Helper()
	r, err := bundle.NewReader(context.Background(), src, v, p)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	out := map[string][]byte{}
	for {
		im, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, nil, err
		}
		out[im.Name] = b
	}
}

func TestRoundTrip(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	v := tr.Verifier(t)
	cases := []struct {
		name      string
		sizes     []int64
		chunkSize int64
	}{
		{"one small image", []int64{1000}, bundle.MinChunkSize},
		{"exact chunk multiple", []int64{3 * bundle.MinChunkSize}, bundle.MinChunkSize},
		{"one byte past a chunk", []int64{bundle.MinChunkSize + 1}, bundle.MinChunkSize},
		{"empty image", []int64{0}, bundle.MinChunkSize},
		{"rootfs and boot", []int64{300_000, 70_000}, 64 << 10},
		{"default chunk size", []int64{(1 << 20) + 17}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var files []bundle.ImageFile
			want := map[string][]byte{}
			for i, size := range tc.sizes {
				name := []string{"rootfs", "boot"}[i]
				path := bundletest.Image(t, size, uint64(i+1))
				files = append(files, bundle.ImageFile{Name: name, Slot: name, Path: path})
				want[name], _ = os.ReadFile(path)
			}
			rel := bundletest.Release()
			rel.ChunkSize = tc.chunkSize
			data, m := bundletest.Bundle(t, rel, files, tr.Targets...)

			for _, src := range []struct {
				name string
				r    io.Reader
			}{
				{"sized", bytes.NewReader(data)},
				{"stream", io.MultiReader(bytes.NewReader(data))},
			} {
				got, r, err := readAll(t, src.r, v, bundle.Policy{DeviceType: "acme-gw-v3", InstalledCounter: 14})
				if err != nil {
					t.Fatalf("%s: %v", src.name, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: images differ (-want +got):\n%s", src.name, diff)
				}
				if diff := cmp.Diff(m, r.Manifest()); diff != "" {
					t.Errorf("%s: manifest differs (-create +read):\n%s", src.name, diff)
				}
				d, _ := m.Digest()
				if r.Digest() != d {
					t.Errorf("%s: digest %s, want %s", src.name, r.Digest(), d)
				}
			}
			for _, im := range m.Images {
				if got, want := im.SHA256, bundle.Digest(sha256.Sum256(want[im.Name])); got != want {
					t.Errorf("image %s sha256 = %s, want %s", im.Name, got, want)
				}
			}
		})
	}
}

// build returns a small bundle signed by the trust's targets keys, and a
// verifier pinned to the trust's root.
func build(t *testing.T, tr *bundletest.Trust, signers ...*keys.Signer) []byte {
	t.Helper()
	path := bundletest.Image(t, 3*bundle.MinChunkSize+100, 7)
	data, _ := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, signers...)
	return data
}

// TestEveryFlippedByteIsRefused flips, one at a time, each byte of a
// bundle's header and signed envelope in two ways — its lowest bit, and the
// ASCII case bit — and every 61st byte of its images (each goes through
// the same chunk check), and checks that the reader refuses every result.
func TestEveryFlippedByteIsRefused(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	v := tr.Verifier(t)
	data := build(t, tr, tr.Targets...)
	if _, _, err := readAll(t, bytes.NewReader(data), v, bundle.Policy{}); err != nil {
		t.Fatalf("unmodified bundle: %v", err)
	}
	mod := make([]byte, len(data))
	imageStart := bundle.HeaderSize + int(binary.BigEndian.Uint32(data[12:16]))
	for i := 0; i < len(data); i++ {
		if i > imageStart && i%61 != 0 && i != len(data)-1 {
			continue
		}
		for _, mask := range []byte{0x01, 0x20} {
			copy(mod, data)
			mod[i] ^= mask
			_, _, err := readAll(t, bytes.NewReader(mod), v, bundle.Policy{})
			if err == nil {
				t.Fatalf("byte %d ^ %#02x (%q -> %q) accepted", i, mask, data[i], mod[i])
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("byte %d: error is not one line: %q", i, err)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	v := tr.Verifier(t)
	good := build(t, tr, tr.Targets...)
	envLen := int(binary.BigEndian.Uint32(good[12:16]))
	imageStart := bundle.HeaderSize + envLen

	other := bundletest.NewTrust(t, 1, 1, farFuture)
	untrusted := build(t, other, other.Targets...)

	two := bundletest.NewTrust(t, 2, 2, farFuture)
	oneOfTwo := build(t, two, two.Targets[0])

	expired := bundletest.NewTrust(t, 1, 1, time.Now().Add(time.Hour))
	expiredV := expired.Verifier(t)
	expiredV.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	expiredBundle := build(t, expired, expired.Targets...)

	patch := func(b []byte, off int, val ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], val)
		return c
	}
	be32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

	cases := []struct {
		name     string
		data     []byte
		stream   bool // hide the size from the reader
		verifier bundle.Verifier
		policy   bundle.Policy
		want     error
		msg      string
	}{
		{name: "signed by an untrusted key", data: untrusted, want: trust.ErrUntrustedKey, msg: "not a trusted targets key"},
		{name: "too few signatures for the threshold", data: oneOfTwo, verifier: two.Verifier(t), want: trust.ErrThreshold, msg: "1 valid targets signature(s) of 2 required"},
		{name: "expired root", data: expiredBundle, verifier: expiredV, want: trust.ErrExpired, msg: "vouched for until"},
		{name: "lower release counter than installed", data: good, policy: bundle.Policy{InstalledCounter: 15}, want: bundle.ErrDowngrade, msg: "release counter 14 (version 1.4.0) is lower than the installed 15"},
		{name: "device type not listed", data: good, policy: bundle.Policy{DeviceType: "acme-gw-v1"}, want: bundle.ErrIncompatible, msg: `device type "acme-gw-v1"`},
		{name: "empty file", data: nil, want: bundle.ErrTruncated, msg: "shorter than the 16-byte header"},
		{name: "truncated in the envelope", data: good[:bundle.HeaderSize+10], want: bundle.ErrOversized, msg: "larger than the 10 bytes after the header"},
		{name: "truncated in the envelope, streamed", data: good[:bundle.HeaderSize+10], stream: true, want: bundle.ErrTruncated, msg: "only 10 bytes follow"},
		{name: "truncated in an image", data: good[:imageStart+5000], want: bundle.ErrTruncated, msg: "the manifest describes"},
		{name: "truncated in an image, streamed", data: good[:imageStart+5000], stream: true, want: bundle.ErrTruncated, msg: "image rootfs ends in chunk 1"},
		{name: "truncated by one byte, streamed", data: good[:len(good)-1], stream: true, want: bundle.ErrTruncated, msg: "ends in chunk 3"},
		{name: "trailing data", data: append(bytes.Clone(good), 0), want: bundle.ErrCorrupt, msg: "1 bytes of trailing data"},
		{name: "trailing data, streamed", data: append(bytes.Clone(good), 0), stream: true, want: bundle.ErrCorrupt, msg: "trailing data after the last image"},
		{name: "length field larger than the file", data: patch(good, 12, be32(uint32(len(good)))...), want: bundle.ErrOversized, msg: "is larger than the"},
		{name: "length field beyond the limit", data: patch(good, 12, be32(trust.MaxEnvelope+1)...), want: bundle.ErrOversized, msg: "outside 1..8388608"},
		{name: "unknown format version", data: patch(good, 8, 0, 2), want: bundle.ErrUnknownFormat, msg: "format version 2 (this reader knows 1)"},
		{name: "unknown header flag", data: patch(good, 10, 0, 1), want: bundle.ErrUnknownFormat, msg: "header flags 0x0001"},
		{name: "not a bundle", data: []byte("#!/bin/sh\necho this is not a bundle\n"), want: bundle.ErrNotBundle, msg: "bad magic"},
		{name: "corrupt chunk", data: patch(good, imageStart+2*bundle.MinChunkSize+9, good[imageStart+2*bundle.MinChunkSize+9]^0xff), want: bundle.ErrCorrupt, msg: "image rootfs chunk 2 (bytes 8192-12287): SHA-256 does not match"},
		{name: "flipped signature byte", data: patch(good, bundle.HeaderSize+envLen-20, 'A'), want: trust.ErrBadSignature, msg: "does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vf := tc.verifier
			if vf == nil {
				vf = v
			}
			var src io.Reader = bytes.NewReader(tc.data)
			if tc.stream {
				src = io.MultiReader(src)
			}
			_, _, err := readAll(t, src, vf, tc.policy)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err is not one line: %q", err)
			}
		})
	}
}

func TestReaderChecksBeforeImageBytes(t *testing.T) {
	// An installer must be able to refuse a bundle before it writes a byte
	// of it: every refusal of the signed head comes from NewReader.
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	good := build(t, tr, tr.Targets...)
	_, err := bundle.NewReader(context.Background(), bytes.NewReader(good), tr.Verifier(t), bundle.Policy{InstalledCounter: 99})
	if !errors.Is(err, bundle.ErrDowngrade) {
		t.Fatalf("NewReader err = %v, want ErrDowngrade", err)
	}
}

func TestImageReaderResume(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	path := bundletest.Image(t, 5*bundle.MinChunkSize+33, 3)
	_, m := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: path}}, tr.Targets...)
	img, _ := os.ReadFile(path)
	im := &m.Images[0]
	for from := 0; from <= len(im.Chunks); from++ {
		off := min(int64(from)*im.ChunkSize, int64(len(img)))
		r, err := bundle.NewImageReader(bytes.NewReader(img[off:]), im, from, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("resume at chunk %d: %v", from, err)
		}
		if !bytes.Equal(got, img[off:]) {
			t.Fatalf("resume at chunk %d: bytes differ", from)
		}
		if r.Chunk() != len(im.Chunks) {
			t.Errorf("resume at chunk %d: Chunk() = %d, want %d", from, r.Chunk(), len(im.Chunks))
		}
	}
	// Resuming from the wrong offset is caught at the first chunk.
	r, _ := bundle.NewImageReader(bytes.NewReader(img[im.ChunkSize:]), im, 2, nil)
	if _, err := io.ReadAll(r); !errors.Is(err, bundle.ErrCorrupt) {
		t.Errorf("misaligned resume: err = %v, want ErrCorrupt", err)
	}
}

func TestExplode(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	v := tr.Verifier(t)
	rootfs := bundletest.Image(t, 70_000, 1)
	boot := bundletest.Image(t, 9_000, 2)
	files := []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: rootfs}, {Name: "boot", Slot: "boot", Path: boot}}
	data, m := bundletest.Bundle(t, bundletest.Release(), files, tr.Targets...)

	r, err := bundle.NewReader(context.Background(), bytes.NewReader(data), v, bundle.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	dir := bundle.Dir(t.TempDir())
	o, err := bundle.Explode(context.Background(), r, dir)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	if want := "bundles/" + d.String() + ".dsse.json"; o.Envelope != want {
		t.Errorf("envelope key = %q, want %q", o.Envelope, want)
	}
	// Reassembling the objects gives back the single file, byte for byte.
	var again bytes.Buffer
	env, err := os.ReadFile(filepath.Join(string(dir), o.Envelope))
	if err != nil {
		t.Fatal(err)
	}
	var imgs []bundle.ImageFile
	for _, f := range files {
		imgs = append(imgs, bundle.ImageFile{Name: f.Name, Path: filepath.Join(string(dir), o.Images[f.Name])})
		b, _ := os.ReadFile(f.Path)
		if want := "blobs/sha256/" + bundle.Digest(sha256.Sum256(b)).String(); o.Images[f.Name] != want {
			t.Errorf("image %s key = %q, want %q", f.Name, o.Images[f.Name], want)
		}
	}
	if err := bundle.Write(context.Background(), &again, env, m, imgs, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Error("bundle reassembled from objects differs from the original")
	}
	if _, err := dir.Open("../escape"); err == nil {
		t.Error("Dir opened a key outside itself")
	}
}

func TestManifestValidation(t *testing.T) {
	base := func() *bundle.Manifest {
		return &bundle.Manifest{
			Schema: bundle.Schema, Product: "p", Version: "1.0.0", DeviceTypes: []string{"d"},
			Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Images:  []bundle.Image{{Name: "rootfs", Slot: "rootfs", Size: 1, ChunkSize: bundle.MinChunkSize, Chunks: make([]bundle.Digest, 1)}},
		}
	}
	cases := []struct {
		name   string
		mutate func(m *bundle.Manifest)
		want   error
		msg    string
	}{
		{"valid", func(*bundle.Manifest) {}, nil, ""},
		{"schema 2", func(m *bundle.Manifest) { m.Schema = 2 }, bundle.ErrUnknownFormat, "manifest schema 2"},
		{"version with v", func(m *bundle.Manifest) { m.Version = "v1.0.0" }, bundle.ErrCorrupt, `version "v1.0.0"`},
		{"short version", func(m *bundle.Manifest) { m.Version = "1.0" }, bundle.ErrCorrupt, `version "1.0"`},
		{"no device types", func(m *bundle.Manifest) { m.DeviceTypes = nil }, bundle.ErrCorrupt, "0 device types"},
		{"duplicate device type", func(m *bundle.Manifest) { m.DeviceTypes = []string{"d", "d"} }, bundle.ErrCorrupt, `"d" listed twice`},
		{"duplicate image", func(m *bundle.Manifest) { m.Images = append(m.Images, m.Images[0]) }, bundle.ErrCorrupt, `image "rootfs" listed twice`},
		{"chunk count", func(m *bundle.Manifest) { m.Images[0].Size = bundle.MinChunkSize + 1 }, bundle.ErrCorrupt, "1 chunk digests for 4097 bytes"},
		{"chunk size not a power of two", func(m *bundle.Manifest) { m.Images[0].ChunkSize = 5000 }, bundle.ErrCorrupt, "chunk size 5000"},
		{"oversized image", func(m *bundle.Manifest) { m.Images[0].Size = bundle.MaxImageSize + 1 }, bundle.ErrOversized, "size 1099511627777"},
		{"local time", func(m *bundle.Manifest) { m.Created = m.Created.Local().Add(time.Nanosecond) }, bundle.ErrCorrupt, "created"},
		{"bad slot", func(m *bundle.Manifest) { m.Images[0].Slot = "Root FS" }, bundle.ErrCorrupt, `slot "Root FS"`},
		{"control char in provenance", func(m *bundle.Manifest) { m.Provenance = &bundle.Provenance{Tag: "v1\n"} }, bundle.ErrCorrupt, "provenance"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.mutate(m)
			err := m.Validate()
			if !errors.Is(err, tc.want) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("Validate() = %v, want %v saying %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestParseManifestIsStrict(t *testing.T) {
	m := &bundle.Manifest{
		Schema: bundle.Schema, Product: "p", Version: "1.0.0", DeviceTypes: []string{"d"},
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Images:  []bundle.Image{{Name: "rootfs", Slot: "rootfs", Size: 1, ChunkSize: bundle.MinChunkSize, Chunks: make([]bundle.Digest, 1)}},
	}
	canon, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.ParseManifest(canon); err != nil {
		t.Fatalf("canonical manifest refused: %v", err)
	}
	for name, data := range map[string]string{
		"case-folded key":  strings.Replace(string(canon), `"product"`, `"Product"`, 1),
		"unknown field":    strings.Replace(string(canon), `{"schema":1,`, `{"schema":1,"x":1,`, 1),
		"whitespace":       strings.Replace(string(canon), `,"product"`, `, "product"`, 1),
		"uppercase digest": strings.Replace(string(canon), `"0000`, `"000A`, 1),
		"trailing object":  string(canon) + "{}",
	} {
		if _, err := bundle.ParseManifest([]byte(data)); !errors.Is(err, bundle.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}
