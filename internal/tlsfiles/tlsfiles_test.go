package tlsfiles_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/internal/tlsfiles"
)

func TestCertPool(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "ca.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	t.Run("Client", func(t *testing.T) { testClient(t, good, keyFile) })
	if _, err := tlsfiles.CertPool(good); err != nil {
		t.Errorf("CertPool(a CA file) = %v", err)
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate"), 0o644)
	if _, err := tlsfiles.CertPool(empty); !errors.Is(err, tlsfiles.ErrNoCertificate) {
		t.Errorf("CertPool(no certificate) = %v, want ErrNoCertificate", err)
	}
	if _, err := tlsfiles.CertPool(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CertPool(missing file) = %v, want not exist", err)
	}
}

// testClient checks a client configuration trusts the CA file and presents
// the certificate, and that each error names its field.
func testClient(t *testing.T, cert, key string) {
	c := tlsfiles.Client{CAFile: cert, CertFile: cert, KeyFile: key, CAField: "fetch.ca_file", CertField: "fetch.cert_file"}
	tc, err := c.Config()
	if err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("Config = %+v, %v", tc, err)
	}
	for _, tc := range []struct {
		change func(*tlsfiles.Client)
		want   string
	}{
		{func(c *tlsfiles.Client) { c.CAFile = cert + ".missing" }, "fetch.ca_file " + cert + ".missing: "},
		{func(c *tlsfiles.Client) { c.KeyFile = "" }, "fetch.cert_file: set both for mutual TLS, or neither"},
		{func(c *tlsfiles.Client) { c.KeyFile = cert }, "fetch.cert_file: "},
	} {
		bad := c
		tc.change(&bad)
		if _, err := bad.Config(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Config = %v, want an error starting %q", err, tc.want)
		}
	}
}
