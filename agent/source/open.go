package source

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
)

// A Source serves one bundle (see the update engine).
type Source interface {
	Envelope(ctx context.Context) ([]byte, error)
	Image(ctx context.Context, im *bundle.Image, offset int64) (io.ReadCloser, error)
	Close() error
}

const releaseScheme = "gitfleet-release:"

// ReleaseRef encodes where an advertised release's bundle is as a single
// string: the engine persists it in its journal and reopens it on resume.
func ReleaseRef(r *gitfleetv1.Release) string {
	loc := releaseLocation{Manifest: r.GetManifestUrl(), Base: r.GetBaseUrl(), Images: map[string]string{}}
	for _, im := range r.GetImages() {
		loc.Images[im.GetName()] = im.GetUrl()
	}
	b, _ := json.Marshal(loc)
	return releaseScheme + base64.RawURLEncoding.EncodeToString(b)
}

type releaseLocation struct {
	Manifest string            `json:"manifest"`
	Base     string            `json:"base,omitempty"`
	Images   map[string]string `json:"images,omitempty"`
}

// Open opens ref: a ReleaseRef, an http(s) URL of a single-file bundle, or
// a local path.
func Open(ref string, client *http.Client) (Source, error) {
	switch {
	case strings.HasPrefix(ref, releaseScheme):
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(ref, releaseScheme))
		if err != nil {
			return nil, fmt.Errorf("release reference: %w", err)
		}
		var loc releaseLocation
		if err := json.Unmarshal(b, &loc); err != nil {
			return nil, fmt.Errorf("release reference: %w", err)
		}
		if loc.Manifest == "" {
			return nil, fmt.Errorf("release reference: no manifest URL")
		}
		s := NewHTTPObjects(loc.Manifest, loc.Images, client)
		s.base = loc.Base
		return s, nil
	case strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://"):
		return NewHTTPFile(ref, client), nil
	}
	return OpenFile(ref)
}

// blobURL resolves an image without a URL of its own against base, by its
// key in the object layout (blobs/sha256/<hex>).
func blobURL(base string, im *bundle.Image) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/")
	if err != nil {
		return "", fmt.Errorf("base URL: %w", err)
	}
	return u.JoinPath("blobs", "sha256", im.SHA256.String()).String(), nil
}
