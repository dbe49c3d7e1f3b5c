package objects

import (
	"github.com/gitfleet/gitfleet/internal/ctxio"

	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 part sizes. S3 wants parts of at least 5 MiB, but the last, and at
// most 10,000 of them.
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 5 << 20
	maxParts        = 10_000
)

// S3Config says where an S3 store keeps its objects and how to reach it.
// The zero value of each optional field means its default.
type S3Config struct {
	// Endpoint is the server's URL: https://s3.eu-central-1.amazonaws.com,
	// http://minio.lan:9000.
	Endpoint string `yaml:"endpoint"`
	// PublicEndpoint, if set, is the URL devices reach the server at when
	// it is not Endpoint, as with a reverse proxy that keeps the Host
	// header: https://fw.example.com. Presigned URLs are signed for its
	// host, which S3 checks. It needs Region.
	PublicEndpoint string `yaml:"public_endpoint"`
	// Region is the bucket's region. Empty asks the server, which needs
	// permission to get the bucket's location.
	Region string `yaml:"region"`
	Bucket string `yaml:"bucket"`
	// Prefix, if set, goes before every key, so that several fleets, or
	// other data, share a bucket: with prefix fleet-a, blobs/sha256/… is
	// stored as fleet-a/blobs/sha256/….
	Prefix string `yaml:"prefix"`
	// AccessKey and SecretKey sign every request. With both empty they come
	// from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and,
	// for temporary credentials, AWS_SESSION_TOKEN. The account needs to
	// list the bucket (without it S3 answers 403, not 404, for a missing
	// object, and uploads could not skip existing ones), and to get and
	// put objects.
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// CAFile is a PEM file of CA certificates to trust besides the system's,
	// for an endpoint with a private CA.
	CAFile string `yaml:"ca_file"`
	// Insecure accepts any certificate from the endpoint: for tests only.
	Insecure bool `yaml:"insecure"`
	// PresignTTL is how long a URL from PresignGet lasts when the call does
	// not say; default DefaultPresignTTL.
	PresignTTL time.Duration `yaml:"presign_ttl"`
	// PartSize is the size of the parts of a multipart upload, which every
	// object larger than it gets; default DefaultPartSize, at least
	// MinPartSize. An upload holds one part in memory. A part grows past
	// PartSize for an object that would otherwise need more than 10,000.
	PartSize int64 `yaml:"part_size"`
	// Transport, if set, carries every request, in place of a transport
	// made from CAFile and Insecure.
	Transport http.RoundTripper `yaml:"-"`
}

// Validate returns an error naming the field and the fix if c cannot
// describe an S3 store. It does not reach the endpoint: NewS3 does.
func (c S3Config) Validate() error {
	if c.Endpoint == "" {
		return errors.New("s3 config: endpoint is empty: give the server's URL, as in https://s3.example.com")
	}
	if err := checkEndpoint("endpoint", c.Endpoint); err != nil {
		return err
	}
	if c.PublicEndpoint != "" {
		if err := checkEndpoint("public_endpoint", c.PublicEndpoint); err != nil {
			return err
		}
	}
	switch {
	case c.PublicEndpoint != "" && c.Region == "":
		return errors.New("s3 config: public_endpoint is set but region is empty: give the bucket's region, as in us-east-1, for URLs signed without asking the server")
	case c.Bucket == "":
		return errors.New("s3 config: bucket is empty: name the bucket to store bundles in")
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return errors.New("s3 config: only one of access_key and secret_key is set: set both, or neither to take them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case c.PresignTTL != 0 && checkTTL(c.PresignTTL) != nil:
		return fmt.Errorf("s3 config: presign_ttl is %v: want %v to %v", c.PresignTTL, MinPresignTTL, MaxPresignTTL)
	case c.PartSize != 0 && c.PartSize < MinPartSize:
		return fmt.Errorf("s3 config: part_size is %d: want at least %d (5 MiB), or 0 for %d", c.PartSize, MinPartSize, DefaultPartSize)
	case c.Transport != nil && (c.CAFile != "" || c.Insecure):
		return errors.New("s3 config: a Transport is given with ca_file or insecure: configure TLS in the Transport")
	}
	if c.Prefix != "" {
		if err := checkKey(strings.TrimSuffix(c.Prefix, "/")); err != nil {
			return fmt.Errorf("s3 config: prefix %q is not a path of names of letters, digits, '.', '_' and '-': give one, as in fleet-a", c.Prefix)
		}
	}
	return nil
}

// checkEndpoint returns an error unless value, of config field name, is an
// http:// or https:// URL of a server and nothing more.
func checkEndpoint(name, value string) error {
	u, err := url.Parse(value)
	switch {
	case err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("s3 config: %s %q is not an http:// or https:// URL: give one, as in https://s3.example.com", name, value)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("s3 config: %s %q has more than a scheme, host and port: name the bucket in bucket, and a folder in prefix", name, value)
	}
	return nil
}

// An S3 store keeps objects in an S3 bucket. It is safe for concurrent use,
// and several servers may share a bucket: they upload the same bytes under
// a content-addressed key.
type S3 struct {
	client   *minio.Client
	presign  *minio.Client // client, or one for the public endpoint
	endpoint string
	bucket   string
	prefix   string // "" or ending in "/"
	ttl      time.Duration
	partSize int64
}

// NewS3 returns a store on the bucket cfg names, after checking that the
// endpoint answers, accepts the credentials and has the bucket. A failed
// check is one line that names the endpoint, the bucket and what to fix.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Endpoint) // Validate parsed it
	s := &S3{
		endpoint: u.Scheme + "://" + u.Host,
		bucket:   cfg.Bucket,
		ttl:      cfg.PresignTTL,
		partSize: cfg.PartSize,
	}
	if cfg.Prefix != "" {
		s.prefix = strings.TrimSuffix(cfg.Prefix, "/") + "/"
	}
	if s.ttl == 0 {
		s.ttl = DefaultPresignTTL
	}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	tr := cfg.Transport
	if tr == nil {
		var err error
		if tr, err = transport(cfg); err != nil {
			return nil, err
		}
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AccessKey == "" {
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return nil, errors.New("s3 config: access_key and secret_key are empty and so is AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY: set the keys in one place or the other")
		}
		creds = credentials.NewStaticV4(id, secret, os.Getenv("AWS_SESSION_TOKEN"))
	}
	opts := &minio.Options{Creds: creds, Secure: u.Scheme == "https", Region: cfg.Region, Transport: tr}
	var err error
	if s.client, err = minio.New(u.Host, opts); err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", s.endpoint, err)
	}
	// The check is not retried: a server that does not answer is best
	// reported now, not after minio-go's ten retries with backoff.
	once := *opts
	once.MaxRetries = 1
	check, err := minio.New(u.Host, &once)
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", s.endpoint, err)
	}
	if err := s.check(ctx, check); err != nil {
		return nil, err
	}
	s.presign = s.client
	if cfg.PublicEndpoint != "" {
		// Presigning is a computation: with the region given, this client
		// sends no request, so the server need not reach the public endpoint.
		pu, _ := url.Parse(cfg.PublicEndpoint) // Validate parsed it
		public := *opts
		public.Secure = pu.Scheme == "https"
		if s.presign, err = minio.New(pu.Host, &public); err != nil {
			return nil, fmt.Errorf("s3 client for %s: %w", cfg.PublicEndpoint, err)
		}
	}
	return s, nil
}

// transport returns an HTTP transport that trusts the system's CAs and
// cfg.CAFile's, or any certificate if cfg.Insecure.
func transport(cfg S3Config) (*http.Transport, error) {
	tr, err := minio.DefaultTransport(true)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	if cfg.CAFile == "" && !cfg.Insecure {
		return tr, nil
	}
	tc := tr.TLSClientConfig // minio-go's: TLS 1.2 or later, and SSL_CERT_FILE's CAs
	tc.InsecureSkipVerify = cfg.Insecure
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 config: ca_file: %w", err)
		}
		if tc.RootCAs == nil {
			if tc.RootCAs, err = x509.SystemCertPool(); err != nil {
				tc.RootCAs = x509.NewCertPool()
			}
		}
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 config: ca_file %s holds no PEM certificate: give the CA's certificate in PEM", cfg.CAFile)
		}
	}
	return tr, nil
}

// check lists at most one key under the prefix: the cheapest request that
// needs the bucket, valid credentials and the permission to list, and whose
// errors, unlike a HEAD request's, say which of them is missing.
func (s *S3) check(ctx context.Context, c *minio.Client) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing after one key
	for o := range c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
		if o.Err != nil {
			return s.explain(o.Err, c)
		}
		break
	}
	return nil
}

// explain turns an error from the first request into one line saying what
// to fix.
func (s *S3) explain(err error, c *minio.Client) error {
	where := fmt.Sprintf("s3 bucket %q at %s", s.bucket, s.endpoint)
	var access string
	if v, cerr := c.GetCreds(); cerr == nil {
		access = v.AccessKeyID
	}
	var certErr *tls.CertificateVerificationError
	var netErr *net.OpError
	var urlErr *url.Error
	switch resp := minio.ToErrorResponse(err); {
	case resp.Code == minio.NoSuchBucket:
		return fmt.Errorf("%s: the bucket does not exist: create it, or fix bucket: %w", where, err)
	case resp.Code == minio.InvalidAccessKeyID, resp.Code == "XAdminUserNotFound": // versitygw's code for it
		return fmt.Errorf("%s: the server does not know access key %q: fix access_key: %w", where, access, err)
	case resp.Code == minio.SignatureDoesNotMatch:
		return fmt.Errorf("%s: the secret key is not access key %q's: fix secret_key: %w", where, access, err)
	case resp.Code == minio.AccessDenied:
		return fmt.Errorf("%s: access key %q may not list the bucket: grant it list, get and put: %w", where, access, err)
	case errors.As(err, &certErr):
		return fmt.Errorf("%s: the endpoint's certificate is not trusted: give its CA in ca_file: %w", where, certErr)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the endpoint: %w", where, netErr)
	case errors.As(err, &urlErr):
		return fmt.Errorf("%s: %w", where, urlErr.Err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// PutObject stores size bytes from r at key, unless an object of that size
// is there already: keys are content addressed, so it holds the same bytes,
// and r is left unread. An object larger than the part size goes up in
// parts, and S3 shows it only when the upload completes. On any failure,
// ctx's cancellation included, the upload is aborted and its parts removed.
func (s *S3) PutObject(ctx context.Context, key string, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("put s3 object %s: negative size %d", key, size)
	}
	info, err := s.Stat(ctx, key)
	switch {
	case err == nil && info.Size == size:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("put s3 object %s: %w", key, err)
	}
	opts := minio.PutObjectOptions{ContentType: contentType(key), PartSize: uint64(partSize(s.partSize, size))}
	// minio-go uploads a reader that is not an io.ReaderAt one part after
	// another, through one buffer: ctxio.Reader hides ReadAt, which would
	// make it read parts in parallel, with a buffer each.
	if _, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, ctxio.Reader(ctx, r), size, opts); err != nil {
		return fmt.Errorf("put s3 object %s: %w", key, err)
	}
	return nil
}

// partSize returns the part size for an object of size bytes: want, or,
// for an object that would need more than S3's 10,000 parts of it, the
// smallest whole number of MiB that needs no more.
func partSize(want, size int64) int64 {
	if least := (size + maxParts - 1) / maxParts; least > want {
		return (least + 1<<20 - 1) &^ (1<<20 - 1)
	}
	return want
}

// Stat returns the size and modification time of the object at key.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	o, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.objectError("stat", key, err)
	}
	return Info{Size: o.Size, ModTime: o.LastModified}, nil
}

// objectError wraps err from operation op on key, as an error that wraps
// fs.ErrNotExist if S3 has no such key.
func (s *S3) objectError(op, key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return &fs.PathError{Op: op, Path: key, Err: fs.ErrNotExist}
	}
	return fmt.Errorf("%s s3 object %s: %w", op, key, err)
}

// Open returns the object at key from byte offset on, with one ranged GET.
// An offset equal to the size gives an empty reader, so that resuming a
// complete download is not an error; a larger one is an error.
func (s *S3) Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("open s3 object %s: negative offset %d", key, offset)
	}
	var opts minio.GetObjectOptions
	if offset > 0 {
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, fmt.Errorf("open s3 object %s: %w", key, err)
		}
	}
	body, _, h, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if minio.ToErrorResponse(err).Code == minio.InvalidRange {
		// S3 refuses a range that starts at the end: see whether it does.
		info, serr := s.Stat(ctx, key)
		if serr != nil {
			return nil, serr
		}
		if offset == info.Size {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, fmt.Errorf("open s3 object %s: offset %d is past its %d bytes", key, offset, info.Size)
	}
	if err != nil {
		return nil, s.objectError("open", key, err)
	}
	// A server that ignored the range would hand out the wrong bytes.
	if want := fmt.Sprintf("bytes %d-", offset); offset > 0 && !strings.HasPrefix(h.Get("Content-Range"), want) {
		body.Close()
		return nil, fmt.Errorf("open s3 object %s: asked for bytes from %d, got Content-Range %q", key, offset, h.Get("Content-Range"))
	}
	return body, nil
}

// PresignGet returns a URL that lets anyone GET the object at key, with
// Range requests, for ttl (the configured presign_ttl if ttl is 0). S3
// checks its signature and expiry, and counts ttl from the whole second the
// URL was signed in, so it lasts up to a second less. The object need not
// exist yet.
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = s.ttl
	}
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("presign s3 object %s: %w", key, err)
	}
	u, err := s.presign.PresignedGetObject(ctx, s.bucket, s.prefix+key, ttl, nil)
	if err != nil {
		return nil, fmt.Errorf("presign s3 object %s: %w", key, err)
	}
	return u, nil
}
