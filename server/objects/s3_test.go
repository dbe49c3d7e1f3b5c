package objects_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"

	"github.com/gitfleet/gitfleet/firmware/bundletest"
	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/objects"
)

// A countingTransport records the requests that go through it.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []string // "METHOD /path"
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req.Method+" "+req.URL.Path)
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

// takeAll returns the requests made since the last take, in order, and
// forgets them.
func (c *countingTransport) takeAll() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := c.reqs
	c.reqs = nil
	return all
}

// take returns the paths of the requests with method made since the last
// take, sorted, and forgets every request so far.
func (c *countingTransport) take(method string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var got []string
	for _, r := range c.reqs {
		if m, path, _ := strings.Cut(r, " "); m == method {
			got = append(got, path)
		}
	}
	c.reqs = nil
	slices.Sort(got)
	return got
}

// newCountingS3 returns a store on a fresh bucket whose requests c counts.
func newCountingS3(t *testing.T, cfg func(*objects.S3Config)) (*objects.S3, *countingTransport, testenv.Bucket) {
	t.Helper()
	b := testenv.S3(t)
	base, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingTransport{base: base}
	conf := s3Config(b)
	conf.Transport = c
	if cfg != nil {
		cfg(&conf)
	}
	s, err := objects.NewS3(t.Context(), conf)
	if err != nil {
		t.Fatal(err)
	}
	c.takeAll() // the bucket check
	return s, c, b
}

func TestS3UploadsOnlyNewObjects(t *testing.T) {
	t.Parallel()
	s, c, b := newCountingS3(t, nil)
	tr := bundletest.NewTrust(t, 1, 1, farFuture)
	rel := bundletest.Release()
	v1 := newBundle(t, tr, rel, []int64{300_000, 3000}, []uint64{1, 2})
	rel.Version, rel.Counter = "1.5.0", rel.Counter+1
	v2 := newBundle(t, tr, rel, []int64{300_000, 4000}, []uint64{1, 3}) // the same rootfs, a new boot
	path := func(key string) string { return "/" + b.Name + "/" + key }

	for _, step := range []struct {
		name   string
		bundle testBundle
		want   func(o map[string]string, envelope string) []string
	}{
		{"first release", v1, func(o map[string]string, env string) []string {
			return []string{path(env), path(o["boot"]), path(o["rootfs"])}
		}},
		{"first release again", v1, func(map[string]string, string) []string { return nil }},
		{"second release, sharing the rootfs", v2, func(o map[string]string, env string) []string {
			return []string{path(env), path(o["boot"])}
		}},
	} {
		o := explode(t, s, step.bundle)
		want := step.want(o.Images, o.Envelope)
		slices.Sort(want)
		if diff := cmp.Diff(want, c.take(http.MethodPut)); diff != "" {
			t.Errorf("%s: PUT requests (-want +got):\n%s", step.name, diff)
		}
	}
}

// TestS3CancelledUploadIsAborted checks what the shared test of cancelled
// uploads cannot see: that the multipart upload had begun, and was aborted.
func TestS3CancelledUploadIsAborted(t *testing.T) {
	t.Parallel()
	s, c, b := newCountingS3(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const size, at = 12 << 20, 7 << 20 // in the second of three parts
	r := &hookReader{r: bytes.NewReader(make([]byte, size)), at: at, hook: cancel}
	if err := s.PutObject(ctx, "blobs/cancelled", r, size); !errors.Is(err, context.Canceled) {
		t.Errorf("PutObject: got %v, want an error wrapping context.Canceled", err)
	}
	path := "/" + b.Name + "/blobs/cancelled"
	want := []string{
		"HEAD " + path,   // is it there already?
		"POST " + path,   // begin the upload
		"PUT " + path,    // part 1
		"DELETE " + path, // abort
	}
	if diff := cmp.Diff(want, c.takeAll()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got := bucketContents(t, b, ""); len(got) != 0 {
		t.Errorf("a cancelled upload left %q", got)
	}
}

// noReadAt hides every method of a reader but Read, as a bundle.Reader has
// no other that matters: minio-go reads it one part after another.
type noReadAt struct{ io.Reader }

func TestS3Multipart64MiB(t *testing.T) {
	t.Parallel()
	s, c, _ := newCountingS3(t, func(c *objects.S3Config) { c.PartSize = 0 }) // the default
	const size = 64 << 20
	random := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{7}), size) }
	sum := func(r io.Reader) [sha256.Size]byte {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Fatal(err)
		}
		return [sha256.Size]byte(h.Sum(nil))
	}
	const key = "blobs/sha256/big"

	start := time.Now()
	if err := s.PutObject(t.Context(), key, noReadAt{random()}, size); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("uploaded %d MiB in %v: %.0f MiB/s", size>>20, elapsed.Round(time.Millisecond), float64(size>>20)/elapsed.Seconds())
	if got, want := len(c.take(http.MethodPut)), size/objects.DefaultPartSize; got != want {
		t.Errorf("uploaded in %d PUT requests, want %d parts of %d MiB", got, want, objects.DefaultPartSize>>20)
	}

	rc, err := s.Open(t.Context(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := sum(rc)
	rc.Close()
	if want := sum(random()); got != want {
		t.Error("the object read back differs from what was uploaded")
	}
	// A ranged read across the boundary of parts 1 and 2.
	const off = objects.DefaultPartSize - 100
	want := make([]byte, 200)
	r := random()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(r, want)
	rc, err = s.Open(t.Context(), key, off)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gotRange := make([]byte, 200)
	if _, err := io.ReadFull(rc, gotRange); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotRange, want) {
		t.Errorf("bytes %d-%d differ from what was uploaded", off, off+199)
	}
}

func TestS3Prefix(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"fleet-a", "fleets/fleet-b/"} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			b := testenv.S3(t)
			conf := s3Config(b)
			conf.Prefix = prefix
			s, err := objects.NewS3(t.Context(), conf)
			if err != nil {
				t.Fatal(err)
			}
			o := explode(t, s, twoImages(t))
			full := strings.TrimSuffix(prefix, "/") + "/"
			want := []string{full + o.Envelope, full + o.Images["boot"], full + o.Images["rootfs"]}
			slices.Sort(want)
			if diff := cmp.Diff(want, bucketContents(t, b, "")); diff != "" {
				t.Errorf("bucket contents (-want +got):\n%s", diff)
			}
			if _, err := s.Stat(t.Context(), o.Envelope); err != nil {
				t.Error(err)
			}
			u, err := s.PresignGet(t.Context(), o.Envelope, 0)
			if err != nil {
				t.Fatal(err)
			}
			if code, _, _ := get(t, u.String(), ""); code != http.StatusOK {
				t.Errorf("GET %s: status %d, want 200", u, code)
			}
		})
	}
}

func TestNewS3Errors(t *testing.T) {
	t.Parallel()
	b := testenv.S3(t)
	unreachable := "http://" + testenv.FreeAddr(t)
	for _, tc := range []struct {
		name   string
		change func(c *objects.S3Config)
		want   string
	}{
		{"wrong secret key", func(c *objects.S3Config) { c.SecretKey += "x" }, "fix secret_key"},
		{"unknown access key", func(c *objects.S3Config) { c.AccessKey = "nobody" }, "fix access_key"},
		{"missing bucket", func(c *objects.S3Config) { c.Bucket += "-missing" }, "the bucket does not exist"},
		{"unreachable endpoint", func(c *objects.S3Config) { c.Endpoint = unreachable }, "cannot reach the endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conf := s3Config(b)
			tc.change(&conf)
			_, err := objects.NewS3(t.Context(), conf)
			if err == nil {
				t.Fatal("NewS3: no error")
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range []string{tc.want, `s3 bucket "` + conf.Bucket + `" at ` + conf.Endpoint + ": "} {
				if !strings.Contains(msg, want) {
					t.Errorf("NewS3: error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("NewS3: error %q is more than one line", msg)
			}
		})
	}
}

// newProxy starts a reverse proxy to the server of b, over TLS if tls is
// set. It passes the Host header on, so that signatures made for the
// proxy's address match on the server.
func newProxy(t *testing.T, b testenv.Bucket, tls bool) *httptest.Server {
	t.Helper()
	target, err := url.Parse(b.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	proxy.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes that the tests make fail
	if tls {
		proxy.StartTLS()
	} else {
		proxy.Start()
	}
	t.Cleanup(proxy.Close)
	return proxy
}

func TestS3PublicEndpoint(t *testing.T) {
	t.Parallel()
	b := testenv.S3(t)
	proxy := newProxy(t, b, false)
	conf := s3Config(b)
	conf.PublicEndpoint = proxy.URL
	s, err := objects.NewS3(t.Context(), conf)
	if err != nil {
		t.Fatal(err)
	}
	const key = "blobs/sha256/public"
	if err := s.PutObject(t.Context(), key, strings.NewReader("public"), 6); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(t.Context(), key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host, proxy.URL; got != want {
		t.Errorf("presigned URL %s is not at the public endpoint %s", u, want)
	}
	if code, body, _ := get(t, u.String(), ""); code != http.StatusOK || string(body) != "public" {
		t.Errorf("GET through the public endpoint: status %d, body %q, want 200 with the object", code, body)
	}
	// The signature is for the public endpoint's host only.
	direct := *u
	direct.Host = strings.TrimPrefix(b.Endpoint, "http://")
	if code, _, _ := get(t, direct.String(), ""); code != http.StatusForbidden {
		t.Errorf("GET of the same URL at the endpoint: status %d, want 403", code)
	}
}

// TestS3TLS reaches the test S3 server through a TLS proxy whose
// certificate no system CA signed.
func TestS3TLS(t *testing.T) {
	t.Parallel()
	b := testenv.S3(t)
	proxy := newProxy(t, b, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func(c *objects.S3Config)
		wantErr string
	}{
		{"CA file", func(c *objects.S3Config) { c.CAFile = caFile }, ""},
		{"insecure", func(c *objects.S3Config) { c.Insecure = true }, ""},
		{"untrusted", func(c *objects.S3Config) {}, "the endpoint's certificate is not trusted: give its CA in ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := s3Config(b)
			conf.Endpoint = proxy.URL
			tc.change(&conf)
			s, err := objects.NewS3(t.Context(), conf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewS3: got error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			const key = "blobs/sha256/tls"
			if err := s.PutObject(t.Context(), key, strings.NewReader(tc.name), int64(len(tc.name))); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s, key, 0); string(got) != tc.name {
				t.Errorf("read back %q, want %q", got, tc.name)
			}
		})
	}
}

// TestS3CredentialsFromEnvironment sets environment variables, so it does
// not run in parallel.
func TestS3CredentialsFromEnvironment(t *testing.T) {
	b := testenv.S3(t)
	conf := s3Config(b)
	conf.AccessKey, conf.SecretKey = "", ""

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, err := objects.NewS3(t.Context(), conf); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("NewS3 without credentials: got %v, want an error naming AWS_ACCESS_KEY_ID", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", b.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", b.SecretKey)
	s, err := objects.NewS3(t.Context(), conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutObject(t.Context(), "blobs/env", strings.NewReader("env"), 3); err != nil {
		t.Fatal(err)
	}
}

func TestS3ConfigValidate(t *testing.T) {
	valid := objects.S3Config{Endpoint: "https://s3.example.com", Bucket: "fw", AccessKey: "a", SecretKey: "s"}
	checkValidate(t, valid, []invalid[objects.S3Config]{
		{"no endpoint", func(c *objects.S3Config) { c.Endpoint = "" }, "endpoint is empty"},
		{"public endpoint with a path", func(c *objects.S3Config) { c.PublicEndpoint, c.Region = "https://fw.example.com/x", "r" }, "public_endpoint"},
		{"public endpoint without region", func(c *objects.S3Config) { c.PublicEndpoint = "https://fw.example.com" }, "region is empty"},
		{"endpoint without scheme", func(c *objects.S3Config) { c.Endpoint = "s3.example.com:9000" }, "not an http:// or https:// URL"},
		{"endpoint with a path", func(c *objects.S3Config) { c.Endpoint = "https://s3.example.com/fw" }, "name the bucket in bucket"},
		{"no bucket", func(c *objects.S3Config) { c.Bucket = "" }, "bucket is empty"},
		{"access key alone", func(c *objects.S3Config) { c.SecretKey = "" }, "set both"},
		{"secret key alone", func(c *objects.S3Config) { c.AccessKey = "" }, "set both"},
		{"TTL too short", func(c *objects.S3Config) { c.PresignTTL = time.Millisecond }, "presign_ttl"},
		{"TTL too long", func(c *objects.S3Config) { c.PresignTTL = 8 * 24 * time.Hour }, "presign_ttl"},
		{"part too small", func(c *objects.S3Config) { c.PartSize = 1 << 20 }, "part_size"},
		{"bad prefix", func(c *objects.S3Config) { c.Prefix = "../up" }, "prefix"},
		{"transport and TLS", func(c *objects.S3Config) { c.Transport, c.Insecure = http.DefaultTransport, true }, "Transport"},
	})
}

// invalid is a change that makes a valid configuration invalid, and what
// Validate's error must then say.
type invalid[C any] struct {
	name   string
	change func(c *C)
	want   string
}

// checkValidate checks that Validate accepts valid, and refuses each change
// of it with an error that says what the case wants.
func checkValidate[C interface{ Validate() error }](t *testing.T, valid C, cases []invalid[C]) {
	t.Helper()
	if err := valid.Validate(); err != nil {
		t.Fatalf("Validate of a valid config: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
