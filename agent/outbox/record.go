package outbox

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// A record file holds one event: a 12-byte header, then the DeviceEvent
// exactly as it is published. FORMAT.md describes the layout and why a
// power cut cannot leave a half-written record that reads as valid.
const (
	magic      = "GFE1"
	headerSize = 12

	// recordPrefix begins the name of every record file; files whose name
	// starts with "." are temporary files of an interrupted write.
	recordPrefix = "e-"
	// corruptSuffix is appended to a record file that fails to parse: it is
	// kept for a person to look at, never sent and never counted.
	corruptSuffix = ".corrupt"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record file that is not a valid record.
var errCorrupt = errors.New("corrupt record")

// encodeRecord returns the record file content for payload, a serialized
// DeviceEvent.
func encodeRecord(payload []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(payload))
	copy(b, magic)
	binary.BigEndian.PutUint32(b[4:8], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// decodeRecord parses the content of a record file and returns its payload
// and the event it holds. It accepts exactly what encodeRecord writes for a
// valid event: any other byte string, such as a file cut short or a sector
// of garbage, is an error wrapping errCorrupt.
func decodeRecord(b []byte) (payload []byte, ev *gitfleetv1.DeviceEvent, err error) {
	if len(b) < headerSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errCorrupt, len(b), headerSize)
	}
	if string(b[:4]) != magic {
		return nil, nil, fmt.Errorf("%w: magic %q, want %q", errCorrupt, b[:4], magic)
	}
	n := binary.BigEndian.Uint32(b[4:8])
	if n > gitfleetv1.MaxMessageSize {
		return nil, nil, fmt.Errorf("%w: length %d, over the limit of %d", errCorrupt, n, gitfleetv1.MaxMessageSize)
	}
	if got, want := uint64(len(b)-headerSize), uint64(n); got != want {
		return nil, nil, fmt.Errorf("%w: %d payload bytes, the header says %d", errCorrupt, got, want)
	}
	payload = b[headerSize:]
	if got, want := crc32.Checksum(payload, castagnoli), binary.BigEndian.Uint32(b[8:12]); got != want {
		return nil, nil, fmt.Errorf("%w: CRC-32C %08x, the header says %08x", errCorrupt, got, want)
	}
	ev, err = gitfleetv1.DecodeDeviceEvent(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return payload, ev, nil
}

// recordName returns the file name of the record of (stream, seq):
// "e-" + 16 hex digits of SHA-256(stream) + "-" + seq in 20 decimal digits.
// Stream ids may hold any non-space character, "/" included, so the name
// carries a hash of the stream rather than the stream itself; zero-padding
// makes the names of one stream sort in sequence order.
func recordName(stream string, seq uint64) string {
	return fmt.Sprintf("%s%s-%020d", recordPrefix, streamKey(stream), seq)
}

// streamKey is the part of a record name that names its stream.
func streamKey(stream string) string {
	sum := sha256.Sum256([]byte(stream))
	return hex.EncodeToString(sum[:8])
}

// parseRecordName returns the stream key and sequence of a record file
// name, and whether name is one.
func parseRecordName(name string) (key string, seq uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, recordPrefix)
	if !ok || len(rest) != 16+1+20 || rest[16] != '-' {
		return "", 0, false
	}
	key = rest[:16]
	if _, err := hex.DecodeString(key); err != nil || strings.ToLower(key) != key {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(rest[17:], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return key, seq, true
}
