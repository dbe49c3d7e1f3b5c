package objects

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
)

// MinSecret is the shortest secret a Local signs URLs with: as long as
// HMAC-SHA256's output.
const MinSecret = 32

// LocalConfig says where a Local store keeps its objects and where the
// server serves them. The zero value of each optional field means its
// default.
type LocalConfig struct {
	// Dir is the directory the objects are kept in. NewLocal creates it.
	Dir string `yaml:"dir"`
	// URL is where devices reach the store's handler, which the server
	// serves: http://192.0.2.10:8080/objects. Presigned URLs are URL with a
	// query.
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key that signs URLs, at least MinSecret
	// bytes. Empty means a random one for each NewLocal, and so URLs that
	// stop working when the server restarts.
	Secret []byte `yaml:"-"`
	// PresignTTL is how long a URL from PresignGet lasts when the call does
	// not say; default DefaultPresignTTL.
	PresignTTL time.Duration `yaml:"presign_ttl"`
	// Log, if set, gets the errors that the handler answers 500 for.
	Log *slog.Logger `yaml:"-"`
}

// Validate returns an error naming the field and the fix if c cannot
// describe a Local store.
func (c LocalConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.Dir == "":
		return errors.New("local objects config: dir is empty: give a directory, as in gitfleet-data/objects")
	case c.URL == "":
		return errors.New("local objects config: url is empty: give the URL devices reach the server's object handler at, as in http://192.0.2.10:8080/objects")
	case err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("local objects config: url %q is not an http:// or https:// URL without a query: give one, as in http://192.0.2.10:8080/objects", c.URL)
	case len(c.Secret) != 0 && len(c.Secret) < MinSecret:
		return fmt.Errorf("local objects config: the secret has %d bytes: give at least %d random bytes, or none for a random one", len(c.Secret), MinSecret)
	case c.PresignTTL != 0 && checkTTL(c.PresignTTL) != nil:
		return fmt.Errorf("local objects config: presign_ttl is %v: want %v to %v", c.PresignTTL, MinPresignTTL, MaxPresignTTL)
	}
	return nil
}

// A Local store keeps objects in a directory, one file per object at its
// key, and serves them over HTTP: it is the http.Handler of the URLs that
// PresignGet makes. It is safe for concurrent use.
type Local struct {
	dir    bundle.Dir
	url    string
	secret []byte
	ttl    time.Duration
	log    *slog.Logger
}

// NewLocal returns a store on cfg.Dir, creating the directory if need be.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("local objects: %w", err)
	}
	l := &Local{dir: bundle.Dir(cfg.Dir), url: cfg.URL, secret: cfg.Secret, ttl: cfg.PresignTTL, log: cfg.Log}
	if len(l.secret) == 0 {
		l.secret = make([]byte, MinSecret)
		rand.Read(l.secret) // never fails
	}
	if l.ttl == 0 {
		l.ttl = DefaultPresignTTL
	}
	return l, nil
}

// PutObject stores size bytes from r at key, unless a file of that size is
// there already: keys are content addressed, so it holds the same bytes,
// and r is left unread. The file appears only complete and synced (see
// bundle.Dir), and a failed or cancelled write leaves nothing.
func (l *Local) PutObject(ctx context.Context, key string, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("put object %s: negative size %d", key, size)
	}
	info, err := l.Stat(ctx, key)
	switch {
	case err == nil && info.Size == size:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("put object %s: %w", key, err)
	}
	if err := l.dir.PutObject(ctx, key, r, size); err != nil {
		return fmt.Errorf("put object %s: %w", key, err)
	}
	return nil
}

// Stat returns the size and modification time of the object at key.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	f, fi, err := l.open(key)
	if err != nil {
		return Info{}, err
	}
	f.Close()
	return Info{Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open returns the object at key from byte offset on. An offset equal to
// the size gives an empty reader, a larger one an error.
func (l *Local) Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	f, fi, err := l.open(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("open object %s: offset %d is outside its %d bytes", key, offset, fi.Size())
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open object %s: %w", key, err)
	}
	return f, nil
}

// open opens the regular file of the object at key. Anything else at its
// path, or a file where a directory of the path should be, is no object.
func (l *Local) open(key string) (*os.File, fs.FileInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, nil, err
	}
	notExist := &fs.PathError{Op: "open", Path: key, Err: fs.ErrNotExist}
	f, err := l.dir.Open(key)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil, notExist
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open object %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("open object %s: %w", key, err)
		}
		return nil, nil, notExist
	}
	return f, fi, nil
}

// Query parameters of a Local's URLs.
const (
	paramKey       = "key"
	paramExpires   = "expires"
	paramSignature = "signature"
)

// PresignGet returns a URL of the store's handler that serves the object
// at key until ttl has passed (the configured presign_ttl if ttl is 0):
// the store's URL with the key, the expiry in Unix seconds, rounded up,
// and an HMAC-SHA256 of both. The object need not exist yet.
func (l *Local) PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = l.ttl
	}
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("presign object %s: %w", key, err)
	}
	expires := time.Now().Add(ttl + time.Second - 1).Unix()
	u, err := url.Parse(l.url) // Validate parsed it
	if err != nil {
		return nil, fmt.Errorf("presign object %s: %w", key, err)
	}
	u.RawQuery = url.Values{
		paramKey:       {key},
		paramExpires:   {strconv.FormatInt(expires, 10)},
		paramSignature: {hex.EncodeToString(l.sign(key, expires))},
	}.Encode()
	return u, nil
}

// sign returns the signature of a URL for key until expires. The key has
// no newline (checkKey), so the signed text is one reading only.
func (l *Local) sign(key string, expires int64) []byte {
	m := hmac.New(sha256.New, l.secret)
	fmt.Fprintf(m, "gitfleet objects GET v1\n%s\n%d", key, expires)
	return m.Sum(nil)
}

// ServeHTTP serves GET and HEAD requests for the URLs PresignGet makes,
// with Range requests (http.ServeContent). It answers 403 to a URL whose
// signature does not match its key and expiry, or that has expired, and
// 404 to a signed URL of a missing object.
func (l *Local) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	key := q.Get(paramKey)
	expires, err := strconv.ParseInt(q.Get(paramExpires), 10, 64)
	sig, serr := hex.DecodeString(q.Get(paramSignature))
	// hmac.Equal takes the same time wherever the signatures differ.
	if err != nil || serr != nil || checkKey(key) != nil || !hmac.Equal(sig, l.sign(key, expires)) {
		http.Error(w, "forbidden: the URL's signature does not match", http.StatusForbidden)
		return
	}
	if time.Now().Unix() >= expires {
		http.Error(w, "forbidden: the URL has expired", http.StatusForbidden)
		return
	}
	f, fi, err := l.open(key)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "no such object", http.StatusNotFound)
		return
	}
	if err != nil {
		if l.log != nil {
			l.log.Error("serve object", "err", err)
		}
		http.Error(w, "cannot read the object", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", contentType(key))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
