package tlsfiles

import (
	"crypto/tls"
	"fmt"
)

// Client names the PEM files of a TLS client — the CA to trust and, for
// mutual TLS, the certificate and its key — and the configuration fields
// they come from, which its errors name.
type Client struct {
	CAFile, CertFile, KeyFile string
	// CAField names CAFile in errors, e.g. "fetch.ca_file"; CertField
	// names the certificate and key, e.g. "fetch.cert_file and key_file".
	CAField, CertField string
}

// Config returns the TLS configuration: TLS 1.2 or later, trusting the
// certificates in CAFile (the system's when it is empty), presenting the
// certificate when one is set.
func (c Client) Config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := CertPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", c.CAField, c.CAFile, err)
		}
		tc.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fmt.Errorf("%s: set both for mutual TLS, or neither", c.CertField)
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.CertField, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
