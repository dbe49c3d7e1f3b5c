package objects

import (
	"fmt"
	"strings"
	"time"
)

// Info describes a stored object.
type Info struct {
	Size    int64
	ModTime time.Time
}

// DefaultPresignTTL is how long a URL from PresignGet lasts when neither the
// call nor the store's configuration says otherwise. A download that started
// in time goes on past it; resuming after it needs a fresh URL.
const DefaultPresignTTL = time.Hour

// Presigned URLs last from one second to seven days: the limits of S3's
// signature version 4, which Local keeps too so that a configuration works
// with either store.
const (
	MinPresignTTL = time.Second
	MaxPresignTTL = 7 * 24 * time.Hour
)

// checkTTL returns an error if ttl is out of the presign limits.
func checkTTL(ttl time.Duration) error {
	if ttl < MinPresignTTL || ttl > MaxPresignTTL {
		return fmt.Errorf("presign TTL %v is out of range: want %v to %v", ttl, MinPresignTTL, MaxPresignTTL)
	}
	return nil
}

// checkKey returns an error unless key is a key of the package's grammar
// (see the package documentation). Keys never hold "..", a leading '/' or
// a backslash, so they stay below a Local's directory and an S3 prefix,
// and never name a Local's temporary files, which start with a dot.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("object key is empty")
	}
	for name := range strings.SplitSeq(key, "/") {
		if name == "" || name[0] == '.' || strings.IndexFunc(name, notKeyRune) >= 0 {
			return fmt.Errorf("object key %q is not a path of names of letters, digits, '.', '_' and '-' that do not start with a dot", key)
		}
	}
	return nil
}

func notKeyRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-')
}

// contentType is the media type an object is served with: envelopes are
// JSON, and anything else is bytes a browser must not sniff.
func contentType(key string) string {
	if strings.HasSuffix(key, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}
