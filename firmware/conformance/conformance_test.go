package conformance_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/firmware/conformance"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

func TestWritersConform(t *testing.T) {
	ctx := context.Background()
	tr := bundletest.NewTrust(t, 3, 2, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	v := tr.Verifier(t)
	files := []bundle.ImageFile{
		{Name: "rootfs", Slot: "rootfs", Path: bundletest.Image(t, 200_000, 1)},
		{Name: "boot", Slot: "boot", Path: bundletest.Image(t, 4096, 2)},
		{Name: "empty", Slot: "data", Path: bundletest.Image(t, 0, 3)},
	}
	data, m := bundletest.Bundle(t, bundletest.Release(), files, tr.Targets[:2]...)
	path := filepath.Join(t.TempDir(), "b.gfb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := conformance.CheckFile(ctx, path, v); err != nil {
		t.Fatalf("Create output: %v", err)
	}

	dir := bundle.Dir(t.TempDir())
	r, err := bundle.NewReader(ctx, bytes.NewReader(data), v, bundle.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Explode(ctx, r, dir); err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	if err := conformance.CheckObjects(ctx, dir, d, v); err != nil {
		t.Fatalf("Explode output: %v", err)
	}
}

// TestCheckerCatchesWrongWholeDigest builds a bundle whose chunks are right
// but whose whole-file digest is not: a reader accepts it, the checker must
// not.
func TestCheckerCatchesWrongWholeDigest(t *testing.T) {
	ctx := context.Background()
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	v := tr.Verifier(t)
	files := []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: bundletest.Image(t, 10_000, 1)}}
	m, err := bundle.Plan(ctx, bundletest.Release(), files, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Images[0].SHA256[0] ^= 1
	payload, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	env, err := trust.Sealer(tr.Targets).Sign(ctx, bundle.PayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bundle.Write(ctx, &buf, env, m, files, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.gfb")
	os.WriteFile(path, buf.Bytes(), 0o644)
	err = conformance.CheckFile(ctx, path, v)
	if err == nil || !strings.Contains(err.Error(), "whole-file SHA-256") {
		t.Fatalf("CheckFile = %v, want a whole-file SHA-256 mismatch", err)
	}

	dir := bundle.Dir(t.TempDir())
	r, err := bundle.NewReader(ctx, bytes.NewReader(buf.Bytes()), v, bundle.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Explode(ctx, r, dir); err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	if err := conformance.CheckObjects(ctx, dir, d, v); err == nil {
		t.Fatal("CheckObjects accepted a wrong whole-file digest")
	}
}
