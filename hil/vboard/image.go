package vboard

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Magic starts every image the virtual board boots. FORMAT.md describes the
// format; hil/example-firmware/build.sh writes the same bytes.
const Magic = "GITFLEET-VBOARD-IMAGE"

// HeaderSize is the size of an image's header block: the header line,
// padded with newlines.
const HeaderSize = 512

// A Kind is what an image does when the virtual board boots it.
type Kind string

// The kinds of image.
const (
	// Healthy boots the operating system: the real gitfleet-agent, whose
	// health check passes.
	Healthy Kind = "healthy"
	// Broken never brings the kernel up: it panics and hangs until the
	// watchdog resets the board.
	Broken Kind = "broken"
	// Unhealthy boots the operating system, but the agent's health check
	// fails, as when the new release's application does not start.
	Unhealthy Kind = "unhealthy"
)

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Healthy, Broken, Unhealthy:
		return k, nil
	}
	return "", fmt.Errorf("image kind %q: want healthy, broken or unhealthy", s)
}

// An Image is the header of a virtual board image.
type Image struct {
	Kind    Kind
	Version string
	// Payload is how many bytes follow the header block; SHA256 is their
	// hash, which the board's "U-Boot" checks as U-Boot checks a FIT
	// image's hashes, so a torn write never boots.
	Payload int64
	SHA256  string
}

// ErrNoImage: the bytes do not start with an image header, as in a blank
// or half-written slot.
var ErrNoImage = errors.New("not a gitfleet vboard image")

// WriteImage writes an image of kind and version, size bytes in all
// (header block included, at least HeaderSize+1), to w. The payload is the
// line "gitfleet vboard image KIND VERSION\n" repeated and cut to size, so
// that images of different releases differ in every chunk.
func WriteImage(w io.Writer, kind Kind, version string, size int64) error {
	if _, err := ParseKind(string(kind)); err != nil {
		return err
	}
	if version == "" || strings.ContainsAny(version, " \t\r\n") {
		return fmt.Errorf("image version %q: want one word, e.g. 1.4.0", version)
	}
	if size <= HeaderSize {
		return fmt.Errorf("image size %d: want more than the %d-byte header", size, HeaderSize)
	}
	payload := payloadOf(kind, version, size-HeaderSize)
	sum := sha256.Sum256(payload)
	line := fmt.Sprintf("%s v1 kind=%s version=%s payload=%d sha256=%s\n", Magic, kind, version, len(payload), hex.EncodeToString(sum[:]))
	head := append([]byte(line), bytes.Repeat([]byte("\n"), HeaderSize-len(line))...)
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}

func payloadOf(kind Kind, version string, n int64) []byte {
	unit := []byte(fmt.Sprintf("gitfleet vboard image %s %s\n", kind, version))
	return bytes.Repeat(unit, int(n)/len(unit)+1)[:n]
}

// ParseHeader parses an image's header line (without the newline).
func ParseHeader(line string) (Image, error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != Magic {
		return Image{}, ErrNoImage
	}
	if f[1] != "v1" {
		return Image{}, fmt.Errorf("image format %q: this board reads v1", f[1])
	}
	var im Image
	seen := map[string]bool{}
	for _, kv := range f[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return Image{}, fmt.Errorf("image header: %q: want each of kind=, version=, payload=, sha256= once", kv)
		}
		seen[k] = true
		switch k {
		case "kind":
			kind, err := ParseKind(v)
			if err != nil {
				return Image{}, err
			}
			im.Kind = kind
		case "version":
			im.Version = v
		case "payload":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return Image{}, fmt.Errorf("image header: payload=%q: want a byte count", v)
			}
			im.Payload = n
		case "sha256":
			if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
				return Image{}, fmt.Errorf("image header: sha256=%q: want 64 hex digits", v)
			}
			im.SHA256 = v
		default:
			// Later minor versions may add fields; a v1 reader skips them.
		}
	}
	for _, k := range []string{"kind", "version", "payload", "sha256"} {
		if !seen[k] {
			return Image{}, fmt.Errorf("image header: %s= is missing", k)
		}
	}
	return im, nil
}

// ReadImage reads the image at the start of r, as the board's bootloader
// loads a slot: the header, then the payload, whose hash must match.
func ReadImage(r io.Reader) (Image, error) {
	head := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, head); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Image{}, ErrNoImage
		}
		return Image{}, fmt.Errorf("read image header: %w", err)
	}
	line, _, ok := bytes.Cut(head, []byte("\n"))
	if !ok {
		return Image{}, ErrNoImage
	}
	im, err := ParseHeader(string(line))
	if err != nil {
		return Image{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(bufio.NewReader(r), im.Payload))
	if err != nil {
		return Image{}, fmt.Errorf("read image payload: %w", err)
	}
	if n != im.Payload {
		return Image{}, fmt.Errorf("image %s %s: payload is %d bytes, want %d", im.Kind, im.Version, n, im.Payload)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != im.SHA256 {
		return Image{}, fmt.Errorf("image %s %s: payload hash %s, want %s: the slot holds a torn or corrupted image", im.Kind, im.Version, got[:12], im.SHA256[:12])
	}
	return im, nil
}

// ReadImageFile reads the image at the start of the slot file path.
func ReadImageFile(path string) (Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return Image{}, fmt.Errorf("read image: %w", err)
	}
	defer f.Close()
	return ReadImage(f)
}
