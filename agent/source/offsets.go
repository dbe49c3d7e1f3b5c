package source

import (
	"encoding/json"
	"fmt"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// imageOffsets returns where each image starts in the single-file form of
// the bundle whose envelope is env, and where the bundle ends. It reads the
// manifest without verifying it: offsets only say where to read, and every
// byte read is verified against the verified manifest later.
//
// It decodes only the images' names and sizes, without the checks of
// canonical form. Every action of an install opens the source again, and
// a full parse of envelope and manifest each time (a digest per chunk,
// re-encoding both to compare) was most of the garbage an install's memory
// peaked on, growing with the image's size.
func imageOffsets(env []byte) (map[string]int64, int64, error) {
	payload, err := trust.Payload(env)
	if err != nil {
		return nil, 0, err
	}
	var layout struct {
		Images []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"images"`
	}
	if err := json.Unmarshal(payload, &layout); err != nil {
		return nil, 0, fmt.Errorf("%w: manifest: %v", bundle.ErrCorrupt, err)
	}
	offsets := map[string]int64{}
	off := int64(bundle.HeaderSize + len(env))
	for _, im := range layout.Images {
		if err := bundle.CheckImageSize(im.Name, im.Size); err != nil {
			return nil, 0, err
		}
		offsets[im.Name] = off
		off += im.Size
	}
	return offsets, off, nil
}
