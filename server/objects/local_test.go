package objects_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/server/objects"
)

// handlerStatus returns the status the handler of l answers a request
// with method for the URL u.
func handlerStatus(t testing.TB, l *objects.Local, method, u string) int {
	t.Helper()
	w := httptest.NewRecorder()
	l.ServeHTTP(w, httptest.NewRequest(method, u, nil))
	return w.Code
}

func TestLocalHandler(t *testing.T) {
	t.Parallel()
	l := newLocal(t, objects.LocalConfig{})
	const key, missing = "blobs/sha256/present", "blobs/sha256/missing"
	if err := l.PutObject(t.Context(), key, strings.NewReader("some bytes"), 10); err != nil {
		t.Fatal(err)
	}
	presign := func(key string) *url.URL {
		u, err := l.PresignGet(t.Context(), key, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	withQuery := func(change func(q url.Values)) string {
		u := presign(key)
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, tc := range []struct {
		name   string
		method string
		url    string
		want   int
	}{
		{"GET", http.MethodGet, presign(key).String(), http.StatusOK},
		{"HEAD", http.MethodHead, presign(key).String(), http.StatusOK},
		{"PUT", http.MethodPut, presign(key).String(), http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, presign(key).String(), http.StatusMethodNotAllowed},
		{"missing object", http.MethodGet, presign(missing).String(), http.StatusNotFound},
		{"no query", http.MethodGet, "/objects", http.StatusForbidden},
		{"no signature", http.MethodGet, withQuery(func(q url.Values) { q.Del("signature") }), http.StatusForbidden},
		{"signature not hex", http.MethodGet, withQuery(func(q url.Values) { q.Set("signature", "zz") }), http.StatusForbidden},
		{"short signature", http.MethodGet, withQuery(func(q url.Values) { q.Set("signature", q.Get("signature")[:62]) }), http.StatusForbidden},
		{"another key", http.MethodGet, withQuery(func(q url.Values) { q.Set("key", missing) }), http.StatusForbidden},
		{"expiry not a number", http.MethodGet, withQuery(func(q url.Values) { q.Set("expires", "soon") }), http.StatusForbidden},
		{"escaping key", http.MethodGet, withQuery(func(q url.Values) { q.Set("key", "../../etc/passwd") }), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := handlerStatus(t, l, tc.method, tc.url); got != tc.want {
				t.Errorf("%s %s: status %d, want %d", tc.method, tc.url, got, tc.want)
			}
		})
	}
}

func TestLocalSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := bytes.Repeat([]byte{1}, objects.MinSecret)
	const key = "blobs/sha256/x"
	first := newLocal(t, objects.LocalConfig{Dir: dir, Secret: secret})
	if err := first.PutObject(t.Context(), key, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	u, err := first.PresignGet(t.Context(), key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		want   int
	}{
		{"same secret, as after a restart", secret, http.StatusOK},
		{"another secret", bytes.Repeat([]byte{2}, objects.MinSecret), http.StatusForbidden},
		{"a random secret", nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLocal(t, objects.LocalConfig{Dir: dir, Secret: tc.secret})
			if got := handlerStatus(t, l, http.MethodGet, u.String()); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestLocalConfigValidate(t *testing.T) {
	valid := objects.LocalConfig{Dir: "objects", URL: "http://192.0.2.10:8080/objects"}
	checkValidate(t, valid, []invalid[objects.LocalConfig]{
		{"no dir", func(c *objects.LocalConfig) { c.Dir = "" }, "dir is empty"},
		{"no URL", func(c *objects.LocalConfig) { c.URL = "" }, "url is empty"},
		{"relative URL", func(c *objects.LocalConfig) { c.URL = "/objects" }, "not an http:// or https:// URL"},
		{"URL with a query", func(c *objects.LocalConfig) { c.URL = "http://h/objects?a=b" }, "without a query"},
		{"short secret", func(c *objects.LocalConfig) { c.Secret = []byte("short") }, "at least 32"},
		{"TTL too long", func(c *objects.LocalConfig) { c.PresignTTL = 30 * 24 * time.Hour }, "presign_ttl"},
	})
}

// FuzzLocalHandler checks that a query the store did not sign gets 403,
// whatever it holds: never an object, never word of whether one exists.
func FuzzLocalHandler(f *testing.F) {
	l, err := objects.NewLocal(objects.LocalConfig{Dir: f.TempDir(), URL: "http://127.0.0.1/objects"})
	if err != nil {
		f.Fatal(err)
	}
	if err := l.PutObject(f.Context(), "blobs/x", strings.NewReader("x"), 1); err != nil {
		f.Fatal(err)
	}
	f.Add("key=blobs%2Fx&expires=99999999999&signature=00")
	f.Add("key=blobs/x&key=blobs/y&expires=99999999999&signature=")
	f.Add("key=..%2Fx&expires=-1&signature=")
	f.Add("expires=1e9")
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/objects", nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		l.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden {
			t.Errorf("GET /objects?%s: status %d, want 403", query, w.Code)
		}
	})
}
