package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/bundletest"
)

// TestInstallOverMutualTLS installs from an HTTPS server that wants a client
// certificate: with fetch.cert_file it works, without it the download fails
// cleanly and nothing is written.
func TestInstallOverMutualTLS(t *testing.T) {
	tr := bundletest.NewTrust(t, 1, 1, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	img := bundletest.Image(t, 200_000, 3)
	data, _ := bundletest.Bundle(t, bundletest.Release(), []bundle.ImageFile{{Name: "rootfs", Slot: "rootfs", Path: img}}, tr.Targets...)

	dir := t.TempDir()
	ca, caKey := newCert(t, "device CA", nil, nil)
	client, clientKey := newCert(t, "board-1", ca, caKey)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", client.Raw)
	keyDER, _ := x509.MarshalECPrivateKey(clientKey)
	writePEM(t, filepath.Join(dir, "client.key"), "EC PRIVATE KEY", keyDER)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "b.gfb", time.Time{}, bytes.NewReader(data))
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	writePEM(t, filepath.Join(dir, "server-ca.pem"), "CERTIFICATE", srv.Certificate().Raw)

	for _, withCert := range []bool{false, true} {
		b := newBoard(t, tr)
		cfg := string(must(os.ReadFile(b.config)))
		cfg += "fetch:\n  ca_file: " + filepath.Join(dir, "server-ca.pem") + "\n"
		if withCert {
			cfg += "  cert_file: " + filepath.Join(dir, "client.pem") + "\n  key_file: " + filepath.Join(dir, "client.key") + "\n"
		}
		os.WriteFile(b.config, []byte(cfg), 0o644)
		before := must(os.ReadFile(filepath.Join(b.dir, "B.img")))
		envBefore, _ := os.ReadFile(b.env)
		out, err := b.agent(t, "install", "--config", "CONFIG", srv.URL+"/b.gfb")
		if withCert {
			if err != nil || !strings.Contains(out, "rebooting") {
				t.Fatalf("with a client certificate: %q, %v", out, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "ERROR_CODE_DOWNLOAD_FAILED") {
			t.Fatalf("without a client certificate: err = %v, want a download failure", err)
		}
		if !bytes.Equal(must(os.ReadFile(filepath.Join(b.dir, "B.img"))), before) {
			t.Error("a failed download wrote the inactive slot")
		}
		if envAfter, _ := os.ReadFile(b.env); !bytes.Equal(envAfter, envBefore) {
			t.Error("a failed download changed the bootloader environment")
		}
	}
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
