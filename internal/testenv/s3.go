package testenv

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Bucket is a bucket of the test S3 server (versitygw, which checks signatures and presigned URLs as
// S3 and MinIO do), made for one test.
type Bucket struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the server's root account, which signs every request.
	AccessKey, SecretKey string
	Region               string
	// Name is the bucket's name.
	Name string
}

// S3 creates a bucket for the calling test on the test S3 server. The bucket, with whatever it then
// holds, is removed when the test ends.
func S3(t testing.TB) Bucket {
	t.Helper()
	var e env
	b := Bucket{
		Endpoint:  e.get("GITFLEET_TEST_S3_ENDPOINT"),
		AccessKey: e.get("GITFLEET_TEST_S3_ACCESS_KEY"),
		SecretKey: e.get("GITFLEET_TEST_S3_SECRET_KEY"),
		Region:    e.get("GITFLEET_TEST_S3_REGION"),
		Name:      ID(t),
	}
	e.check(t, "the test S3 server")
	c := b.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := c.MakeBucket(ctx, b.Name, minio.MakeBucketOptions{Region: b.Region}); err != nil {
		fatalf(t, "the test S3 server at GITFLEET_TEST_S3_ENDPOINT=%s cannot create a bucket: %v", b.Endpoint, err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeBucket(ctx, c, b.Name); err != nil {
			t.Errorf("testenv: remove the test's bucket %s: %v", b.Name, err)
		}
	})
	return b
}

// Client returns a client of the bucket's server that signs with the root account.
func (b Bucket) Client(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(b.Endpoint)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("testenv: S3 endpoint %q is not an http:// or https:// URL", b.Endpoint)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(b.AccessKey, b.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: b.Region,
	})
	if err != nil {
		t.Fatalf("testenv: S3 client for %s: %v", b.Endpoint, err)
	}
	return c
}

// removeBucket removes a bucket with its objects and unfinished multipart uploads.
func removeBucket(ctx context.Context, c *minio.Client, bucket string) error {
	for object := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if object.Err != nil {
			return object.Err
		}
		if err := c.RemoveObject(ctx, bucket, object.Key, minio.RemoveObjectOptions{}); err != nil {
			return err
		}
	}
	for upload := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if upload.Err != nil {
			return upload.Err
		}
		if err := c.RemoveIncompleteUpload(ctx, bucket, upload.Key); err != nil {
			return err
		}
	}
	return c.RemoveBucket(ctx, bucket)
}
