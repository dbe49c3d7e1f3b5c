package testenv_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

func TestS3RoundTrip(t *testing.T) {
	t.Parallel()
	b := testenv.S3(t)
	c := b.Client(t)
	tests := []struct {
		name     string
		size     int
		partSize uint64 // 0: minio-go's choice, a single PUT for these sizes
		parts    int    // what the ETag says: 0 for a single PUT
	}{
		{"empty", 0, 0, 0},
		{"small", 1000, 0, 0},
		{"multipart", 11<<20 + 1, 5 << 20, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			data := random(tt.size)
			info, err := c.PutObject(ctx, b.Name, tt.name, bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{PartSize: tt.partSize})
			if err != nil {
				t.Fatal(err)
			}
			if _, parts, _ := strings.Cut(info.ETag, "-"); tt.parts > 0 && parts != strconv.Itoa(tt.parts) {
				t.Errorf("ETag %s: got %q parts, want %d", info.ETag, parts, tt.parts)
			}

			obj, err := c.GetObject(ctx, b.Name, tt.name, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			got, err := io.ReadAll(obj)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("got %d bytes back that differ from the %d put", len(got), len(data))
			}
		})
	}
}

// TestS3PresignedGet checks what devices rely on to download a bundle: a presigned URL serves the
// object, and ranges of it to resume a download, and is refused once anything in it changes.
func TestS3PresignedGet(t *testing.T) {
	t.Parallel()
	b := testenv.S3(t)
	data := random(64 << 10)
	put(t, b, "bundle", data)
	put(t, b, "other", data)
	signed, err := b.Client(t).PresignedGetObject(t.Context(), b.Name, "bundle", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := *signed
	q := tampered.Query()
	sig := []byte(q.Get("X-Amz-Signature"))
	if sig[0] == '0' {
		sig[0] = '1'
	} else {
		sig[0] = '0'
	}
	q.Set("X-Amz-Signature", string(sig))
	tampered.RawQuery = q.Encode()
	otherObject := *signed
	otherObject.Path = strings.TrimSuffix(signed.Path, "bundle") + "other"

	tests := []struct {
		name       string
		url        *url.URL
		rangeSpec  string // Range header
		wantStatus int
		wantBody   []byte
		wantRange  string // Content-Range header
		wantCode   string // S3 error code
	}{
		{name: "whole", url: signed, wantStatus: 200, wantBody: data},
		{name: "range", url: signed, rangeSpec: "bytes=1000-1999", wantStatus: 206,
			wantBody: data[1000:2000], wantRange: "bytes 1000-1999/65536"},
		{name: "rest from an offset", url: signed, rangeSpec: "bytes=65000-", wantStatus: 206,
			wantBody: data[65000:], wantRange: "bytes 65000-65535/65536"},
		{name: "tampered signature", url: &tampered, wantStatus: 403, wantCode: "SignatureDoesNotMatch"},
		{name: "another object", url: &otherObject, wantStatus: 403, wantCode: "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, tt.url, tt.rangeSpec)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %s, want %d; body:\n%s", resp.Status, tt.wantStatus, body)
			}
			if tt.wantCode != "" {
				if code := s3ErrorCode(t, body); code != tt.wantCode {
					t.Errorf("got error %s, want %s", code, tt.wantCode)
				}
				return
			}
			if !bytes.Equal(body, tt.wantBody) {
				t.Errorf("got %d bytes that differ from the %d wanted", len(body), len(tt.wantBody))
			}
			if got := resp.Header.Get("Content-Range"); got != tt.wantRange {
				t.Errorf("got Content-Range %q, want %q", got, tt.wantRange)
			}
		})
	}
}

func TestS3PresignedGetExpires(t *testing.T) {
	t.Parallel()
	b := testenv.S3(t)
	put(t, b, "bundle", random(100))
	signed, err := b.Client(t).PresignedGetObject(t.Context(), b.Name, "bundle", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Valid for a second: poll until the server refuses it.
	deadline := time.Now().Add(timeout)
	for {
		resp, body := get(t, signed, "")
		if resp.StatusCode == http.StatusForbidden {
			if code := s3ErrorCode(t, body); code != "AccessDenied" || !bytes.Contains(body, []byte("expired")) {
				t.Errorf("got error %s, want AccessDenied for an expired request; body:\n%s", code, body)
			}
			return
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got status %s, want 200 and then, once expired, 403; body:\n%s", resp.Status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a URL presigned for 1 s still works after %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func put(t *testing.T, b testenv.Bucket, name string, data []byte) {
	t.Helper()
	_, err := b.Client(t).PutObject(t.Context(), b.Name, name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// get fetches u with net/http, as a device does, asking for rangeSpec if it is not empty.
func get(t *testing.T, u *url.URL, rangeSpec string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rangeSpec != "" {
		req.Header.Set("Range", rangeSpec)
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
	return resp, body
}

// s3ErrorCode returns the code of an S3 error response.
func s3ErrorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Code string }
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an S3 error: %v; body:\n%s", err, body)
	}
	return e.Code
}

// random returns n bytes that are the same in every run.
func random(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{}).Read(b)
	return b
}
