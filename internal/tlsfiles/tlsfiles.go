// Package tlsfiles reads the PEM files that configurations name for TLS:
// the agent's link and downloads, the server's MQTT client and the embedded
// broker all trust CAs from a file.
package tlsfiles

import (
	"crypto/x509"
	"errors"
	"os"
)

// ErrNoCertificate is returned by CertPool for a file with no PEM
// certificate in it.
var ErrNoCertificate = errors.New("no PEM certificate in it")

// CertPool returns a pool of the PEM certificates in the file at path. The
// caller names the configuration field in its error.
func CertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, ErrNoCertificate
	}
	return pool, nil
}
