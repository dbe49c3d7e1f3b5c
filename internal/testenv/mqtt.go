package testenv

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dialTimeout = 5 * time.Second

// Broker is the test Mosquitto broker of a run. Anonymous clients are refused, and its ACL is the one
// gitfleet relies on: the server's account may publish and subscribe anywhere, and a device only
// under its own gitfleet/v1/<fleet>/devices/<device-id>/, plus reading gitfleet/v1/<fleet>/channels/.
// As Mosquitto applies an ACL when it delivers, a forbidden publish or subscription is not refused:
// its messages just never arrive.
type Broker struct {
	// Addr is the password listener, "127.0.0.1:PORT".
	Addr string
	// User and Password are the server's account.
	User, Password string
	// Devices are the device accounts, at least two, which all have the password DevicePassword.
	Devices        []string
	DevicePassword string
	// TLSAddr is the mutual-TLS listener, "127.0.0.1:PORT". It wants a client certificate signed by
	// the test CA and takes the certificate's common name as the account: see TLSConfig and ClientCert.
	TLSAddr string
	// CAFile is the test CA's certificate (PEM), which signed the broker's certificate.
	CAFile string

	caKeyFile string
}

// MQTT returns the test broker, failing the test if the harness did not describe it or it does not
// answer.
func MQTT(t testing.TB) Broker {
	t.Helper()
	var e env
	b := Broker{
		Addr:           e.get("GITFLEET_TEST_MQTT_ADDR"),
		User:           e.get("GITFLEET_TEST_MQTT_USER"),
		Password:       e.get("GITFLEET_TEST_MQTT_PASSWORD"),
		Devices:        strings.Fields(e.get("GITFLEET_TEST_MQTT_DEVICE_USERS")),
		DevicePassword: e.get("GITFLEET_TEST_MQTT_DEVICE_PASSWORD"),
		TLSAddr:        e.get("GITFLEET_TEST_MQTT_TLS_ADDR"),
		CAFile:         e.get("GITFLEET_TEST_MQTT_CA"),
		caKeyFile:      e.get("GITFLEET_TEST_MQTT_CA_KEY"),
	}
	e.check(t, "the test MQTT broker")
	reach(t, "GITFLEET_TEST_MQTT_ADDR", b.Addr)
	reach(t, "GITFLEET_TEST_MQTT_TLS_ADDR", b.TLSAddr)
	return b
}

// reach fails the test if the broker does not accept connections at addr, which variable name gave.
func reach(t testing.TB, name, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		fatalf(t, "the test MQTT broker does not answer at %s=%s (%v): "+
			"has the scripts/with-services.sh run that set it ended?", name, addr, err)
	}
	conn.Close()
}

// TLSConfig returns a configuration for the mutual-TLS listener: it trusts the test CA and presents a
// client certificate for deviceID, freshly signed by the test CA, as a provisioned device would.
func (b Broker) TLSConfig(t testing.TB, deviceID string) *tls.Config {
	t.Helper()
	ca := b.ca(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Leaf)
	host, _, err := net.SplitHostPort(b.TLSAddr)
	if err != nil {
		t.Fatalf("testenv: GITFLEET_TEST_MQTT_TLS_ADDR: %v", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{issue(t, ca, deviceID)},
		RootCAs:      roots,
		ServerName:   host,
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientCert writes a client certificate for deviceID, signed by the test CA, and its key (PEM,
// unencrypted) to a temporary directory and returns their paths, for programs configured with files.
func (b Broker) ClientCert(t testing.TB, deviceID string) (certFile, keyFile string) {
	t.Helper()
	cert := issue(t, b.ca(t), deviceID)
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatalf("testenv: encode the key of %s: %v", deviceID, err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, deviceID+".crt"), filepath.Join(dir, deviceID+".key")
	writePEM(t, certFile, "CERTIFICATE", cert.Certificate[0])
	writePEM(t, keyFile, "PRIVATE KEY", key)
	return certFile, keyFile
}

// ca loads the test CA's certificate and key.
func (b Broker) ca(t testing.TB) tls.Certificate {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(b.CAFile, b.caKeyFile)
	if err != nil {
		t.Fatalf("testenv: load the test CA: %v", err)
	}
	return ca
}

// issue signs a client certificate for commonName with ca, valid for a day.
func issue(t testing.TB, ca tls.Certificate, commonName string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.Leaf, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatalf("testenv: sign a certificate for %s: %v", commonName, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t testing.TB, path, blockType string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
