package bundle

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/gitfleet/gitfleet/firmware/trust"
)

// Magic starts every single-file bundle. Like PNG's signature it has a high
// byte and a CR LF pair, so 7-bit and newline-translating transfers are
// caught at the first bytes.
var Magic = [8]byte{0x89, 'G', 'F', 'B', '\r', '\n', 0x1a, '\n'}

// FormatVersion is the single-file container version this package writes.
const FormatVersion = 1

// HeaderSize is the size of the fixed header before the envelope.
const HeaderSize = 16

// header is the fixed start of a single-file bundle:
//
//	[0:8]   Magic
//	[8:10]  format version, big endian
//	[10:12] flags, big endian; no flag is defined, so it must be zero
//	[12:16] length of the signed envelope that follows, big endian
type header struct {
	version     uint16
	envelopeLen uint32
}

func (h header) encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic[:])
	binary.BigEndian.PutUint16(b[8:], h.version)
	binary.BigEndian.PutUint32(b[12:], h.envelopeLen)
	return b
}

func parseHeader(b []byte) (header, error) {
	if !bytes.Equal(b[:8], Magic[:]) {
		return header{}, fmt.Errorf("%w: bad magic % x", ErrNotBundle, b[:8])
	}
	h := header{
		version:     binary.BigEndian.Uint16(b[8:]),
		envelopeLen: binary.BigEndian.Uint32(b[12:]),
	}
	if h.version != FormatVersion {
		return header{}, fmt.Errorf("%w: format version %d (this reader knows %d)", ErrUnknownFormat, h.version, FormatVersion)
	}
	if flags := binary.BigEndian.Uint16(b[10:]); flags != 0 {
		return header{}, fmt.Errorf("%w: header flags %#04x: no flag is defined in format %d", ErrUnknownFormat, flags, FormatVersion)
	}
	if h.envelopeLen == 0 || h.envelopeLen > trust.MaxEnvelope {
		return header{}, fmt.Errorf("%w: envelope length %d outside 1..%d", ErrOversized, h.envelopeLen, trust.MaxEnvelope)
	}
	return h, nil
}
