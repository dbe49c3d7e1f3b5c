package objects_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/objects"
)

// store is what the server uses of either store.
type store interface {
	bundle.ObjectWriter
	Stat(ctx context.Context, key string) (objects.Info, error)
	Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error)
	PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error)
}

var (
	_ store = (*objects.S3)(nil)
	_ store = (*objects.Local)(nil)
)

// A fixture is a fresh, empty store of one kind.
type fixture struct {
	store store
	// stored lists what the store holds, complete or not: objects, and
	// S3's unfinished uploads or Local's temporary files.
	stored func(t *testing.T) []string
}

// backends are the kinds of store every behaviour is checked on.
var backends = []struct {
	name string
	new  func(t *testing.T) fixture
}{
	{"s3", newS3Fixture},
	{"local", newLocalFixture},
}

// forEach runs test in parallel on a fresh store of each kind.
func forEach(t *testing.T, test func(t *testing.T, f fixture)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.new(t))
		})
	}
}

// s3Config returns the configuration of a store on bucket b, with the
// smallest part size S3 allows, so that 5 MiB and more is a multipart upload.
func s3Config(b testenv.Bucket) objects.S3Config {
	return objects.S3Config{
		Endpoint:  b.Endpoint,
		Region:    b.Region,
		Bucket:    b.Name,
		AccessKey: b.AccessKey,
		SecretKey: b.SecretKey,
		PartSize:  objects.MinPartSize,
	}
}

func newS3Fixture(t *testing.T) fixture {
	b := testenv.S3(t)
	s, err := objects.NewS3(t.Context(), s3Config(b))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{store: s, stored: func(t *testing.T) []string { return bucketContents(t, b, "") }}
}

// bucketContents lists the keys of the objects under prefix in bucket b, and
// of its unfinished multipart uploads, marked so.
func bucketContents(t *testing.T, b testenv.Bucket, prefix string) []string {
	t.Helper()
	c := b.Client(t)
	var keys []string
	for o := range c.ListObjects(t.Context(), b.Name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list bucket %s: %v", b.Name, o.Err)
		}
		keys = append(keys, o.Key)
	}
	for u := range c.ListIncompleteUploads(t.Context(), b.Name, prefix, true) {
		if u.Err != nil {
			t.Fatalf("list unfinished uploads of bucket %s: %v", b.Name, u.Err)
		}
		keys = append(keys, "unfinished upload of "+u.Key)
	}
	slices.Sort(keys)
	return keys
}

// newLocal returns a Local store with configuration cfg, in a temp
// directory unless cfg says otherwise, and served under /objects by a test
// HTTP server.
func newLocal(t testing.TB, cfg objects.LocalConfig) *objects.Local {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.URL = "http://" + srv.Listener.Addr().String() + "/objects"
	l, err := objects.NewLocal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/objects", l)
	srv.Config.Handler = mux
	srv.Start()
	return l
}

func newLocalFixture(t *testing.T) fixture {
	dir := t.TempDir()
	return fixture{store: newLocal(t, objects.LocalConfig{Dir: dir}), stored: func(t *testing.T) []string {
		var files []string
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, path)
				files = append(files, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}}
}

// testBundle is a signed bundle and what it holds.
type testBundle struct {
	data   []byte            // the single file
	m      *bundle.Manifest  //
	trust  *bundletest.Trust // whose targets keys signed it
	images map[string][]byte // image name → bytes
}

// newBundle makes a bundle of release rel, signed by tr, with an image
// for each of sizes: rootfs, boot, then data, with the bytes of seeds.
func newBundle(t testing.TB, tr *bundletest.Trust, rel bundle.Release, sizes []int64, seeds []uint64) testBundle {
	t.Helper()
	b := testBundle{trust: tr, images: map[string][]byte{}}
	var files []bundle.ImageFile
	for i, size := range sizes {
		name := []string{"rootfs", "boot", "data"}[i]
		path := bundletest.Image(t, size, seeds[i])
		files = append(files, bundle.ImageFile{Name: name, Slot: name, Path: path})
		var err error
		if b.images[name], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	b.data, b.m = bundletest.Bundle(t, rel, files, tr.Targets...)
	return b
}

// explode stores b in s in the object layout.
func explode(t testing.TB, s bundle.ObjectWriter, b testBundle) bundle.Objects {
	t.Helper()
	r, err := bundle.NewReader(t.Context(), bytes.NewReader(b.data), b.trust.Verifier(t), bundle.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := bundle.Explode(t.Context(), r, s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var farFuture = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

// twoImages is the bundle most tests store: a rootfs of a few chunks and a
// small boot image.
func twoImages(t testing.TB) testBundle {
	return newBundle(t, bundletest.NewTrust(t, 1, 1, farFuture), bundletest.Release(), []int64{5*bundle.MinChunkSize + 7, 3000}, []uint64{1, 2})
}

// readAll reads the object at key from offset on.
func readAll(t *testing.T, s store, key string, offset int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), key, offset)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s from %d: %v", key, offset, err)
	}
	return b
}

func TestExplodeRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		b := twoImages(t)
		o := explode(t, f.store, b)

		// The objects, read back and put after the single file's header,
		// give back the single file byte for byte.
		again := slices.Clone(b.data[:bundle.HeaderSize])
		again = append(again, readAll(t, f.store, o.Envelope, 0)...)
		for _, im := range b.m.Images {
			again = append(again, readAll(t, f.store, o.Images[im.Name], 0)...)
		}
		if !bytes.Equal(again, b.data) {
			t.Error("bundle reassembled from the stored objects differs from the original")
		}

		want := []string{o.Envelope, o.Images["boot"], o.Images["rootfs"]}
		slices.Sort(want)
		if got := f.stored(t); !slices.Equal(got, want) {
			t.Errorf("stored %q, want %q", got, want)
		}
		for name, img := range b.images {
			info, err := f.store.Stat(t.Context(), o.Images[name])
			if err != nil {
				t.Fatal(err)
			}
			if got, want := info.Size, int64(len(img)); got != want {
				t.Errorf("Stat(%s).Size = %d, want %d", name, got, want)
			}
			if age := time.Since(info.ModTime); age < -time.Minute || age > time.Minute {
				t.Errorf("Stat(%s).ModTime = %v, want about now", name, info.ModTime)
			}
		}
	})
}

func TestOpenAtOffset(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		b := twoImages(t)
		o := explode(t, f.store, b)
		key, img := o.Images["rootfs"], b.images["rootfs"]
		size := int64(len(img))
		for _, off := range []int64{0, 1, bundle.MinChunkSize, 3*bundle.MinChunkSize + 5, size - 1, size} {
			if got := readAll(t, f.store, key, off); !bytes.Equal(got, img[off:]) {
				t.Errorf("Open(%d) read %d bytes, want the %d from there", off, len(got), size-off)
			}
		}
		for _, off := range []int64{-1, size + 1} {
			if rc, err := f.store.Open(t.Context(), key, off); err == nil {
				rc.Close()
				t.Errorf("Open(%d) of a %d-byte object: no error", off, size)
			}
		}
	})
}

func TestMissingObject(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		const key = "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000"
		if _, err := f.store.Stat(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat of a missing object: got %v, want an error wrapping fs.ErrNotExist", err)
		}
		for _, off := range []int64{0, 10} {
			rc, err := f.store.Open(t.Context(), key, off)
			if err == nil {
				rc.Close()
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open(%d) of a missing object: got %v, want an error wrapping fs.ErrNotExist", off, err)
			}
		}
	})
}

func TestBadKeys(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		for _, key := range []string{"", "/blobs/x", "blobs//x", "blobs/x/", "../x", "blobs/../../x", "blobs/.put-1", `blobs\x`, "blobs/x y", "blobs/x\n"} {
			if err := f.store.PutObject(t.Context(), key, strings.NewReader("x"), 1); err == nil {
				t.Errorf("PutObject(%q): no error", key)
			}
			if _, err := f.store.Stat(t.Context(), key); err == nil {
				t.Errorf("Stat(%q): no error", key)
			}
			if _, err := f.store.PresignGet(t.Context(), key, time.Minute); err == nil {
				t.Errorf("PresignGet(%q): no error", key)
			}
		}
		if got := f.stored(t); len(got) != 0 {
			t.Errorf("stored %q, want nothing", got)
		}
	})
}

// get fetches u with net/http, with a Range header if rng is set, and
// returns the status and body.
func get(t *testing.T, u string, rng string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

func TestPresignGet(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		b := twoImages(t)
		o := explode(t, f.store, b)
		key, img := o.Images["rootfs"], b.images["rootfs"]
		u, err := f.store.PresignGet(t.Context(), key, time.Hour)
		if err != nil {
			t.Fatal(err)
		}

		code, body, _ := get(t, u.String(), "")
		if code != http.StatusOK || !bytes.Equal(body, img) {
			t.Errorf("GET: status %d with %d bytes, want 200 with the object's %d", code, len(body), len(img))
		}
		code, body, h := get(t, u.String(), "bytes=5000-5999")
		if code != http.StatusPartialContent || !bytes.Equal(body, img[5000:6000]) {
			t.Errorf("GET bytes=5000-5999: status %d with %d bytes, want 206 with the object's bytes 5000-5999", code, len(body))
		}
		if got, want := h.Get("Content-Range"), "bytes 5000-5999/"+strconv.Itoa(len(img)); got != want {
			t.Errorf("GET bytes=5000-5999: Content-Range %q, want %q", got, want)
		}
		code, body, _ = get(t, u.String(), "bytes=20000-")
		if code != http.StatusPartialContent || !bytes.Equal(body, img[20000:]) {
			t.Errorf("GET bytes=20000-: status %d with %d bytes, want 206 with the rest of the object", code, len(body))
		}

		// The envelope's URL works too, and is served as JSON.
		ue, err := f.store.PresignGet(t.Context(), o.Envelope, 0)
		if err != nil {
			t.Fatal(err)
		}
		code, body, h = get(t, ue.String(), "")
		if code != http.StatusOK || !bytes.Equal(body, b.data[bundle.HeaderSize:bundle.HeaderSize+len(body)]) || len(body) == 0 {
			t.Errorf("GET envelope: status %d with %d bytes, want 200 with the envelope", code, len(body))
		}
		if got, want := h.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("GET envelope: Content-Type %q, want %q", got, want)
		}
	})
}

// paramEnding returns the name of the query parameter of u whose name ends
// with suffix, ignoring case: X-Amz-Signature and signature both end with
// "signature".
func paramEnding(t *testing.T, q url.Values, suffix string) string {
	t.Helper()
	for name := range q {
		if strings.HasSuffix(strings.ToLower(name), suffix) {
			return name
		}
	}
	t.Fatalf("no query parameter ending with %q in %v", suffix, q)
	return ""
}

func TestTamperedURL(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		b := twoImages(t)
		o := explode(t, f.store, b)
		key, other := o.Images["rootfs"], o.Images["boot"]
		u, err := f.store.PresignGet(t.Context(), key, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			tamper func(u *url.URL)
		}{
			{"one character of the signature", func(u *url.URL) {
				q := u.Query()
				name := paramEnding(t, q, "signature")
				sig := []byte(q.Get(name))
				sig[len(sig)/2] = map[bool]byte{true: '1', false: '0'}[sig[len(sig)/2] == '0']
				q.Set(name, string(sig))
				u.RawQuery = q.Encode()
			}},
			{"a later expiry", func(u *url.URL) {
				q := u.Query()
				name := paramEnding(t, q, "expires")
				q.Set(name, q.Get(name)+"0")
				u.RawQuery = q.Encode()
			}},
			{"another object", func(u *url.URL) {
				// Both keys are blobs/sha256/<hex>: swap the digests.
				from, to := strings.TrimPrefix(key, "blobs/sha256/"), strings.TrimPrefix(other, "blobs/sha256/")
				v, err := url.Parse(strings.ReplaceAll(u.String(), from, to))
				if err != nil || v.String() == u.String() {
					t.Fatalf("cannot point %s at %s", u, other)
				}
				*u = *v
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bad := *u
				tc.tamper(&bad)
				code, body, _ := get(t, bad.String(), "bytes=0-99")
				if code != http.StatusForbidden {
					t.Errorf("GET %s: status %d, want 403 (%.200s)", bad.String(), code, body)
				}
			})
		}
		// The untampered URL still works.
		if code, _, _ := get(t, u.String(), "bytes=0-99"); code != http.StatusPartialContent {
			t.Errorf("GET: status %d, want 206", code)
		}
	})
}

func TestExpiredURL(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		b := twoImages(t)
		o := explode(t, f.store, b)
		key := o.Images["boot"]
		start := time.Now()
		u, err := f.store.PresignGet(t.Context(), key, objects.MinPresignTTL)
		if err != nil {
			t.Fatal(err)
		}
		// Poll until the URL is refused; it must be once its second is past.
		deadline := start.Add(30 * time.Second)
		var code int
		for {
			code, _, _ = get(t, u.String(), "")
			if code != http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if code != http.StatusForbidden {
			t.Fatalf("GET of a URL presigned for 1 s, after %v: status %d, want 403", time.Since(start).Round(time.Millisecond), code)
		}
		// S3 counts the TTL from the second the URL was signed in.
		if earliest := start.Truncate(time.Second).Add(objects.MinPresignTTL); time.Now().Before(earliest) {
			t.Errorf("refused after %v, before its TTL of %v was over", time.Since(start).Round(time.Millisecond), objects.MinPresignTTL)
		}
		// A fresh URL for the same object works: expiry, nothing else, was refused.
		u, err = f.store.PresignGet(t.Context(), key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if code, _, _ := get(t, u.String(), ""); code != http.StatusOK {
			t.Errorf("GET of a fresh URL: status %d, want 200", code)
		}
	})
}

func TestPresignTTLLimits(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		for _, ttl := range []time.Duration{-time.Second, time.Millisecond, objects.MaxPresignTTL + time.Second} {
			if _, err := f.store.PresignGet(t.Context(), "blobs/x", ttl); err == nil {
				t.Errorf("PresignGet with TTL %v: no error", ttl)
			}
		}
	})
}

// A countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestPutObjectSkipsStoredObject(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		data := bytes.Repeat([]byte("gitfleet"), 1000)
		sum := sha256.Sum256(data)
		key := "blobs/sha256/" + hex.EncodeToString(sum[:])
		size := int64(len(data))

		for i, want := range []int64{size, 0, 0} {
			r := &countingReader{r: bytes.NewReader(data)}
			if err := f.store.PutObject(t.Context(), key, r, size); err != nil {
				t.Fatal(err)
			}
			if r.n != want {
				t.Errorf("upload %d read %d bytes, want %d", i+1, r.n, want)
			}
		}
		if got := readAll(t, f.store, key, 0); !bytes.Equal(got, data) {
			t.Error("object differs from what was uploaded")
		}
		// An object of another size under the key is not the one wanted:
		// it is replaced.
		short := &countingReader{r: bytes.NewReader(data[:100])}
		if err := f.store.PutObject(t.Context(), key, short, 100); err != nil {
			t.Fatal(err)
		}
		again := &countingReader{r: bytes.NewReader(data)}
		if err := f.store.PutObject(t.Context(), key, again, size); err != nil {
			t.Fatal(err)
		}
		if again.n != size {
			t.Errorf("upload over a 100-byte object read %d bytes, want %d", again.n, size)
		}
		if got := readAll(t, f.store, key, 0); !bytes.Equal(got, data) {
			t.Error("object differs from what was uploaded last")
		}
	})
}

// A hookReader calls hook once at bytes have been read through it, before
// it reads on.
type hookReader struct {
	r     io.Reader
	n, at int64
	hook  func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.n == h.at && h.hook != nil {
		h.hook()
		h.hook = nil
	}
	if h.n < h.at {
		p = p[:min(int64(len(p)), h.at-h.n)]
	}
	n, err := h.r.Read(p)
	h.n += int64(n)
	return n, err
}

func TestCancelledUploadLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size, at int64
	}{
		{"one request", 1 << 20, 300 << 10},
		{"multipart, in the second part", 12 << 20, 7 << 20},
		{"multipart, in the last part", 12 << 20, 11 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, f fixture) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				r := &hookReader{r: bytes.NewReader(make([]byte, tc.size)), at: tc.at, hook: cancel}
				err := f.store.PutObject(ctx, "blobs/sha256/cancelled", r, tc.size)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("PutObject cancelled after %d of %d bytes: got %v, want an error wrapping context.Canceled", tc.at, tc.size, err)
				}
				if _, err := f.store.Stat(t.Context(), "blobs/sha256/cancelled"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat after a cancelled upload: got %v, want an error wrapping fs.ErrNotExist", err)
				}
				if got := f.stored(t); len(got) != 0 {
					t.Errorf("a cancelled upload left %q", got)
				}
			})
		})
	}
}

func TestObjectInvisibleUntilComplete(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		const key, size, at = "blobs/sha256/slow", 12 << 20, 7 << 20 // S3: part 1 is up, part 2 half read
		paused, resume := make(chan struct{}), make(chan struct{})
		r := &hookReader{r: bytes.NewReader(make([]byte, size)), at: at, hook: func() {
			close(paused)
			<-resume
		}}
		done := make(chan error, 1)
		go func() { done <- f.store.PutObject(t.Context(), key, r, size) }()
		select {
		case <-paused:
		case err := <-done:
			t.Fatalf("PutObject returned before reading it all: %v", err)
		}
		if _, err := f.store.Stat(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat during the upload: got %v, want an error wrapping fs.ErrNotExist", err)
		}
		if rc, err := f.store.Open(t.Context(), key, 0); err == nil {
			rc.Close()
			t.Error("Open during the upload: no error")
		}
		close(resume)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if info, err := f.store.Stat(t.Context(), key); err != nil || info.Size != size {
			t.Errorf("Stat after the upload: %+v, %v, want size %d", info, err, size)
		}
	})
}
