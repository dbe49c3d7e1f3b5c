package testenv

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address, "127.0.0.1:PORT", that nothing listened on a moment ago, for
// a program that must be told its port before it binds it. Another process can take the port in the
// meantime, so whoever starts a server on it should try another address when the bind fails. Code in
// the test binary itself should listen on "127.0.0.1:0" instead.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
