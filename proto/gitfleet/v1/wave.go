package gitfleetv1

import (
	"crypto/sha256"
	"encoding/binary"
)

// waveBucketDomain separates wave-bucket hashes from every other use of
// SHA-256 in gitfleet, and versions the bucket function.
const waveBucketDomain = "gitfleet wave bucket v1\x00"

// WaveBucket returns the rollout bucket, 0 to MaxThreshold-1, of the device
// deviceID in fleet. The server and the devices must compute it alike, so it
// is part of the protocol and must never change: the first 8 bytes of
//
//	SHA-256("gitfleet wave bucket v1" NUL fleet NUL deviceID)
//
// read as a big-endian integer, modulo 10000. Buckets are spread evenly and
// do not depend on the release, so successive rollouts reach devices in the
// same order.
func WaveBucket(fleet, deviceID string) uint32 {
	h := sha256.New()
	h.Write([]byte(waveBucketDomain))
	h.Write([]byte(fleet))
	h.Write([]byte{0})
	h.Write([]byte(deviceID))
	sum := h.Sum(nil)
	return uint32(binary.BigEndian.Uint64(sum[:8]) % MaxThreshold)
}

// Includes reports whether the wave reaches a device in bucket: whether
// bucket is below the wave's threshold. A nil wave reaches no device.
func (w *Wave) Includes(bucket uint32) bool {
	return bucket < w.GetThreshold()
}
