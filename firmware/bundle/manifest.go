package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// PayloadType is the DSSE payload type of a signed manifest.
const PayloadType = "application/vnd.gitfleet.manifest.v1+json"

// Schema is the manifest schema version this package writes and reads.
const Schema = 1

// Limits on what a manifest may describe. They bound the memory and time a
// reader spends on a hostile bundle before any signature is checked.
const (
	MaxImages       = 16
	MinChunkSize    = 4 << 10
	MaxChunkSize    = 64 << 20
	DefaultChunk    = 1 << 20
	MaxImageSize    = 1 << 40
	maxDeviceTypes  = 64
	maxNameLength   = 64
	maxStringLength = 256
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// A Digest is a SHA-256 digest; it is written as lowercase hex.
type Digest [sha256.Size]byte

// String returns d as lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes d as lowercase hex.
func (d Digest) MarshalText() ([]byte, error) { return d.AppendText(nil) }

// AppendText appends d as lowercase hex to b.
func (d Digest) AppendText(b []byte) ([]byte, error) { return hex.AppendEncode(b, d[:]), nil }

// UnmarshalText decodes lowercase hex; any other spelling is refused so that
// one digest has one encoding. A manifest has a digest per chunk, so this
// allocates nothing.
func (d *Digest) UnmarshalText(text []byte) error {
	if len(text) != 2*sha256.Size {
		return fmt.Errorf("digest %.80q: want %d hex digits", text, 2*sha256.Size)
	}
	if _, err := hex.Decode(d[:], text); err != nil || bytes.ContainsAny(text, "ABCDEF") {
		return fmt.Errorf("digest %.80q: not lowercase hex", text)
	}
	return nil
}

// A Manifest describes a release and its images. It is the payload of the
// signed envelope at the head of every bundle.
type Manifest struct {
	Schema  int    `json:"schema"`
	Product string `json:"product"`
	// Version is the release's semantic version, without a leading "v".
	Version string `json:"version"`
	// Counter is the release counter: devices refuse a bundle whose counter
	// is lower than the one they run (anti-rollback).
	Counter     uint64      `json:"counter"`
	DeviceTypes []string    `json:"device_types"`
	Created     time.Time   `json:"created"`
	Provenance  *Provenance `json:"provenance,omitempty"`
	Images      []Image     `json:"images"`
}

// Provenance records where a release came from in Git.
type Provenance struct {
	Repository string `json:"repository,omitempty"`
	Tag        string `json:"tag,omitempty"`
	// TagObject is the id of the annotated tag object, when there is one.
	TagObject string `json:"tag_object,omitempty"`
	Commit    string `json:"commit,omitempty"`
	// Signer identifies the key that signed the tag, if its signature was
	// verified when the bundle was built.
	Signer string `json:"signer,omitempty"`
}

// An Image is one payload of a bundle, written to one slot.
type Image struct {
	Name string `json:"name"`
	// Slot is the slot class the image is written to, e.g. "rootfs".
	Slot   string `json:"slot"`
	Size   int64  `json:"size"`
	SHA256 Digest `json:"sha256"`
	// ChunkSize is the size of every chunk but the last, a power of two.
	ChunkSize int64    `json:"chunk_size"`
	Chunks    []Digest `json:"chunks"`
}

// ChunkCount returns the number of chunks an image of size bytes has.
func ChunkCount(size, chunkSize int64) int {
	return int((size + chunkSize - 1) / chunkSize)
}

// ChunkLen returns the length of chunk i of im.
func (im *Image) ChunkLen(i int) int64 {
	return min(im.ChunkSize, im.Size-int64(i)*im.ChunkSize)
}

// Image returns the image called name, or nil.
func (m *Manifest) Image(name string) *Image {
	for i := range m.Images {
		if m.Images[i].Name == name {
			return &m.Images[i]
		}
	}
	return nil
}

// PayloadSize returns the total size of the images.
func (m *Manifest) PayloadSize() int64 {
	var n int64
	for _, im := range m.Images {
		n += im.Size
	}
	return n
}

// Encode returns the canonical JSON encoding of m: the bytes that are signed
// and whose SHA-256 is the bundle digest.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Digest returns the bundle digest: the SHA-256 of m's canonical encoding.
// It names a release's content in both bundle forms, in device reports and in
// TUF targets, and adding a signature does not change it.
func (m *Manifest) Digest() (Digest, error) {
	data, err := m.Encode()
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(data), nil
}

// ParseManifest decodes and validates a manifest. It accepts only the
// canonical encoding Encode writes: unknown fields, duplicate or
// case-folded keys, and any other spelling of the same values are refused,
// so a manifest has exactly one meaning.
func ParseManifest(data []byte) (*Manifest, error) {
	var probe struct {
		Schema int `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if probe.Schema != Schema {
		return nil, fmt.Errorf("%w: manifest schema %d (this reader knows %d)", ErrUnknownFormat, probe.Schema, Schema)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	// Only Go's own encoding of m is accepted, which also refuses unknown
	// fields, other spellings of keys, repeated keys and whitespace.
	canon, err := json.Marshal(&m)
	if err != nil || !bytes.Equal(canon, data) {
		return nil, fmt.Errorf("%w: manifest is not in canonical form (unknown or misspelt fields, whitespace, uppercase hex)", ErrCorrupt)
	}
	return &m, nil
}

// Validate checks the manifest's own consistency: names, version, sizes and
// that every image's chunk index matches its size.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if m.Schema != Schema {
		return fmt.Errorf("%w: manifest schema %d (this reader knows %d)", ErrUnknownFormat, m.Schema, Schema)
	}
	if !nameRE.MatchString(m.Product) || len(m.Product) > maxNameLength {
		return bad("product %q: want lowercase letters, digits, '.', '_' or '-', at most %d", m.Product, maxNameLength)
	}
	if err := CheckVersion(m.Version); err != nil {
		return bad("%v", err)
	}
	if len(m.DeviceTypes) == 0 || len(m.DeviceTypes) > maxDeviceTypes {
		return bad("%d device types: want 1 to %d", len(m.DeviceTypes), maxDeviceTypes)
	}
	for i, t := range m.DeviceTypes {
		if !nameRE.MatchString(t) || len(t) > maxNameLength {
			return bad("device type %q: want lowercase letters, digits, '.', '_' or '-'", t)
		}
		for _, u := range m.DeviceTypes[:i] {
			if u == t {
				return bad("device type %q listed twice", t)
			}
		}
	}
	if m.Created.IsZero() || m.Created.Location() != time.UTC || m.Created.Nanosecond() != 0 {
		return bad("created %s: want a UTC time in whole seconds", m.Created)
	}
	if p := m.Provenance; p != nil {
		for _, f := range []string{p.Repository, p.Tag, p.TagObject, p.Commit, p.Signer} {
			if len(f) > maxStringLength || strings.ContainsFunc(f, isControl) {
				return bad("provenance field %.40q: at most %d printable characters", f, maxStringLength)
			}
		}
	}
	if len(m.Images) == 0 || len(m.Images) > MaxImages {
		return bad("%d images: want 1 to %d", len(m.Images), MaxImages)
	}
	for i := range m.Images {
		im := &m.Images[i]
		if !nameRE.MatchString(im.Name) || len(im.Name) > maxNameLength {
			return bad("image name %q: want lowercase letters, digits, '.', '_' or '-'", im.Name)
		}
		if m.Image(im.Name) != im {
			return bad("image %q listed twice", im.Name)
		}
		if !nameRE.MatchString(im.Slot) || len(im.Slot) > maxNameLength {
			return bad("image %s: slot %q: want lowercase letters, digits, '.', '_' or '-'", im.Name, im.Slot)
		}
		if err := CheckImageSize(im.Name, im.Size); err != nil {
			return err
		}
		if im.ChunkSize < MinChunkSize || im.ChunkSize > MaxChunkSize || im.ChunkSize&(im.ChunkSize-1) != 0 {
			return bad("image %s: chunk size %d: want a power of two from %d to %d", im.Name, im.ChunkSize, MinChunkSize, MaxChunkSize)
		}
		if want := ChunkCount(im.Size, im.ChunkSize); len(im.Chunks) != want {
			return bad("image %s: %d chunk digests for %d bytes in %d-byte chunks (want %d)", im.Name, len(im.Chunks), im.Size, im.ChunkSize, want)
		}
	}
	return nil
}

// CheckImageSize returns ErrOversized unless size is an image size a
// manifest may state, 0 to MaxImageSize bytes.
func CheckImageSize(name string, size int64) error {
	if size < 0 || size > MaxImageSize {
		return fmt.Errorf("%w: manifest: image %s: size %d outside 0..%d", ErrOversized, name, size, int64(MaxImageSize))
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CheckVersion checks that v is a semantic version without a leading "v"
// (1.4.0, 1.5.0-rc.1).
func CheckVersion(v string) error {
	if strings.HasPrefix(v, "v") || !semver.IsValid("v"+v) || semver.Canonical("v"+v) != "v"+strings.SplitN(v, "+", 2)[0] {
		return fmt.Errorf("version %q: want a semantic version like 1.4.0 or 1.5.0-rc.1", v)
	}
	return nil
}

// CompareVersions compares two versions accepted by CheckVersion.
func CompareVersions(a, b string) int { return semver.Compare("v"+a, "v"+b) }

// Errors a caller decides on; each is wrapped with what exactly was wrong.
var (
	// ErrNotBundle: the data does not start with the bundle magic.
	ErrNotBundle = errors.New("not a gitfleet bundle")
	// ErrUnknownFormat: a format or schema version this reader does not know.
	ErrUnknownFormat = errors.New("unknown bundle format")
	// ErrCorrupt: bytes that do not match what was signed, or that break the
	// format.
	ErrCorrupt = errors.New("corrupt bundle")
	// ErrTruncated: the data ends before the bundle does.
	ErrTruncated = errors.New("truncated bundle")
	// ErrOversized: a length beyond the format's limits or beyond the data.
	ErrOversized = errors.New("oversized bundle field")
	// ErrDowngrade: the bundle's release counter is lower than the installed one.
	ErrDowngrade = errors.New("downgrade refused")
	// ErrIncompatible: the bundle does not list the device's type.
	ErrIncompatible = errors.New("incompatible device type")
)
