package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/backoff"
)

// An HTTP source reads a bundle over HTTP(S) with range requests, in either
// form: a single-file bundle at one URL, or the object layout (an envelope
// URL and one URL per image, as a channel advert lists them).
type HTTP struct {
	Client *http.Client
	// Retry is the policy for failed requests and cut connections.
	Retry backoff.Policy

	fileURL     string            // single-file form
	envelopeURL string            // object layout
	imageURLs   map[string]string // object layout: image name → URL
	base        string            // object layout: URL images without their own resolve against

	envelope []byte
	offsets  map[string]int64
}

// NewHTTPFile returns a source for the single-file bundle at url.
func NewHTTPFile(url string, client *http.Client) *HTTP {
	return &HTTP{Client: client, Retry: defaultRetry, fileURL: url}
}

// NewHTTPObjects returns a source for a bundle in the object layout.
func NewHTTPObjects(envelopeURL string, imageURLs map[string]string, client *http.Client) *HTTP {
	return &HTTP{Client: client, Retry: defaultRetry, envelopeURL: envelopeURL, imageURLs: imageURLs}
}

var defaultRetry = backoff.Policy{Base: 500 * time.Millisecond, Max: time.Minute, Attempts: 8}

// ClientTLS returns an HTTP client for cfg (server CA, optional client
// certificate for mTLS), with timeouts fit for large downloads on slow
// links: no overall timeout, but bounded waits for connection and headers.
func ClientTLS(cfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: tr}
}

// Envelope fetches the signed envelope.
func (s *HTTP) Envelope(ctx context.Context) ([]byte, error) {
	if s.envelope != nil {
		return s.envelope, nil
	}
	if s.envelopeURL != "" {
		b, err := s.readAll(ctx, s.envelopeURL, 0, trust.MaxEnvelope+1)
		if err != nil {
			return nil, err
		}
		if len(b) > trust.MaxEnvelope {
			return nil, fmt.Errorf("%w: envelope at %s is over %d bytes", bundle.ErrOversized, s.envelopeURL, trust.MaxEnvelope)
		}
		s.envelope = b
		return b, nil
	}
	head, err := s.readAll(ctx, s.fileURL, 0, bundle.HeaderSize)
	if err != nil {
		return nil, err
	}
	r := &prefixReader{head: head, rest: func() ([]byte, error) {
		// The header names the envelope's length; fetch exactly that.
		n := int64(uint32(head[12])<<24 | uint32(head[13])<<16 | uint32(head[14])<<8 | uint32(head[15]))
		return s.readAll(ctx, s.fileURL, bundle.HeaderSize, min(n, trust.MaxEnvelope))
	}}
	env, err := bundle.ReadEnvelope(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.fileURL, err)
	}
	offsets, _, err := imageOffsets(env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.fileURL, err)
	}
	s.envelope, s.offsets = env, offsets
	return env, nil
}

// Image returns im's bytes from offset on. A connection cut mid-body is
// resumed with a range request from the last byte delivered, under the
// retry policy.
func (s *HTTP) Image(ctx context.Context, im *bundle.Image, offset int64) (io.ReadCloser, error) {
	if _, err := s.Envelope(ctx); err != nil {
		return nil, err
	}
	url, base := s.fileURL, int64(0)
	if s.envelopeURL != "" {
		if url = s.imageURLs[im.Name]; url == "" && s.base != "" {
			var err error
			if url, err = blobURL(s.base, im); err != nil {
				return nil, err
			}
		}
		if url == "" {
			return nil, fmt.Errorf("no URL for image %s", im.Name)
		}
	} else {
		base = s.offsets[im.Name]
	}
	return &rangeReader{ctx: ctx, s: s, url: url, off: base + offset, end: base + im.Size}, nil
}

// Close releases nothing: connections belong to the client.
func (s *HTTP) Close() error { return nil }

// readAll reads n bytes at off (or, for n beyond the object, all of it).
func (s *HTTP) readAll(ctx context.Context, url string, off, n int64) ([]byte, error) {
	rr := &rangeReader{ctx: ctx, s: s, url: url, off: off, end: off + n, short: true}
	defer rr.Close()
	return io.ReadAll(rr)
}

// rangeReader reads [off, end) of url, reopening with a range request
// after a failure. With short set, the object may end before end.
type rangeReader struct {
	ctx      context.Context
	s        *HTTP
	url      string
	off, end int64
	short    bool
	body     io.ReadCloser
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	for {
		if r.body == nil {
			err := r.s.Retry.Retry(r.ctx, r.open)
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p[:min(int64(len(p)), r.end-r.off)])
		r.off += int64(n)
		if n > 0 {
			return n, nil
		}
		r.body.Close()
		r.body = nil
		if err == io.EOF && r.short {
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		// A cut connection: reopen at r.off on the next loop.
	}
}

func (r *rangeReader) open() error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return backoff.Permanent(err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return backoff.Permanent(fmt.Errorf("download %q: not an http or https URL", redact(r.url)))
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-"+strconv.FormatInt(r.end-1, 10))
	resp, err := r.s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w", redact(r.url), err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		r.body = resp.Body
		return nil
	case resp.StatusCode == http.StatusOK && r.off == 0:
		// A server without range support sent the whole object from the
		// start, which is what was asked for.
		r.body = resp.Body
		return nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && r.short:
		resp.Body.Close()
		return backoff.Permanent(io.EOF)
	}
	resp.Body.Close()
	err = fmt.Errorf("download %s: HTTP %s", redact(r.url), resp.Status)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
		// Forbidden (an expired presigned URL), not found: retrying will not help.
		return backoff.Permanent(err)
	}
	return err
}

func (r *rangeReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// redact drops the query of a URL for messages: presigned URLs carry
// credentials there.
func redact(url string) string {
	for i := range url {
		if url[i] == '?' {
			return url[:i] + "?…"
		}
	}
	return url
}

// prefixReader serves head, then fetches and serves the rest once.
type prefixReader struct {
	head []byte
	rest func() ([]byte, error)
	done bool
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.head) == 0 {
		if p.done {
			return 0, io.EOF
		}
		p.done = true
		rest, err := p.rest()
		if err != nil {
			return 0, err
		}
		p.head = rest
		if len(rest) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(b, p.head)
	p.head = p.head[n:]
	return n, nil
}
