package source

import (
	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// imageOffsets returns where each image starts in the single-file form of
// the bundle whose envelope is env, and where the bundle ends. It reads the
// manifest without verifying it: offsets only say where to read, and every
// byte read is verified against the verified manifest later.
func imageOffsets(env []byte) (map[string]int64, int64, error) {
	_, payload, _, err := trust.Inspect(env)
	if err != nil {
		return nil, 0, err
	}
	m, err := bundle.ParseManifest(payload)
	if err != nil {
		return nil, 0, err
	}
	offsets := map[string]int64{}
	off := int64(bundle.HeaderSize + len(env))
	for _, im := range m.Images {
		offsets[im.Name] = off
		off += im.Size
	}
	return offsets, off, nil
}
