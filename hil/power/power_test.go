package power

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/hil/console"
	"github.com/gitfleet/gitfleet/hil/internal/ptytest"
)

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	c := &Command{OnCommand: "echo on > " + state, OffCommand: "echo off > " + state}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fn   func(context.Context) error
		want string
	}{{"on", c.On, "on\n"}, {"off", c.Off, "off\n"}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(state); string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	bad := &Command{OffCommand: "echo 'uhubctl: no hub found' >&2; exit 3"}
	err := bad.Off(ctx)
	if err == nil || !strings.Contains(err.Error(), "no hub found") || strings.Contains(err.Error(), "\n") {
		t.Errorf("failing command: err = %v, want one line with its output", err)
	}
}

func TestRelay(t *testing.T) {
	a, b := ptytest.Pair(t)
	relay, err := os.OpenFile(b, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	r := &Relay{Port: console.Config{Port: a, Baud: 9600}, OnBytes: []byte{0xA0, 0x01, 0x01, 0xA2}, OffBytes: []byte{0xA0, 0x01, 0x00, 0xA1}}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		fn   func(context.Context) error
		want []byte
	}{{"on", r.On, r.OnBytes}, {"off", r.Off, r.OffBytes}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(ctx); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tc.want))
			relay.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := relay.Read(got); err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("relay read % x, %v; want % x", got, err, tc.want)
			}
		})
	}
}

// TestModemIsHardwareOnly checks that modem lines fail on a pseudo-terminal
// with an error that says why, rather than seeming to work.
func TestModemIsHardwareOnly(t *testing.T) {
	a, _ := ptytest.Pair(t)
	m, err := OpenModem(a, "dtr", false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Off(context.Background())
	if err == nil || !strings.Contains(err.Error(), "real serial adapter") {
		t.Errorf("DTR on a pty: err = %v, want the hardware-only explanation", err)
	}
	if _, err := OpenModem(a, "cts", false); err == nil {
		t.Error("OpenModem accepted line cts, an input")
	}
}
