package bus

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestBufferedConn checks that what is written arrives whole and in order,
// the last of it once the connection is closed, and that the peer's bytes
// are read.
func TestBufferedConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		peer, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer peer.Close()
		peer.Write([]byte("hello"))
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	opts := mqtt.NewClientOptions()
	opts.ConnectTimeout = 5 * time.Second
	conn, err := dial(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, *opts)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range 1000 {
		p := fmt.Appendf(nil, "packet %d;", i)
		want.Write(p)
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	hello := make([]byte, 5)
	if _, err := io.ReadFull(conn, hello); err != nil || string(hello) != "hello" {
		t.Errorf("read %q (%v), want %q", hello, err, "hello")
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Errorf("the peer read %d bytes, want the %d written, in order", len(b), want.Len())
	}
}
